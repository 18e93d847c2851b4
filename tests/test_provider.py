"""The gpt4free-compatible provider against the replica Space, under both gradio generations."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, ClassVar

import pytest

from qwen_gradio import (
    InvalidMessagesError,
    InvalidOptionError,
    ModelNotSupportedError,
    Settings,
    SpaceError,
    StreamTimeoutError,
)
from qwen_gradio.provider import (
    AsyncResult,
    Qwen_Qwen_2_5_Max,
    flatten_prompt,
    generate_session_hash,
)

from .conftest import Replica
from .docs import example
from .helpers import RecordingProxy, assert_stopped_early, replica_reply

P = Qwen_Qwen_2_5_Max
REPLY = replica_reply("What is the capital of France?")
NOWHERE = "http://127.0.0.1:9"  # nothing listens: any request would fail as unavailable


def test_the_seed_attributes() -> None:
    assert P.label == "Qwen Qwen-2.5-Max"
    assert P.url == "https://qwen-qwen2-5-max-demo.hf.space"
    assert P.api_endpoint == "https://qwen-qwen2-5-max-demo.hf.space/gradio_api/queue/join"
    assert P.working and P.supports_stream and P.supports_system_message
    assert P.supports_message_history
    assert P.default_model == "qwen-qwen2-5-max" and P.models == ["qwen-qwen2-5-max"]
    assert P.model_aliases == {
        "qwen-2.5-max": "qwen-qwen2-5-max",
        "qwen-2-5-max": "qwen-qwen2-5-max",
    }


@pytest.mark.parametrize(
    ("asked", "resolved"),
    [
        ("", "qwen-qwen2-5-max"),
        ("auto", "qwen-qwen2-5-max"),
        (None, "qwen-qwen2-5-max"),
        ("qwen-qwen2-5-max", "qwen-qwen2-5-max"),
        ("qwen-2.5-max", "qwen-qwen2-5-max"),
        ("qwen-2-5-max", "qwen-qwen2-5-max"),
    ],
)
def test_get_model(asked: str | None, resolved: str) -> None:
    assert P.get_model(asked) == resolved


def test_unknown_models_and_bad_messages_fail_before_any_request() -> None:
    with pytest.raises(ModelNotSupportedError, match="gpt-4") as info:
        P.create_async_generator("gpt-4", "hi", space=NOWHERE)
    assert isinstance(info.value, ValueError)
    with pytest.raises(InvalidMessagesError):
        P.create_async_generator("", [], space=NOWHERE)
    with pytest.raises(InvalidMessagesError):
        P.create_completion("", [{"role": "user", "content": None}], space=NOWHERE)
    with pytest.raises(InvalidMessagesError):
        P.create_async_generator("", "hi", space=NOWHERE, history="sometimes")
    with pytest.raises(InvalidMessagesError, match="text only"):  # gpt4free passes images so
        P.create_async_generator("", "hi", space=NOWHERE, media=[("data:image/png;base64,", "a")])


def test_generate_session_hash() -> None:
    hashes = {generate_session_hash() for _ in range(100)}
    assert len(hashes) == 100
    assert all(re.fullmatch(r"[0-9a-f]{12}", h) for h in hashes)


def test_both_spellings(replica: Replica) -> None:
    messages = [{"role": "user", "content": "What is the capital of France?"}]

    async def both() -> tuple[list[str], list[str]]:
        gpt4free = [p async for p in P.create_async_generator("", messages, space=replica.url)]
        result = await P.create_async_generator("", messages, space=replica.url)
        assert isinstance(result, AsyncResult)
        seed = [p async for p in result.generator]
        return gpt4free, seed

    gpt4free, seed = asyncio.run(both())
    assert gpt4free == seed and "".join(seed) == REPLY
    assert len(seed) == len(REPLY.split()) * 2 - 1


def test_real_history_and_system_reach_the_space(replica: Replica) -> None:
    messages = [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "/history"},
    ]
    run = replica.next_run()
    assert "".join(P.create_completion("", messages, space=replica.url)) == '[["u1", "a1"]]'
    assert replica.wait(run)["system"] == "Sys"


def test_flatten_sends_the_originals_single_prompt(replica: Replica) -> None:
    messages = [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"},
    ]
    assert flatten_prompt(messages) == ("User: u1\nAssistant: a1\nUser: u2\nAssistant:", "Sys")
    run = replica.next_run()
    list(P.create_completion("", messages, space=replica.url, history="flatten"))
    received = replica.wait(run)
    assert received["query"] == "User: u1\nAssistant: a1\nUser: u2\nAssistant:"
    assert (received["history"], received["system"]) == ([], "Sys")


def test_create_completion_streams_and_not(replica: Replica) -> None:
    assert list(P.create_completion("", "/long 20", space=replica.url)) == [
        f"t{k} " for k in range(20)
    ]
    assert list(P.create_completion("", "/long 3", stream=False, space=replica.url)) == [
        "t0 t1 t2 "
    ]
    assert asyncio.run(P.create_async("", "/echo whole", space=replica.url)) == "whole"


def test_errors_keep_the_partial_text(replica: Replica) -> None:
    parts: list[str] = []
    with pytest.raises(SpaceError) as info:
        for part in P.create_completion("", "/fail 2 out of tokens", space=replica.url):
            parts.append(part)
    assert info.value.partial_text == "w1 w2 " == "".join(parts)


def test_timeout_kwarg(replica: Replica) -> None:
    with pytest.raises(StreamTimeoutError):
        list(P.create_completion("", "/slow 3 late", space=replica.url, timeout=0.5))


def test_closing_early_cancels_the_job(replica: Replica) -> None:
    run = replica.next_run()

    async def first_part() -> str:
        result = P.create_async_generator("", "/long 5000", space=replica.url)
        async for part in result:
            await result.aclose()
            return part
        return ""

    assert asyncio.run(first_part()) == "t0 "
    received = replica.wait(run)
    assert_stopped_early(received, 5000)


def test_proxy_is_used_for_every_request(replica6: Replica) -> None:
    before = len(replica6.requests())
    with RecordingProxy() as proxy:
        parts = list(P.create_completion("", "/echo proxied", space=replica6.url, proxy=proxy.url))
    assert parts == ["proxied"]
    reached = [f"{r['method']} {replica6.url}{r['path']}" for r in replica6.requests()[before:]]
    assert sorted(line.split("?")[0] for line in proxy.seen) == sorted(reached)
    assert len(reached) == 3  # config, join, data: all through the proxy


DOCS_EXAMPLES = [  # the gpt4free spelling, then the seed's two examples
    "create_async_generator(\n        model=",
    '"You are a helpful assistant."',
    "from qwen_gradio.typing import Messages",
]


@pytest.mark.parametrize("marker", DOCS_EXAMPLES)
def test_the_docs_examples_run_as_written(replica: Replica, marker: str, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example("docs/gpt4free.md", marker))
    env = {**os.environ, "QWEN_GRADIO_SPACE": replica.url}
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (result.stdout, result.stderr) == (REPLY, "")


class Qwen25(Qwen_Qwen_2_5_Max):
    """A provider for the Qwen2.5 demo's layout: model names mapped to the model-size option."""

    label = "Qwen2.5 demo"
    default_model = "qwen-2.5-72b"
    models: ClassVar[list[str]] = ["qwen-2.5-72b", "qwen-2.5-7b"]
    model_aliases: ClassVar[dict[str, str]] = {}
    model_spaces: ClassVar[dict[str, tuple[str | None, dict[str, Any]]]] = {}


