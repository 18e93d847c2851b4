"""OpenAI's Responses API on ``qwen-gradio serve``, driven by the official ``openai`` package:
whole and streamed, instructions, continued conversations, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from qwen_gradio.tokens import count_text

from .helpers import replica_reply
from .test_serve import serve


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from .conftest import shared_replica

    replica = shared_replica("gradio6")
    with serve(replica.url, tmp_path_factory.mktemp("responses"), "--quiet") as running:
        yield running.url  # type: ignore[attr-defined]


@pytest.fixture
def api(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def test_a_whole_response(api: openai.OpenAI) -> None:
    response = api.responses.create(model="qwen-2.5-max", input="Hello")
    assert response.output_text == replica_reply("Hello")
    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.usage is not None
    assert response.usage.output_tokens == count_text(replica_reply("Hello"))


def test_instructions_are_the_system_prompt_and_items_the_messages(api: openai.OpenAI) -> None:
    response = api.responses.create(
        model="qwen-2.5-max", input="/system", instructions="Answer in French."
    )
    assert response.output_text == "Answer in French."
    items = [
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": [{"type": "output_text", "text": "a1"}]},
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "/history"}],
        },
    ]
    history = api.responses.create(model="qwen-2.5-max", input=items)  # type: ignore[arg-type]
    assert json.loads(history.output_text) == [["u1", "a1"]]


def test_a_streamed_response_is_openai_s_event_sequence(api: openai.OpenAI) -> None:
    events = list(api.responses.create(model="qwen-2.5-max", input="/echo one two", stream=True))
    kinds = [event.type for event in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]  # type: ignore[union-attr]
    assert deltas == ["one", " ", "two"]  # the replica's tokens, one event each
    assert [e.sequence_number for e in events] == list(range(len(events)))
    completed = events[-1].response  # type: ignore[union-attr]
    assert completed.output_text == "one two" and completed.usage.output_tokens == 2


def test_previous_response_id_continues_the_conversation(api: openai.OpenAI) -> None:
    first = api.responses.create(model="qwen-2.5-max", input="/echo first answer")
    second = api.responses.create(
        model="qwen-2.5-max", input="/history", previous_response_id=first.id
    )
    assert json.loads(second.output_text) == [["/echo first answer", "first answer"]]
    with pytest.raises(openai.NotFoundError) as caught:
        api.responses.create(model="qwen-2.5-max", input="x", previous_response_id="resp_gone")
    assert caught.value.body["code"] == "previous_response_not_found"  # type: ignore[index]
    unkept = api.responses.create(model="qwen-2.5-max", input="/echo x", store=False)
    with pytest.raises(openai.NotFoundError):
        api.responses.create(model="qwen-2.5-max", input="y", previous_response_id=unkept.id)


def test_what_the_space_cannot_honour_is_refused_before_any_job(
    api: openai.OpenAI, url: str
) -> None:
    with pytest.raises(openai.BadRequestError, match="only function tools"):
        api.responses.create(model="qwen-2.5-max", input="x", tools=[{"type": "web_search"}])
    image = [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]
    with pytest.raises(openai.BadRequestError, match="text only"):
        api.responses.create(model="qwen-2.5-max", input=image)  # type: ignore[arg-type]
    wrong = httpx.post(
        f"{url}/v1/responses", json={"model": "qwen-2.5-max", "input": 5}, timeout=10
    )
    assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "input"


def test_a_failing_reply_is_an_error_or_a_failed_event(api: openai.OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        api.responses.create(model="qwen-2.5-max", input="/error the model broke")
    assert caught.value.status_code == 502 and "the model broke" in str(caught.value)
    events = list(
        api.responses.create(model="qwen-2.5-max", input="/error the model broke", stream=True)
    )
    assert events[-1].type == "response.failed"
    assert "the model broke" in events[-1].response.error.message  # type: ignore[union-attr]


def test_the_docs_example(url: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    from .docs import example

    code = example("docs/serve.md", "client.responses.create(")
    script = tmp_path / "example.py"
    script.write_text(code.replace("http://127.0.0.1:8000", url))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    first, second = done.stdout.splitlines()
    hello = replica_reply("Hello")
    assert first == f"{hello} {count_text(hello)}" and second == replica_reply("And again?")


WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CALL = '/calls [["get_weather", {"city": "Paris"}]] Checking.'


def test_function_tools_whole_and_a_tool_round_by_previous_response_id(
    api: openai.OpenAI,
) -> None:
    first = api.responses.create(model="qwen-2.5-max", input=CALL, tools=[WEATHER])  # type: ignore[list-item]
    kinds = [item.type for item in first.output]
    assert kinds == ["message", "function_call"] and first.output_text == "Checking."
    call = first.output[1]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    second = api.responses.create(
        model="qwen-2.5-max",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],  # type: ignore[union-attr,list-item]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.output_text == "The tools said: sunny" and second.status == "completed"


def test_function_tools_streamed_as_openai_documents_them(api: openai.OpenAI) -> None:
    events = list(
        api.responses.create(model="qwen-2.5-max", input=CALL, tools=[WEATHER], stream=True)  # type: ignore[list-item]
    )
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-6:] == [
        "response.output_item.done",  # the message, closed when the call begins
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    done = events[-1].response  # type: ignore[union-attr]
    assert [item.type for item in done.output] == ["message", "function_call"]


def test_max_output_tokens_makes_an_incomplete_response(api: openai.OpenAI) -> None:
    response = api.responses.create(model="qwen-2.5-max", input="/long 3000", max_output_tokens=9)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 9
    events = list(
        api.responses.create(
            model="qwen-2.5-max", input="/long 3000", max_output_tokens=9, stream=True
        )
    )
    assert events[-1].type == "response.incomplete"
