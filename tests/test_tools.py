"""Tools in Qwen2.5's own format, ``stop`` and ``max_tokens``: the I/O-free core.

The renderer is checked against Qwen2.5's chat template itself (``tests/data``: the
``chat_template`` of the Qwen2.5 instruct models' tokenizer_config.json, rendered with jinja2 as
transformers does); the parser and the shaper on every split of a reply into three deltas.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qwen_gradio._core.messages import to_conversation
from qwen_gradio._core.shape import ReplyShape, Shaper, check_stop, missed_call
from qwen_gradio._core.tools import (
    ToolCall,
    ToolCallParser,
    check_tool_choice,
    check_tools,
)
from qwen_gradio.errors import InvalidMessagesError

from .conftest import Replica
from .helpers import assert_stopped_early

TEMPLATE = Path(__file__).parent / "data" / "qwen2.5-instruct-chat-template.jinja"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city — now.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}


def template_render(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> str:
    """What Qwen2.5's template makes of ``messages`` (transformers' jinja2 set-up)."""
    import jinja2

    environment = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    environment.filters["tojson"] = lambda value: json.dumps(value, ensure_ascii=False)
    template = environment.from_string(TEMPLATE.read_text())
    return template.render(messages=messages, tools=tools or None, add_generation_prompt=True)


def chatml(conversation: Any) -> str:
    """The prompt the Space builds from a Conversation (Qwen's ChatML)."""
    turns = [("system", conversation.system)]
    for user, assistant in conversation.history:
        turns += [("user", user), ("assistant", assistant)]
    turns.append(("user", conversation.query))
    text = "".join(f"<|im_start|>{role}\n{content}<|im_end|>\n" for role, content in turns)
    return text + "<|im_start|>assistant\n"


def openai_call(call_id: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    function = {"name": name, "arguments": json.dumps(arguments)}
    return {"id": call_id, "type": "function", "function": function}


def template_call(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "arguments": arguments}}


ROUND = [  # a whole tool round: two calls in one turn, their results, the answer, a new question
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "Weather in Paris and the time?"},
    {
        "role": "assistant",
        "content": "Let me look.",
        "calls": [("get_weather", {"city": "Paris"}), ("get_time", {})],
    },
    {"role": "tool", "content": '{"temp": 21}'},
    {"role": "tool", "content": "12:00"},
    {"role": "assistant", "content": "21 °C, noon."},
    {"role": "user", "content": "And Rome?"},
    {"role": "assistant", "content": None, "calls": [("get_weather", {"city": "Rome"})]},
    {"role": "tool", "content": '{"temp": 25}'},
]


@pytest.mark.parametrize("upto", [2, 7, 9], ids=["question", "second-question", "tool-results"])
def test_the_prompt_is_what_qwen25s_template_renders(upto: int) -> None:
    ours, theirs = [], []
    for k, message in enumerate(ROUND[:upto]):
        calls = message.get("calls")
        if calls:
            ours.append(
                {
                    "role": "assistant",
                    "content": message["content"],
                    "tool_calls": [openai_call(f"c{k}{n}", *c) for n, c in enumerate(calls)],
                }
            )
            theirs.append(
                {
                    "role": "assistant",
                    "content": message["content"],
                    "tool_calls": [template_call(*c) for c in calls],
                }
            )
        else:
            plain = {"role": message["role"], "content": message["content"]}
            if message["role"] == "tool":
                plain["tool_call_id"] = "c"
            ours.append(plain)
            theirs.append({"role": message["role"], "content": message["content"]})
    tools = check_tools([WEATHER, TIME])
    conversation = to_conversation(ours, tools=tools, tool_choice="auto")
    assert chatml(conversation) == template_render(theirs, [WEATHER, TIME])


def test_without_tools_the_prompt_is_the_templates_too() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert chatml(to_conversation(messages)) == template_render(messages, [])


