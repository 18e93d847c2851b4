"""The local web chat page: through gradio_client, and in a real headless browser.

The browser is Debian's chromium driven by Playwright (``.ci/run`` installs both). Without a
chromium the browser tests are skipped, unless ``QWEN_GRADIO_REQUIRE_BROWSER=1`` (as in CI).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("gradio")

from gradio_client import Client

from qwen_gradio import QwenClient, Settings
from qwen_gradio.replica import ReplicaServer
from qwen_gradio.ui import (
    STOPPED_TITLE,
    STOPPED_WAITING_TITLE,
    asked_with,
    build_ui,
    close,
    page_name,
    serve,
    settings_text,
    settled,
    to_messages,
    waiting_title,
)

from .conftest import ARTIFACTS, Replica, generation_python, start_replica
from .docs import example
from .helpers import assert_stopped_early, free_port, replica_reply

CHROMIUM = os.environ.get("QWEN_GRADIO_CHROMIUM") or shutil.which("chromium") or ""
NAME = "Qwen2.5-Max (offline replica)"  # the replica's title: the page's name for it
SIZES = pytest.mark.parametrize("size", [(1280, 900), (390, 844)], ids=["desktop", "phone"])


@pytest.fixture(scope="module")
def space() -> Iterator[ReplicaServer]:
    """A replica that runs one chat job at a time, so a second one visibly queues."""
    with ReplicaServer(delay=0.01, concurrency_limit=1) as server:
        yield server


@pytest.fixture(scope="module")
def page_url(space: ReplicaServer) -> Iterator[str]:
    demo = serve(space.url, port=None, prevent_thread_lock=True)
    yield demo.local_url
    close(demo)


@pytest.fixture
def side(space: ReplicaServer) -> Replica:
    """The replica's /replica/* side API."""
    return Replica(space.url, "gradio6", "", None)


# -- through gradio_client -------------------------------------------------------------------


def test_the_chat_endpoint_is_callable_as_chat(page_url: str) -> None:
    api = Client(page_url, verbose=False).view_api(print_info=False, return_format="dict")
    parameters = [p["parameter_name"] for p in api["named_endpoints"]["/chat"]["parameters"]]
    assert parameters == ["message", "system_prompt"]


def test_the_docs_gradio_client_example(page_url: str, tmp_path: Path) -> None:
    """docs/ui.md's example, as written but for the page's address."""
    code = example("docs/ui.md", 'api_name="/chat"')
    script = tmp_path / "example.py"
    script.write_text(code.replace("http://127.0.0.1:7860/", page_url))
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    loaded, reply = result.stdout.splitlines()  # gradio_client says where it connected
    assert loaded.startswith("Loaded as API: ") and reply == replica_reply("Hello!")


def test_system_prompt_and_history_reach_the_space(page_url: str, side: Replica) -> None:
    client = Client(
        page_url, verbose=False
    )  # one client: one session, whose history the page keeps
    assert client.predict("/system", "Talk like a pirate.", api_name="/chat") == (
        "Talk like a pirate."
    )
    run = side.next_run()
    reply = client.predict("/history", "Second system.", api_name="/chat")
    assert reply == '[["/system", "Talk like a pirate."]]'
    assert side.wait(run)["system"] == "Second system."


def test_an_app_error_shows_the_spaces_message(page_url: str) -> None:
    client = Client(page_url, verbose=False)
    with pytest.raises(Exception, match="the model broke"):
        client.predict("/fail 2 the model broke", "", api_name="/chat")


def test_stopping_cancels_the_job_on_the_space(page_url: str, side: Replica) -> None:
    client = Client(page_url, verbose=False)
    run = side.next_run()
    job = client.submit("/long 5000", "", api_name="/chat")
    for output in job:
        if output:  # the reply has started
            break
    job.cancel()
    result = side.wait(run)
    assert_stopped_early(result, 5000)
    client.close()


def test_ui_replica_flag_serves_the_bundled_replica() -> None:
    demo = serve("replica", port=None, prevent_thread_lock=True)
    try:
        assert demo.qwen_replica is not None
        reply = Client(demo.local_url, verbose=False).predict("hi", "", api_name="/chat")
        assert reply == replica_reply("hi")
    finally:
        close(demo)


