"""``qwen-gradio serve`` with tools, ``stop`` and ``max_tokens``, driven by the ``openai``
package as an agent builder uses it (a real server process in front of the gradio 6 replica)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from .conftest import Replica, shared_replica
from .helpers import assert_stopped_early
from .test_serve import client, serve
from .test_tools import CALLS, TIME, WEATHER

MODEL = "qwen-2.5-max"


@pytest.fixture(scope="module")
def space() -> Replica:
    return shared_replica("gradio6")


@pytest.fixture(scope="module")
def server(space: Replica, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(space.url, tmp_path_factory.mktemp("serve")) as running:
        assert "Traceback" not in running.startup
        yield running.url  # type: ignore[attr-defined]


def test_a_reply_with_tool_calls_whole(server: str) -> None:
    reply = client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": CALLS}], tools=[WEATHER, TIME]
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    calls = choice.message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {}),
    ]
    assert all(c.id.startswith("call_") and c.type == "function" for c in calls)
    assert reply.usage is not None and reply.usage.completion_tokens > 0


def test_a_reply_with_tool_calls_streamed_by_index(server: str) -> None:
    chunks = list(
        client(server).chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": CALLS}],
            tools=[WEATHER, TIME],
            stream=True,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    calls: dict[int, dict[str, str]] = {}
    for chunk in chunks:
        for call in chunk.choices[0].delta.tool_calls or []:
            got = calls.setdefault(call.index, {"name": "", "arguments": ""})
            got["name"] += call.function.name or ""  # type: ignore[union-attr]
            got["arguments"] += call.function.arguments or ""  # type: ignore[union-attr]
    assert text == "Let me check."
    assert [calls[k]["name"] for k in sorted(calls)] == ["get_weather", "get_time"]
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_a_whole_tool_round_with_the_openai_client(server: str, space: Replica) -> None:
    api = client(server)
    messages: list[dict[str, object]] = [
        {"role": "developer", "content": "Use the tools."},
        {"role": "user", "content": '/calls [["get_weather", {"city": "Oslo"}]]'},
    ]
    first = api.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    asked = first.choices[0].message
    assert asked.tool_calls and asked.content is None
    messages.append(asked.model_dump(exclude_none=True))
    for call in asked.tool_calls:
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "-3 °C, snow"})
    run = space.next_run()
    second = api.chat.completions.create(model=MODEL, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "The tools said: -3 °C, snow"
    assert second.choices[0].finish_reason == "stop"
    seen = space.wait(run)
    assert seen["system"].startswith("Use the tools.\n\n# Tools")


def test_tool_choice_and_parallel_tool_calls_through_serve(server: str, space: Replica) -> None:
    """A whole reply without the call ``tool_choice`` asks for is asked once more, and the
    second is the answer (chat completions and the Responses API, which keeps only its
    items); ``parallel_tool_calls`` false: one call of two."""
    words = "/calls [] Just words."
    run = space.next_run()
    reply = client(server).chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": words}],
        tools=[WEATHER, TIME],
        tool_choice="required",
    )
    assert (reply.choices[0].message.content, reply.choices[0].finish_reason) == (
        "Just words.",
        "stop",
    )
    assert len(space.runs()) - run == 2
    tools = [{"type": "function", **tool["function"]} for tool in (WEATHER, TIME)]
    run = space.next_run()
    response = client(server).responses.create(
        model=MODEL,
        input=words,
        tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "function", "name": "get_time"},
    )
    assert [item.type for item in response.output] == ["message"]
    assert response.output_text == "Just words." and len(space.runs()) - run == 2
    single = client(server).responses.create(
        model=MODEL,
        input=CALLS,
        tools=tools,  # type: ignore[arg-type]
        parallel_tool_calls=False,
    )
    assert [(item.type, getattr(item, "name", None)) for item in single.output] == [
        ("message", None),
        ("function_call", "get_weather"),
    ]
    assert single.parallel_tool_calls is False


@pytest.mark.parametrize("streamed", [False, True], ids=["whole", "streamed"])
def test_stop_and_max_tokens_end_the_reply_and_its_job(
    server: str, space: Replica, streamed: bool
) -> None:
    api = client(server)
    for asked, text, reason in [
        ({"stop": ["t5 ", "never"]}, "t0 t1 t2 t3 t4 ", "stop"),
        ({"max_tokens": 7}, None, "length"),
    ]:
        run = space.next_run()
        messages = [{"role": "user", "content": "/long 3000"}]
        if streamed:
            chunks = list(
                api.chat.completions.create(
                    model=MODEL,
                    messages=messages,
                    stream=True,
                    stream_options={"include_usage": True},
                    **asked,
                )
            )
            got = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
            usage = chunks[-1].usage
        else:
            reply = api.chat.completions.create(model=MODEL, messages=messages, **asked)
            got, finish = reply.choices[0].message.content or "", reply.choices[0].finish_reason
            usage = reply.usage
        assert finish == reason
        if text is not None:
            assert got == text
        else:
            assert usage is not None and usage.completion_tokens == 7
        assert_stopped_early(space.wait(run), 3000)


def test_bad_tools_are_refused_before_any_job(server: str) -> None:
    api = client(server)
    with pytest.raises(openai.BadRequestError) as refused:
        api.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "launch"}},
        )
    assert refused.value.body["param"] == "tool_choice"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="up to 4"):
        api.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stop=list("abcde")
        )


def test_a_model_by_its_id_and_unknown_routes_in_openais_shape(server: str) -> None:
    model = client(server).models.retrieve(MODEL)
    assert (model.id, model.object) == (MODEL, "model")
    with pytest.raises(openai.NotFoundError):
        client(server).models.retrieve("gpt-4o")
    for method, path, status in [
        ("GET", "/v1/nothing", 404),
        ("POST", "/v1/models", 405),
        ("GET", "/v1/chat/completions", 405),
    ]:
        body = {} if method == "POST" else None  # (a POST that is not JSON: a 415 first)
        response = httpx.request(method, f"{server}{path}", json=body, timeout=10)
        assert response.status_code == status
        assert path in response.json()["error"]["message"]


def test_the_docs_openai_tool_round(server: str, tmp_path: Path) -> None:
    """docs/tools.md's example with the ``openai`` package, as written but for the address."""
    import subprocess
    import sys

    from .docs import example

    code = example("docs/tools.md", "client = OpenAI(base_url=")
    script = tmp_path / "example.py"
    script.write_text(code.replace("http://127.0.0.1:8000", server))
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "The tools said: 25 °C in Rome\n"