def test_tool_choice_and_parallel_calls_are_asked_in_words_after_the_template() -> None:
    tools = check_tools([WEATHER, TIME])
    asked = to_conversation("Hi", tools=tools, tool_choice="get_time", parallel_tool_calls=False)
    plain = to_conversation("Hi", tools=tools, tool_choice="auto")
    assert asked.system == plain.system + (
        "\n\nIn this reply, call the function get_time.\n\nCall at most one function in this reply."
    )
    assert (
        to_conversation("Hi", tools=tools, tool_choice="none").system
        == plain.system.split("\n\n# Tools")[0]
    )
    assert check_tool_choice({"type": "function", "function": {"name": "get_time"}}, tools) == (
        "get_time"
    )


@pytest.mark.parametrize(
    ("tools", "choice", "error"),
    [
        ("get_weather", None, "tools must be a list"),
        ([{"type": "code_interpreter"}], None, "only function tools"),
        ([{"type": "function", "function": {"name": "has space"}}], None, "function name"),
        ([WEATHER, WEATHER], None, "declared twice"),
        ([WEATHER], "always", "tool_choice must be"),
        ([WEATHER], {"type": "function", "function": {"name": "other"}}, "does not declare"),
        ([], "required", "declares none"),
    ],
)
def test_bad_tools_are_refused_before_any_request(tools: Any, choice: Any, error: str) -> None:
    with pytest.raises(InvalidMessagesError, match=error):
        check_tool_choice(choice, check_tools(tools))


def test_a_tool_result_may_end_the_conversation_and_developer_is_system() -> None:
    conversation = to_conversation(
        [
            {"role": "developer", "content": "Dev."},
            {"role": "user", "content": "Q"},
            {"role": "assistant", "tool_calls": [openai_call("1", "get_time", {})]},
            {"role": "tool", "tool_call_id": "1", "content": [{"type": "text", "text": "noon"}]},
        ]
    )
    assert conversation.system == "Dev."
    assert conversation.query == "<tool_response>\nnoon\n</tool_response>"
    assert conversation.history == (
        ("Q", '<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'),
    )


# -- reading the reply back --------------------------------------------------------------------


def parsed(pieces: list[str], tools: Any = (WEATHER, TIME)) -> tuple[str, list[tuple[str, str]]]:
    parser = ToolCallParser(check_tools(list(tools)))
    out: list[str | ToolCall] = []
    for piece in pieces:
        out += parser.feed(piece)
    out += parser.finish()
    text = "".join(item for item in out if isinstance(item, str))
    calls = [(item.name, item.arguments) for item in out if isinstance(item, ToolCall)]
    assert [c.index for c in parser.calls] == list(range(len(parser.calls)))
    assert len({c.id for c in parser.calls}) == len(parser.calls)
    return text, calls