def test_a_message_that_got_no_answer_is_not_sent_again() -> None:
    """An error or a Stop before any text leaves a user message with no answer: it is not
    part of the conversation the Space gets (0.3.0 glued it onto the next message). A reply
    cut short answers with its text."""

    def said(title: str) -> dict[str, Any]:
        return {"role": "assistant", "content": "", "metadata": {"title": title}}

    history = [
        {"role": "user", "content": "/error The model crashed"},
        said("The Space could not answer: The model crashed"),
        {"role": "user", "content": "/slow 9 late"},
        said(STOPPED_WAITING_TITLE),
        {"role": "user", "content": "/fail 2 boom"},
        {"role": "assistant", "content": "w1 w2 "},
        said("The Space could not answer: boom"),
        {"role": "user", "content": "/long 99"},
        {"role": "assistant", "content": "t0 t1 "},
        said(STOPPED_TITLE),
        {"role": "user", "content": "the Space was down"},
    ]
    assert to_messages("What's the weather?", history, "Be brief.") == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "/fail 2 boom"},
        {"role": "assistant", "content": "w1 w2 "},
        {"role": "user", "content": "/long 99"},
        {"role": "assistant", "content": "t0 t1 "},
        {"role": "user", "content": "What's the weather?"},
    ]


def test_a_note_left_waiting_says_the_reply_was_stopped() -> None:
    """gradio keeps a chat's state from before a Stop: a reply's pending note comes back
    with the next message, or in a saved chat. ``settled`` says what happened instead."""
    waiting = {"role": "assistant", "content": "", "metadata": {"title": "…", "status": "pending"}}
    history = [
        {"role": "user", "content": "one"},
        waiting,
        {"role": "user", "content": "two"},
        waiting,
        {"role": "assistant", "content": "partial"},
    ]
    titles = [(m.get("metadata") or {}).get("title") for m in settled(history)]
    assert titles == [None, STOPPED_WAITING_TITLE, None, STOPPED_TITLE, None]
    assert all((m.get("metadata") or {}).get("status") != "pending" for m in settled(history))


def test_a_replys_note_says_what_it_was_asked_with() -> None:
    system, options = "You are a pirate.\n\nSay `arr`.", {"model_size": "14B", "on": True}
    saved = [
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": settings_text(system, options),
            "metadata": {"title": "x"},
        },
        {"role": "assistant", "content": "arr"},
    ]
    assert asked_with(saved) == (system, options)
    assert asked_with([{"role": "user", "content": "**System prompt**"}]) is None  # not a note


def test_the_saved_list_opens_the_chat_it_shows() -> None:
    """gradio 5.13 and 6.31 list the non-empty saved chats but open them by their index in
    the whole list; an emptied chat (Undo) is not saved, and a list holding one opens right."""
    page = build_ui(QwenClient("http://127.0.0.1:9"))
    alpha, charlie = [{"role": "user", "content": "Alpha"}], [{"role": "user", "content": "C"}]
    assert page._save_conversation(0, [], [[], charlie, alpha]) == (None, [charlie, alpha])
    assert page._save_conversation(None, [], [charlie]) == (None, [charlie])
    index, chatbot = page._load_conversation(1, [charlie, [], alpha])
    assert index == 2 and chatbot.value[0]["content"] == [{"text": "Alpha", "type": "text"}]


@pytest.mark.parametrize(
    ("space", "name"),
    [
        ("Qwen/Qwen2.5-Max-Demo", "Qwen2.5-Max"),
        ("Qwen/Qwen2.5-72B-Instruct-demo", "Qwen2.5-72B-Instruct"),
        ("you/my-copy", "my-copy"),
        ("http://127.0.0.1:9", "127.0.0.1:9"),  # a URL that does not answer: its host
    ],
)
def test_the_page_is_named_after_its_space(space: str, name: str) -> None:
    with QwenClient(space, timeout=2) as client:
        assert page_name(client) == name