def test_structured_output_with_the_openai_clients_parse(server: str, space: Replica) -> None:
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        population: int

    api = client(server)
    parsed = api.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "user", "content": "Tell me about Lyon, 520000 people, fenced"}],
        response_format=City,
    )
    assert parsed.choices[0].message.parsed == City(name="Lyon", population=520000)
    run = space.next_run()
    # Asked twice, then an error that tells OpenAI's SDK not to retry it (x-should-retry): a
    # client with the SDK's default 2 retries made 6 jobs on the Space before it.
    default = openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=2)
    with pytest.raises(openai.APIStatusError) as caught:
        default.chat.completions.parse(
            model=MODEL,
            messages=[{"role": "user", "content": "Lyon, broken"}],
            response_format=City,
        )
    assert caught.value.status_code == 502 and "does not follow the schema" in caught.value.message
    assert caught.value.body["code"] == "invalid_reply"  # type: ignore[index]
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert len(space.runs()) - run == 2
    with pytest.raises(openai.APIError, match="does not follow the schema"):  # streamed: an event
        for _ in api.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "Lyon, broken"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "City", "schema": City.model_json_schema()},
            },
            stream=True,
        ):
            pass


def test_structured_output_in_the_responses_api(server: str) -> None:
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    response = client(server).responses.create(
        model=MODEL,
        input="Name a city: Porto",
        text={"format": {"type": "json_schema", "name": "city", "schema": schema}},
    )
    assert json.loads(response.output_text) == {"name": "Porto"}
    assert response.text.format.type == "json_schema"  # type: ignore[union-attr]
    for refused in ({"logprobs": True}, {"modalities": ["text", "audio"]}):
        with pytest.raises(openai.BadRequestError):
            client(server).chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "x"}],
                **refused,  # type: ignore[arg-type]
            )


def test_n_replies_at_once_as_choices_with_their_usage_summed(server: str, space: Replica) -> None:
    run = space.next_run()
    reply = client(server).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "/echo one of three"}], n=3
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert {c.message.content for c in reply.choices} == {"one of three"}
    assert reply.usage is not None
    each = (
        client(server)
        .chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "/echo one of three"}]
        )
        .usage
    )
    assert each is not None
    assert reply.usage.completion_tokens == 3 * each.completion_tokens
    assert reply.usage.prompt_tokens == each.prompt_tokens
    assert [r["query"] for r in space.runs()[run : run + 3]] == ["/echo one of three"] * 3
    with pytest.raises(openai.BadRequestError):
        client(server).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x"}], n=9
        )