def every_split(reply: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """What the parser makes of ``reply`` cut into three deltas at every pair of places."""
    seen = set()
    for i in range(len(reply) + 1):
        for j in range(i, len(reply) + 1):
            text, calls = parsed([reply[:i], reply[i:j], reply[j:]])
            seen.add((text, tuple(calls)))
    return seen


CALL_WEATHER = (
    "Let me check.\n<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
)
TWO_CALLS = CALL_WEATHER + '\n<tool_call>\n{"name": "get_time", "arguments": {}}\n</tool_call>'


@pytest.mark.parametrize(
    ("reply", "text", "calls"),
    [
        (
            TWO_CALLS,
            "Let me check.",
            (("get_weather", '{"city": "Paris"}'), ("get_time", "{}")),
        ),
        ("No tools needed: <tool_ is a prefix.", "No tools needed: <tool_ is a prefix.", ()),
        (  # an undeclared function: text, tags and all
            'x <tool_call>\n{"name": "rm", "arguments": {}}\n</tool_call> y',
            'x <tool_call>\n{"name": "rm", "arguments": {}}\n</tool_call> y',
            (),
        ),
        (  # a code fence inside the tag, arguments as a JSON string
            '<tool_call>\n```json\n{"name": "get_weather",'
            ' "arguments": "{\\"city\\": \\"Oslo\\"}"}\n```\n</tool_call>',
            "",
            (("get_weather", '{"city": "Oslo"}'),),
        ),
        (  # a reply that is only the call's JSON, naming a declared tool
            '{"name": "get_time", "arguments": {}}',
            "",
            (("get_time", "{}"),),
        ),
        ('{"not": "a call"}', '{"not": "a call"}', ()),
        (  # not closed when the reply ends
            '<tool_call>\n{"name": "get_time", "arguments": {}}',
            "",
            (("get_time", "{}"),),
        ),
        ("<tool_call>\nnot json", "<tool_call>\nnot json", ()),
    ],
    ids=["two-calls", "prefix", "undeclared", "fenced", "bare", "json-text", "unclosed", "broken"],
)
def test_the_reply_is_read_the_same_however_it_is_split(
    reply: str, text: str, calls: tuple[tuple[str, str], ...]
) -> None:
    assert every_split(reply) == {(text, calls)}


def test_text_streams_until_a_call_begins() -> None:
    parser = ToolCallParser(check_tools([WEATHER]))
    assert parser.feed("Sure, ") == ["Sure,"]  # the space may precede a call: held back
    assert parser.feed("here <tool") == [" here"]
    assert parser.feed("_call>\n{") == []
    (call,) = parser.feed('"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>')
    assert isinstance(call, ToolCall) and call.as_openai()["function"]["name"] == "get_weather"
    assert parser.finish() == []


# -- stop and max_tokens ------------------------------------------------------------------------


def shaped(shape: ReplyShape, pieces: list[str]) -> tuple[str, str, str]:
    from qwen_gradio.tokens import count_text, first_tokens

    shaper = Shaper(shape, count_text, first_tokens)
    out: list[Any] = []
    for piece in pieces:
        out += shaper.feed(piece)
        if shaper.done:
            break
    else:
        out += shaper.finish()
    return "".join(p for p in out if isinstance(p, str)), shaper.finish_reason, shaper.raw


CODE_AGENT = (
    "Thought: go\n<code>\nprint(1)\n</code>\nObservation: invented\n"
    '<code>\nfinal_answer("x")\n</code>'
)


def test_stop_cuts_before_the_first_match_however_the_reply_is_split() -> None:
    shape = ReplyShape(stop=check_stop(["Observation:", "Calling tools:", "</code>"]))
    seen = {
        shaped(shape, [CODE_AGENT[:i], CODE_AGENT[i:j], CODE_AGENT[j:]])
        for i in range(len(CODE_AGENT) + 1)
        for j in range(i, len(CODE_AGENT) + 1)
    }
    cut = "Thought: go\n<code>\nprint(1)\n"
    assert seen == {(cut, "stop", cut)}
    with pytest.raises(InvalidMessagesError, match="up to 4"):
        check_stop(["a", "b", "c", "d", "e"])


def test_max_tokens_cuts_at_exactly_the_limit() -> None:
    pytest.importorskip("tiktoken")
    from qwen_gradio.tokens import count_text, tokenizer_installed

    if not tokenizer_installed():
        pytest.skip("no tokenizer")
    text, reason, raw = shaped(ReplyShape(max_tokens=5), ["Hello there, how ", "are you today?"])
    assert (text, reason, count_text(raw)) == ("Hello there, how are", "length", 5)
    text, reason, _ = shaped(ReplyShape(max_tokens=50), ["Hello there."])
    assert (text, reason) == ("Hello there.", "stop")


def test_a_reply_with_calls_finishes_with_tool_calls() -> None:
    shape = ReplyShape(tools=check_tools([WEATHER, TIME]), tool_choice="auto")
    shaper = Shaper(shape)
    pieces = shaper.feed(TWO_CALLS) + shaper.finish()
    assert [type(p).__name__ for p in pieces] == ["str", "ToolCall", "ToolCall"]
    assert shaper.finish_reason == "tool_calls" and shaper.raw == TWO_CALLS


def test_parallel_tool_calls_false_ends_the_reply_at_its_first_call() -> None:
    """As vLLM does (PR 26233): later calls are never handed out; here the reply is also done
    there, so that the job is cancelled on the Space. Every split of the reply in two."""
    shape = ReplyShape(tools=check_tools([WEATHER, TIME]), parallel_tool_calls=False)
    seen = set()
    for k in range(len(TWO_CALLS) + 1):
        shaper = Shaper(shape)
        pieces = shaper.feed(TWO_CALLS[:k])
        pieces += [] if shaper.done else shaper.feed(TWO_CALLS[k:])
        pieces += [] if shaper.done else shaper.finish()
        names = tuple(p.name for p in pieces if isinstance(p, ToolCall))
        seen.add((names, shaper.done, shaper.finish_reason, shaper.invalid))
    assert seen == {(("get_weather",), True, "tool_calls", None)}


@pytest.mark.parametrize(
    ("choice", "reply", "why"),
    [
        ("required", "It is sunny.", "tool_choice is 'required', but the reply called no function"),
        ("required", TWO_CALLS, None),
        ("get_time", TWO_CALLS, None),
        ("get_time", "It is noon.", "asked for a call of 'get_time', but the reply called no"),
        ("get_time", CALL_WEATHER, "asked for a call of 'get_time', but the reply called 'get_w"),
        ("auto", "It is sunny.", None),
        ("none", "It is sunny.", None),
    ],
)
def test_a_reply_without_the_call_tool_choice_asks_for_is_told(
    choice: str, reply: str, why: str | None
) -> None:
    shape = ReplyShape(tools=check_tools([WEATHER, TIME]), tool_choice=choice)
    shaper = Shaper(shape)
    shaper.feed(reply)
    shaper.finish()
    missed = missed_call(shape, shaper.calls, shaper.finish_reason)
    assert missed is None if why is None else why in (missed or "")
    assert shaper.invalid is None  # not an error: a whole reply is asked again, then answered
    assert missed_call(shape, [], "length") is None  # cut at max_tokens: "length" says so


# -- through the client, against the replica (stop and max_tokens also on the Space's own 5) ------

CALLS = '/calls [["get_weather", {"city": "Paris"}], ["get_time", {}]] Let me check.'


def test_a_reply_with_tool_calls_streams_its_text_then_the_calls(replica6: Replica) -> None:
    from qwen_gradio import QwenClient, ReplyCompleted, TextDelta

    run = replica6.next_run()
    with QwenClient(replica6.url) as client, client.stream(CALLS, tools=[WEATHER, TIME]) as stream:
        events = list(stream.events())
        assert stream.text == "Let me check." and stream.finish_reason == "tool_calls"
    texts = [e.delta for e in events if isinstance(e, TextDelta)]
    calls = [e for e in events if isinstance(e, ToolCall)]
    assert "".join(texts) == "Let me check." and all("<" not in t for t in texts)
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {}),
    ]
    completed = events[-1]
    assert isinstance(completed, ReplyCompleted) and completed.tool_calls == tuple(calls)
    assert "# Tools" in replica6.wait(run)["system"]