def test_a_wait_note_says_which_space_which_try_and_how_long() -> None:
    from qwen_gradio._core.reply import QueueStatus, Retrying
    from qwen_gradio.errors import RateLimitedError

    error = RateLimitedError("Quota exceeded")
    retry = Retrying("a/b", error, 21.0, 1, "c/d")
    assert (
        waiting_title(retry, 20.4, "a/b", 3)
        == "Rate limited on a/b (try 1 of 3); trying c/d in 20 s…"
    )
    assert waiting_title(retry, 20.4, "", 3).startswith("Rate limited (try 1 of 3)")
    queued = QueueStatus(rank=2, queue_size=3, eta=11.0)
    assert (
        waiting_title(queued, 7.2, "", 3)
        == "Waiting in the Space's queue: 2 ahead of you, about 7 s…"
    )
    assert waiting_title(queued, 0.3, "a/b", 3) == "Waiting in the queue of a/b: 2 ahead of you…"


# -- in a real browser ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM:
        if os.environ.get("QWEN_GRADIO_REQUIRE_BROWSER") == "1":
            pytest.fail("no chromium, but QWEN_GRADIO_REQUIRE_BROWSER=1")
        pytest.skip("no chromium (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright's expectations wait 5 s by default: on a machine whose cores are both busy,
    # gradio's page took longer than that to render (seen once in a loaded run), so they wait
    # up to 30 s. A limit on waiting, not a timed assertion: a page that renders passes at once.
    playwright_api.expect.set_options(timeout=30_000)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


def test_chatting_in_a_browser(
    browser: Any, page_url: str, side: Replica, space: ReplicaServer
) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if not r.url.startswith(("http://127.0.0.1", "data:", "blob:"))
            else None
        ),
    )
    page.goto(page_url)
    expect(page.get_by_text(f"Talking to the Space at {space.url}")).to_be_visible()

    message = page.locator("textarea[data-testid=textbox]").first
    bot = page.locator('[data-testid="bot"]')

    # The reply grows as the Space streams: the replica sends each token only when released.
    run = side.next_run()
    message.fill("/lockstep Ahoy there matey")
    message.press("Enter")
    expect(bot.last).to_have_text("Ahoy")
    side.release()
    side.release()
    expect(bot.last).to_have_text("Ahoy there")
    page.screenshot(path=str(ARTIFACTS / "ui-streaming.png"))

    # Stop ends the stream in the page, cancels the job on the Space, and marks the reply.
    page.locator("button.stop-button").click()
    assert side.wait(run)["outcome"] == "stopped"
    expect(page.get_by_text(STOPPED_TITLE)).to_be_visible()
    expect(page.get_by_text("Ahoy there", exact=True)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "ui-stopped.png"))

    # While the Space is busy the reply shows the queue position, then the answer.
    with QwenClient(space.url) as blocker:
        holding = blocker.stream("/lockstep hold on")
        assert next(holding) == "hold"  # the Space's only slot is taken
        message.fill("/echo after the queue")
        message.press("Enter")
        expect(bot.last).to_contain_text("Waiting in the Space's queue: you are next")
        page.screenshot(path=str(ARTIFACTS / "ui-queued.png"))
        holding.close()
    expect(bot.last).to_have_text("after the queue")

    # The system prompt box applies to the next message. (Typed once the page has answered a
    # message: in CI, a value typed while the page was still loading was once lost.)
    page.locator("textarea[data-testid=textbox]").last.fill("You are a pirate.")
    message.fill("/system")
    message.press("Enter")
    expect(bot.last).to_have_text("You are a pirate.")

    # The page's conversation reaches the Space as real history (the queue note is not part of it).
    message.fill("/history")
    message.press("Enter")
    expect(bot.last).to_contain_text('["/system", "You are a pirate."]')
    expect(bot.last).to_contain_text('["/echo after the queue", "after the queue"]')
    expect(bot.last).not_to_contain_text("Waiting")

    # An error reads as the Space's own words, and the partial reply stays visible.
    message.fill("/fail 3 the model ran out of ideas")
    message.press("Enter")
    expect(
        page.get_by_text("The Space could not answer: the model ran out of ideas").first
    ).to_be_visible()
    expect(page.get_by_text("w1 w2 w3")).to_be_visible()
    expect(page.locator(".toast-body")).to_have_count(0)  # the note says it; no "Warning" toast
    expect(page.get_by_text(NAME, exact=True)).to_be_visible()  # the chat box's label
    expect(page.get_by_text("Chatbot", exact=True)).to_have_count(0)
    assert "Traceback" not in page.content()
    page.screenshot(path=str(ARTIFACTS / "ui-error.png"))

    # Undo takes the last exchange back into the message box; Retry asks the Space again.
    page.get_by_label("Undo").last.click()
    expect(message).to_have_value("/fail 3 the model ran out of ideas")
    expect(page.get_by_text("w1 w2 w3")).to_have_count(0)
    message.fill("/echo once more")
    message.press("Enter")
    expect(bot.last).to_have_text("once more")
    run = side.next_run()
    page.get_by_label("Retry").last.click()
    assert side.wait(run)["query"] == "/echo once more"
    expect(bot.last).to_have_text("once more")

    # The conversation is saved in the browser: after a reload it can be opened again.
    page.reload()
    saved = page.get_by_text("/lockstep Ahoy there matey", exact=True).first
    expect(saved).to_be_visible()
    saved.click()
    expect(page.locator('[data-testid="user"]').first).to_have_text("/lockstep Ahoy there matey")
    expect(page.get_by_text("Ahoy there", exact=True)).to_be_visible()
    expect(page.get_by_text(STOPPED_TITLE)).to_be_visible()
    expect(page.get_by_text("You are a pirate.", exact=True)).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "ui-reloaded.png"))

    # Clear empties the conversation on the page.
    page.get_by_label("Clear").first.click()
    expect(page.locator('[data-testid="bot"]')).to_have_count(0)

    assert outside == [], f"the page contacted other hosts: {outside}"
    context.close()


