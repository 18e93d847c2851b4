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
from qwen_gradio.ui import STOPPED_TITLE, STOPPED_WAITING_TITLE, close, serve, to_messages

from .conftest import ARTIFACTS, Replica
from .docs import example
from .helpers import assert_stopped_early, free_port, replica_reply

CHROMIUM = os.environ.get("QWEN_GRADIO_CHROMIUM") or shutil.which("chromium") or ""


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
    expect(page.get_by_text("Stopped: the reply was cut short here")).to_be_visible()
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
    expect(page.get_by_text("Qwen2.5-Max", exact=True)).to_be_visible()  # the chat box's label
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
    expect(page.locator('[data-testid="bot"]').first).to_contain_text("Ahoy there")
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
        assert "Qwen2.5-Max chat" in httpx.get(url, timeout=10).text
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
    message = page.locator("textarea[data-testid=textbox]").first
    message.fill("/options")
    message.press("Enter")
    expect(page.locator('[data-testid="bot"]').last).to_have_text('{"model_size": "7B"}')
    page.screenshot(path=str(ARTIFACTS / "ui-options.png"))


@pytest.mark.parametrize("size", [(1280, 900), (390, 844)], ids=["desktop", "phone"])
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
    expect(bot).to_have_count(1)  # the conversation goes on from the edited message
    page.screenshot(path=str(ARTIFACTS / "ui-math-edit.png"))
    context.close()