def test_tool_choice_and_parallel_tool_calls_are_kept_to(replica6: Replica) -> None:
    from qwen_gradio import QwenClient

    with QwenClient(replica6.url) as client:
        with client.stream(CALLS, tools=[WEATHER, TIME], parallel_tool_calls=False) as stream:
            stream.until_done()
            assert [c.name for c in stream.tool_calls] == ["get_weather"]
            assert (stream.text, stream.finish_reason) == ("Let me check.", "tool_calls")
        run = replica6.next_run()
        words = "/calls [] Just words."
        # A whole reply without the call asked for is asked once more; the second is the answer.
        assert client.chat(words, tools=[WEATHER], tool_choice="required") == "Just words."
        assert len(replica6.runs()) - run == 2
        named = {"type": "function", "function": {"name": "get_time"}}
        with client.stream(CALLS, tools=[WEATHER, TIME], tool_choice=named) as stream:
            stream.until_done()
            assert stream.missed_call is None  # get_time among the calls: what was asked
        with client.stream(words, tools=[WEATHER, TIME], tool_choice=named) as stream:
            assert stream.until_done() == "Just words."  # a stream is read as it comes
            assert stream.missed_call == (
                "tool_choice asked for a call of 'get_time', but the reply called no function"
            )


async def test_a_tool_round_reaches_the_space_in_qwens_format(replica6: Replica) -> None:
    from qwen_gradio import QwenClient

    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "tool_calls": [openai_call("c1", "get_weather", {"city": "Paris"})]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 21}'},
    ]
    run = replica6.next_run()
    async with QwenClient(replica6.url) as client:
        reply = await client.achat(messages, tools=[WEATHER])
    assert reply == 'The tools said: {"temp": 21}'
    seen = replica6.wait(run)
    assert seen["query"] == '<tool_response>\n{"temp": 21}\n</tool_response>'
    assert seen["history"][0][1].startswith('<tool_call>\n{"name": "get_weather"')