def test_the_ui_command_serves_the_page_with_the_replica() -> None:
    import signal
    import subprocess
    import sys

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "qwen_gradio", "ui", "--space", "replica", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    shown = []
    try:
        assert process.stdout is not None
        for line in process.stdout:  # the command says where the page is once it is up
            shown.append(line)
            if "Chat page for" in line:
                break
        url = f"http://127.0.0.1:{port}"
        assert f"at {url}/ (Ctrl-C to stop)" in shown[-1]
        assert f"{NAME} chat" in httpx.get(url, timeout=10).text
        reply = Client(url, verbose=False).predict("hello", "", api_name="/chat")
        assert reply == replica_reply("hello")
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C
        _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert "share=True" not in "".join(shown) + err  # no hint at an option the page lacks


# -- a Space with options: the Qwen2.5 demo's layout ------------------------------------------


@pytest.fixture(scope="module")
def sized_page_url() -> Iterator[str]:
    with ReplicaServer(delay=0.01, variant="qwen2.5") as sized:
        demo = serve(sized.url, port=None, prevent_thread_lock=True)
        yield demo.local_url
        close(demo)


def test_each_option_of_the_space_is_a_control(sized_page_url: str) -> None:
    api = Client(sized_page_url, verbose=False).view_api(print_info=False, return_format="dict")
    parameters = api["named_endpoints"]["/chat"]["parameters"]
    assert [p["parameter_name"] for p in parameters] == ["message", "system_prompt", "model_size"]
    assert parameters[2]["parameter_default"] == "72B"
    client = Client(sized_page_url, verbose=False)
    assert client.predict("/options", "", "14B", api_name="/chat") == '{"model_size": "14B"}'
    assert client.predict("/options", "", api_name="/chat") == '{"model_size": "72B"}'


def test_the_client_settings_option_is_where_its_control_starts() -> None:
    """``qwen-gradio ui -o model_size=14B``: the page's control starts at 14B."""
    with ReplicaServer(delay=0.01, variant="qwen2.5") as sized:
        demo = serve(
            Settings.build(sized.url, options={"model_size": "14B"}),
            port=None,
            prevent_thread_lock=True,
        )
        try:
            client = Client(demo.local_url, verbose=False)
            assert client.predict("/options", "", api_name="/chat") == '{"model_size": "14B"}'
        finally:
            close(demo)