def test_models_map_to_a_space_and_its_options(sized_replica: Replica) -> None:
    Qwen25.model_spaces = {
        "qwen-2.5-72b": (sized_replica.url, {"model_size": "72B"}),
        "qwen-2.5-7b": (sized_replica.url, {"model_size": "7B"}),
    }

    def reply(model: str, **kwargs: Any) -> str:
        return "".join(Qwen25.create_completion(model, "/options", **kwargs))

    assert reply("qwen-2.5-7b") == '{"model_size": "7B"}'
    assert reply("") == '{"model_size": "72B"}'
    assert reply("qwen-2.5-7b", options={"model_size": "14B"}) == '{"model_size": "14B"}'
    assert reply("qwen-2.5-7b", transport="gradio_client") == '{"model_size": "7B"}'
    with pytest.raises(InvalidOptionError, match="allowed: 72B"):
        reply("qwen-2.5-7b", options={"model_size": "1B"})
    with pytest.raises(ModelNotSupportedError):
        reply("qwen-2.5-1b")


def test_the_provider_takes_settings_whole(replica: Replica) -> None:
    settings = Settings.build(replica.url, timeout=30)
    assert list(P.create_completion("", "/echo whole settings", settings=settings)) == [
        "whole",
        " ",
        "settings",
    ]
    with pytest.raises(TypeError, match="not both"):
        P.create_completion("", "hi", settings=settings, space=replica.url)