def test_stop_ends_the_reply_and_its_job(replica: Replica) -> None:
    from qwen_gradio import QwenClient

    run = replica.next_run()
    with QwenClient(replica.url) as client, client.stream("/long 3000", stop=["t5 "]) as stream:
        assert stream.until_done() == "t0 t1 t2 t3 t4 "
        assert stream.finish_reason == "stop"
    assert_stopped_early(replica.wait(run), 3000)


async def test_max_tokens_cuts_the_reply_and_its_job(replica: Replica) -> None:
    from qwen_gradio import QwenClient
    from qwen_gradio.tokens import count_text, tokenizer_installed

    if not tokenizer_installed():
        pytest.skip("no tokenizer")
    run = replica.next_run()
    async with QwenClient(replica.url) as client, client.astream("/long 3000", max_tokens=7) as s:
        text = await s.until_done()
        assert s.finish_reason == "length" and s.usage is not None
        assert count_text(text) == 7 == s.usage.completion_tokens
    assert_stopped_early(replica.wait(run), 3000)


def test_the_chat_command_stops_where_told(replica6: Replica) -> None:
    import subprocess
    import sys

    def chat(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "qwen_gradio", "chat", "--space", replica6.url, *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60)

    run = replica6.next_run()
    done = chat("--stop", "t5 ", "--stop", "never", "--json", "/long 3000")
    assert done.returncode == 0, done.stderr
    last = json.loads(done.stdout.splitlines()[-1])
    assert (last["text"], last["finish_reason"]) == ("t0 t1 t2 t3 t4 ", "stop")
    assert_stopped_early(replica6.wait(run), 3000)
    refused = chat(*[f"--stop={s}" for s in "abcde"], "hi")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "up to 4" in refused.stderr


def test_the_docs_python_tool_round(tmp_path: Path) -> None:
    """docs/tools.md's first example, as written, against the replica (which calls a declared
    tool that a question names, as Qwen2.5 does)."""
    import os
    import subprocess
    import sys

    from .conftest import ROOT, shared_replica
    from .docs import example

    script = tmp_path / "example.py"
    script.write_text(example("docs/tools.md", "with QwenClient() as client:"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "QWEN_GRADIO_SPACE": shared_replica("gradio6").url,
    }
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "The tools said: 18 °C and sunny in Paris\n"


# -- structured output ---------------------------------------------------------------------------

CITY = {
    "type": "json_schema",
    "json_schema": {
        "name": "city",
        "schema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
            "required": ["name", "population"],
        },
    },
}