def test_choosing_an_option_in_a_browser(browser: Any, sized_page_url: str) -> None:
    from playwright.sync_api import expect

    page = browser.new_context(viewport={"width": 1100, "height": 900}).new_page()
    page.goto(sized_page_url)
    page.get_by_label("7B", exact=True).check()
    _send(page, "/options")
    expect(page.locator('[data-testid="bot"]').last).to_have_text('{"model_size": "7B"}')
    page.screenshot(path=str(ARTIFACTS / "ui-options.png"))

    # A saved chat brings back the option its last reply was asked with.
    expect(_saved(page, "/options")).to_be_visible()
    page.get_by_role("button", name="New chat").click()
    page.get_by_label("14B", exact=True).check()
    _saved(page, "/options").click()
    expect(page.get_by_label("7B", exact=True)).to_be_checked()
    _chat(page, "/options", '{"model_size": "7B"}')


@SIZES
def test_the_first_minutes_do_not_break_the_page(
    browser: Any, page_url: str, side: Replica, size: tuple[int, int]
) -> None:
    """What broke the page in its first ten minutes, walked as a person does (issue 26): a
    message with no answer is not sent again with the next one; Enter on an empty box leaves
    the page usable; Stop before the first token ends the waiting note."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.goto(page_url)
    message = page.locator("textarea[data-testid=textbox]").first
    bot = page.locator('[data-testid="bot"]')

    # An error before any text, then a message: the Space gets no trace of the first.
    message.fill("/error The model crashed")
    message.press("Enter")
    expect(page.get_by_text("The Space could not answer: The model crashed")).to_be_visible()
    run = side.next_run()
    message.fill("/history")
    message.press("Enter")
    expect(bot.last).to_have_text("[]")
    assert side.wait(run)["query"] == "/history"

    # Enter on an empty and on a blank box: refused, and the page goes on as before.
    for blank in ("", "   "):
        message.fill(blank)
        message.press("Enter")
    expect(page.get_by_text("Type a message first.").first).to_be_visible()
    message.fill("/echo still here")
    message.press("Enter")
    expect(bot.last).to_have_text("still here")

    # Stop before the first token: the waiting note gives way to a note that says so.
    run = side.next_run()
    message.fill("/slow 30 too late")
    message.press("Enter")
    expect(page.get_by_text("The Space is working on your message")).to_be_visible()
    page.locator("button.stop-button").click()
    expect(page.get_by_text(STOPPED_WAITING_TITLE)).to_be_visible()
    expect(page.get_by_text("The Space is working on your message")).to_have_count(0)
    assert side.wait(run)["outcome"] == "stopped"
    run = side.next_run()
    message.fill("/history")
    message.press("Enter")
    expect(bot.last).to_contain_text('["/echo still here", "still here"]')
    assert "too late" not in side.wait(run)["query"]
    expect(bot.last).not_to_contain_text("/slow")
    # ... and the stopped reply still says so, with no spinner come back (0.4.0 showed the
    # waiting note again once the next reply came: gradio kept the chat from before the Stop).
    expect(page.get_by_text(STOPPED_WAITING_TITLE)).to_be_visible()
    expect(page.get_by_text("The Space is working on your message")).to_have_count(0)

    page.screenshot(path=str(ARTIFACTS / f"ui-first-minutes-{size[0]}.png"))
    context.close()


def test_the_welcome_math_and_editing_a_sent_message(
    browser: Any, page_url: str, side: Replica
) -> None:
    """The empty page says what to do; inline math renders as math ($...$ and \\(...\\), not
    only $$...$$); a sent message can be edited and asked again; no share button (it needs
    Hugging Face, and does nothing offline)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(page_url)
    expect(page.get_by_text("Ask anything.")).to_be_visible()
    expect(page.get_by_label("Share")).to_have_count(0)
    message = page.locator("textarea[data-testid=textbox]").first
    bot = page.locator('[data-testid="bot"]')

    message.fill("/echo The energy is $E = mc^2$ and \\(a+b\\) here")
    message.press("Enter")
    expect(bot.last).to_contain_text("The energy is")
    expect(bot.last.locator(".katex")).to_have_count(2)  # both inline formulas, as math
    expect(bot.last).not_to_contain_text("$E")

    page.get_by_label("Edit").last.click()
    page.locator(".message textarea").first.fill("/echo edited question")  # the edit box
    run = side.next_run()
    page.get_by_label("Submit").last.click()
    expect(bot.last).to_have_text("edited question")
    assert side.wait(run)["query"] == "/echo edited question"
    expect(page.locator('[data-testid="user"]')).to_have_text(["/echo edited question"])
    page.screenshot(path=str(ARTIFACTS / "ui-math-edit.png"))
    context.close()


def _send(page: Any, text: str) -> None:
    """Send ``text`` from the message box, as a person does (typed in, Enter)."""
    message = page.locator("textarea[data-testid=textbox]").first
    message.fill(text)
    message.press("Enter")


def _chat(page: Any, text: str, reply: str) -> None:
    """Send ``text`` from the message box; wait for ``reply`` to end the chat."""
    from playwright.sync_api import expect

    _send(page, text)
    expect(page.locator('[data-testid="bot"]').last).to_have_text(reply)


def _saved(page: Any, title: str) -> Any:
    """The entry of the saved-chats list named ``title``."""
    return page.get_by_role("gridcell", name=title, exact=True)


def test_the_saved_chats_open_the_chat_clicked(browser: Any, page_url: str) -> None:
    """Issue 26, bug 3: once a chat had been emptied by Undo, each click on the saved list
    opened the chat below the one clicked (gradio 6.31 lists the non-empty chats but opens
    them by their index among all), and the last could not be opened at all. (The list on a
    phone: ``test_a_phone_shows_the_message_box_with_many_saved_chats``.)"""
    from playwright.sync_api import expect

    size = (1280, 900)
    context = browser.new_context(viewport={"width": size[0], "height": size[1]})
    page = context.new_page()
    page.goto(page_url)
    new_chat = page.get_by_role("button", name="New chat")
    for name in ("Alpha", "Bravo", "Charlie", "Delta"):
        _chat(page, f"/echo {name}", name)
        expect(_saved(page, f"/echo {name}")).to_be_visible()  # saved before the next chat
        if name != "Delta":
            new_chat.click()
    page.get_by_label("Undo").last.click()  # Delta's chat is empty again
    expect(page.locator('[data-testid="user"]')).to_have_count(0)
    expect(_saved(page, "/echo Delta")).to_have_count(0)
    new_chat.click()
    _chat(page, "/echo Echo", "Echo")
    expect(_saved(page, "/echo Echo")).to_be_visible()

    for reload in (False, True):
        if reload:
            page.reload()
        for name in ("Charlie", "Alpha", "Echo", "Bravo"):
            _saved(page, f"/echo {name}").click()
            expect(page.locator('[data-testid="user"]')).to_have_text([f"/echo {name}"])
            expect(page.locator('[data-testid="bot"]').last).to_have_text(name)
    page.screenshot(path=str(ARTIFACTS / f"ui-saved-chats-{size[0]}.png"))
    context.close()