def test_a_fenced_json_reply_is_unfenced_however_it_is_split() -> None:
    from qwen_gradio._core.shape import check_response_format

    shape = ReplyShape(json=check_response_format(CITY))
    reply = '  ```json\n{"name": "Paris", "population": 2100000}\n```\nHope this helps!'
    seen = set()
    for i in range(len(reply) + 1):
        for j in range(i, len(reply) + 1):
            shaper = Shaper(shape)
            out = []
            for piece in (reply[:i], reply[i:j], reply[j:]):
                out += shaper.feed(piece)
            out += [] if shaper.done else shaper.finish()
            seen.add(("".join(p for p in out if isinstance(p, str)), shaper.invalid))
    assert seen == {('{"name": "Paris", "population": 2100000}', None)}


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        ("Paris has 2.1 million people.", "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"name": "Paris", "population": "many"}', "at population: 'many' is not of type"),
        ('{"name": "Paris"}', "'population' is a required property"),
    ],
)
def test_a_reply_that_is_not_the_json_asked_for_says_why(reply: str, why: str) -> None:
    from qwen_gradio._core.shape import check_response_format

    shaper = Shaper(ReplyShape(json=check_response_format(CITY)))
    shaper.feed(reply)
    shaper.finish()
    assert shaper.invalid is not None and why in shaper.invalid


def test_a_bad_response_format_is_refused_before_any_request() -> None:
    from qwen_gradio._core.shape import check_response_format

    with pytest.raises(InvalidMessagesError, match="json_object"):
        check_response_format({"type": "yaml"})
    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "thing"}}}
    with pytest.raises(InvalidMessagesError, match="not a valid JSON schema"):
        check_response_format(bad)


def test_structured_output_through_the_client(replica6: Replica) -> None:
    from qwen_gradio import InvalidReplyError, QwenClient

    with QwenClient(replica6.url) as client:
        whole = client.chat("Tell me about Paris, 2100000 people", response_format=CITY)
        assert json.loads(whole) == {"name": "Paris", "population": 2100000}
        fenced = client.chat("Tell me about Rome, fenced", response_format=CITY)
        assert json.loads(fenced) == {"name": "Rome", "population": 1}
        asked = client.chat("Anything", response_format={"type": "json_object"})
        assert json.loads(asked) == {"answer": "Anything"}
        run = replica6.next_run()
        with pytest.raises(InvalidReplyError, match="does not follow the schema 'city'"):
            client.chat("Tell me about Oslo, broken", response_format=CITY)
        assert len(replica6.runs()) - run == 2  # a whole reply is asked once more
        with client.stream("Oslo broken", response_format=CITY) as stream:
            with pytest.raises(InvalidReplyError) as caught:
                stream.until_done()
            assert caught.value.partial_text == stream.text != ""  # the text stays readable


def test_batch_lines_ask_for_tools_and_stop(replica6: Replica, tmp_path: Path) -> None:
    import subprocess
    import sys

    lines = [
        {"id": "call", "prompt": "What's the weather in Paris?", "tools": [WEATHER]},
        {"id": "cut", "prompt": "/long 3000", "stop": ["t3 "]},
        {"id": "bad", "prompt": "x", "stop": list("abcde")},
    ]
    given = tmp_path / "in.jsonl"
    given.write_text("\n".join(json.dumps(line) for line in lines[:2]) + "\n")
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "qwen_gradio", "batch", str(given), "-o", str(out)]
    done = subprocess.run([*command, "--space", replica6.url], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    answers = {a["id"]: a for a in map(json.loads, out.read_text().splitlines())}
    call = answers["call"]
    assert (call["text"], call["finish_reason"]) == ("", "tool_calls")
    assert call["tool_calls"][0]["function"]["name"] == "get_weather"
    assert (answers["cut"]["text"], answers["cut"]["finish_reason"]) == ("t0 t1 t2 ", "stop")
    given.write_text(json.dumps(lines[2]) + "\n")
    refused = subprocess.run([*command, "--space", replica6.url], capture_output=True, text=True)
    assert refused.returncode == 2 and "line 1" in refused.stderr and "up to 4" in refused.stderr