def test_a_wait_counts_down_says_where_and_stop_ends_it(
    browser: Any, page_url: str, side: Replica
) -> None:
    """A reply that must wait (here the Space's quota, with its stated wait) shows a
    countdown that moves, which try it is and the Space's words; Stop ends the wait at
    once: no other try reaches the Space."""
    import re

    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(page_url)
    run = side.next_run()
    _send(page, "/error You have exceeded your GPU quota. Try again in 0:00:06")
    counting = re.compile(r"Rate limited \(try 1 of 3\); trying again in (\d) s")
    wait_note = page.get_by_text(counting)
    expect(wait_note).to_be_visible()
    expect(page.locator('[data-testid="bot"]').last).to_contain_text(
        "You have exceeded your GPU quota."  # the note is open: the Space's words
    )
    match = counting.search(wait_note.inner_text())
    assert match is not None
    first = int(match.group(1))
    lower = "|".join(str(n) for n in range(first))
    expect(page.get_by_text(re.compile(rf"trying again in ({lower}) s"))).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "ui-countdown.png"))

    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text(STOPPED_WAITING_TITLE)).to_be_visible()
    # A reply that takes longer than the wait had to go: had it not ended, the next try
    # would have reached the Space before this reply's end.
    _chat(page, "/slow 7 after the wait", "after the wait")
    queries = [r["query"] for r in side.runs()[run:]]
    assert queries == [
        "/error You have exceeded your GPU quota. Try again in 0:00:06",
        "/slow 7 after the wait",
    ]
    context.close()


def test_closing_the_tab_mid_reply_cancels_the_job_on_the_space(
    browser: Any, page_url: str, side: Replica
) -> None:
    """A person who closes the tab while a reply streams: the Space's job ends there (by hand:
    0.10 s after the tab closed), not after its last token."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(page_url)
    run = side.next_run()
    _send(page, "/long 5000")
    expect(page.locator('[data-testid="bot"]').last).to_contain_text("t0 ")
    context.close()
    assert_stopped_early(side.wait(run), 5000)


def test_a_chat_keeps_its_settings_and_each_reply_says_how_it_went(
    browser: Any, page_url: str, side: Replica
) -> None:
    """Each reply's note says how it went (first token, time; tokens with the tokenizer)
    and what it was asked with; an opened chat brings back its system prompt, which the
    next message then goes with. The page announces a finished reply in words."""
    from playwright.sync_api import expect

    from qwen_gradio.tokens import tokenizer_installed

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(page_url)
    page.evaluate(ANNOUNCEMENTS)
    system = page.locator("textarea[data-testid=textbox]").last
    system.fill("You are a pirate who says arr.")
    _chat(page, "/system", "You are a pirate who says arr.")
    answered = page.get_by_text("Answered · first token in").last
    expect(answered).to_be_visible()
    if tokenizer_installed():
        expect(answered).to_contain_text("tokens")
    expect(_saved(page, "/system")).to_be_visible()  # (saving re-draws the chat)
    answered.click()  # the note opens: what the reply was asked with
    expect(page.locator("blockquote").get_by_text("who says arr.")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "ui-reply-note.png"))
    page.wait_for_function("window.qwenSaid.length > 0")
    assert page.evaluate("window.qwenSaid") == ["Reply complete"]  # not "common.complete"

    page.get_by_role("button", name="New chat").click()
    system.fill("Be brief.")
    _chat(page, "/echo second chat", "second chat")
    expect(_saved(page, "/echo second chat")).to_be_visible()
    page.reload()
    expect(system).to_have_value("You are a helpful assistant.")
    _saved(page, "/system").click()
    expect(system).to_have_value("You are a pirate who says arr.")
    run = side.next_run()
    _chat(page, "/echo again", "again")
    assert side.wait(run)["system"] == "You are a pirate who says arr."
    _saved(page, "/echo second chat").click()
    expect(system).to_have_value("Be brief.")
    page.screenshot(path=str(ARTIFACTS / "ui-settings.png"))
    context.close()


#: Records what the page announces to screen readers (its role=status live region).
ANNOUNCEMENTS = """() => {
  window.qwenSaid = [];
  new MutationObserver(() => {
    for (const region of document.querySelectorAll('[role=status]')) {
      const text = region.textContent.trim();
      if (text && !text.startsWith('Loading')) window.qwenSaid.push(text);
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


def test_an_example_on_the_empty_page_is_asked(browser: Any, page_url: str) -> None:
    from playwright.sync_api import expect

    from qwen_gradio.ui import EXAMPLES

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(page_url)
    expect(page.get_by_role("heading", name=f"{NAME} chat")).to_be_visible()
    page.get_by_text(EXAMPLES[1]).click()  # into the message box, to send or change
    message = page.locator("textarea[data-testid=textbox]").first
    expect(message).to_have_value(EXAMPLES[1])
    message.press("Enter")
    expect(page.locator('[data-testid="bot"]').last).to_have_text(replica_reply(EXAMPLES[1]))
    expect(_saved(page, EXAMPLES[1])).to_be_visible()
    context.close()


def test_a_phone_shows_the_message_box_with_many_saved_chats(browser: Any, page_url: str) -> None:
    """On a phone the chat and its message box come first, then the chat settings, then the
    saved chats: with 10 saved chats the message box and the system prompt are on screen
    (0.4.0 put the list first: the message box was at y = 1,075 in an 844-pixel window)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(page_url)
    for k in range(10):
        _chat(page, f"/echo phone chat {k}", f"phone chat {k}")
        expect(_saved(page, f"/echo phone chat {k}")).to_be_attached()
        if k == 0:  # a reply's note is a line or two, not a box of empty space (by hand:
            # 0.5.0's page gave it 206 px on a phone, a CSS rule meant for the chat matching it)
            asked = page.locator('[data-testid="user"]').last.bounding_box()
            answer = page.locator('[data-testid="bot"]').last.bounding_box()
            assert asked is not None and answer is not None
            assert answer["y"] - (asked["y"] + asked["height"]) < 150, (asked, answer)
        page.get_by_role("button", name="New chat").click()
    page.reload()
    expect(_saved(page, "/echo phone chat 0")).to_be_attached()
    expect(page.get_by_text("Ask anything.")).to_be_in_viewport()  # the welcome, on screen
    for box in page.locator("textarea[data-testid=textbox]").all():  # message, system prompt
        where = box.bounding_box()
        assert where is not None and where["y"] + where["height"] <= 844, where
    page.screenshot(path=str(ARTIFACTS / "ui-phone.png"))
    context.close()


def test_a_pool_names_the_space_of_each_reply_and_one_can_be_pinned(browser: Any) -> None:
    from playwright.sync_api import expect

    with ReplicaServer(delay=0.01) as first, ReplicaServer(delay=0.01) as second:
        demo = serve(Settings.build([first.url, second.url]), port=None, prevent_thread_lock=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.goto(demo.local_url)
            page.get_by_label("Space", exact=True).click()
            page.get_by_role("option", name=second.url).click()
            for k in range(3):
                _chat(page, f"/echo pinned {k}", f"pinned {k}")
                expect(page.get_by_text(f"Answered by {second.url}").nth(k)).to_be_visible()
            seen = Replica(second.url, "gradio6", "", None).runs()
            assert [r["query"] for r in seen] == [f"/echo pinned {k}" for k in range(3)]
            page.screenshot(path=str(ARTIFACTS / "ui-pool.png"))
            context.close()
        finally:
            close(demo)


def test_stop_while_queued_on_a_gradio5_space(browser: Any) -> None:
    """On a gradio 5 Space (whose /cancel leaves a waiting job in its queue), Stop while the
    message waits there: the page says it stopped, and the job never runs."""
    from playwright.sync_api import expect

    python = generation_python("gradio5")
    if python is None:
        pytest.skip("no gradio 5 interpreter")
    space = start_replica(python, "gradio5", delay=0.01, concurrency=1)
    demo = serve(space.url, port=None, prevent_thread_lock=True)
    try:
        context = browser.new_context(viewport={"width": 390, "height": 844})
        page = context.new_page()
        page.goto(demo.local_url)
        with QwenClient(space.url) as blocker:
            holding = blocker.stream("/lockstep hold on")
            assert next(holding) == "hold"  # the Space's only slot is taken
            _send(page, "/echo never asked")
            expect(page.get_by_text("Waiting in the Space's queue: you are next")).to_be_visible()
            page.get_by_role("button", name="Stop").click()
            expect(page.get_by_text(STOPPED_WAITING_TITLE)).to_be_visible()
            holding.close()
        _chat(page, "/echo after", "after")
        assert [r["query"] for r in space.runs()] == ["/lockstep hold on", "/echo after"]
        context.close()
    finally:
        close(demo)
        assert space.process is not None
        space.process.kill()
        space.process.wait()
