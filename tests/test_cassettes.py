"""Replayed from cassettes recorded from the replica (gradio 4.44, 5.x, 6): no server, no network.

Re-record with ``python tests/record.py`` (the replica, every generation) or
``python tests/record.py --live`` (the real Space, for someone online): see the README.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from qwen_gradio import QwenClient, SpaceError
from qwen_gradio.client import _shared as shared_clients
from qwen_gradio.provider import Qwen_Qwen_2_5_Max

from .cassette_config import (
    CASSETTES,
    RECORD_GENERATION_ENV,
    RECORD_URL_ENV,
    vcr_settings,
)
from .helpers import replica_reply

pytestmark = [pytest.mark.vcr, pytest.mark.block_network]

# "live": cassettes recorded from the real Space with ``record.py --live`` (when there are some).
RECORDING_LIVE = os.environ.get(RECORD_GENERATION_ENV) == "live"
GENERATIONS = ["gradio4", "gradio5", "gradio6"] + (
    ["live"] if RECORDING_LIVE or (CASSETTES / "live").is_dir() else []
)
REPLY = replica_reply("What is the capital of France?")
TOKENS = ["ha", " ha", " ha", " ", "  ", "你好", "，", "世界", " 👋🏽", " end."]


@pytest.fixture(params=GENERATIONS)
def generation(request: pytest.FixtureRequest, record_mode: str) -> str:
    recording = os.environ.get(RECORD_GENERATION_ENV)
    if record_mode != "none" and recording != request.param:
        pytest.skip(f"recording {recording}, not {request.param}")
    return str(request.param)


@pytest.fixture
def vcr_cassette_dir(generation: str) -> str:
    return str(CASSETTES / generation)


@pytest.fixture
def default_cassette_name(request: pytest.FixtureRequest) -> str:
    return str(request.node.originalname)


@pytest.fixture
def vcr_config() -> dict[str, Any]:
    return vcr_settings()


@pytest.fixture
def space(generation: str, record_mode: str) -> Iterator[str]:
    """Where the client connects: the recording target, or (on replay) a name that resolves
    nowhere — the network is blocked and only the cassette answers."""
    shared_clients.clear()  # each cassette holds its own connection to the Space
    if record_mode == "none":
        yield f"http://{generation}.cassette.invalid/"
    else:
        yield os.environ[RECORD_URL_ENV]
    shared_clients.clear()


@pytest.fixture
def replica_only(generation: str) -> None:
    if generation == "live":
        pytest.skip("scripted replies exist only on the replica")


def test_plain_reply_sync(space: str, generation: str) -> None:
    with QwenClient(space) as client, client.stream("What is the capital of France?") as stream:
        deltas = list(stream)
    assert stream.completed and "".join(deltas) == stream.text
    if generation != "live":
        assert stream.text == REPLY
        assert len(deltas) == len(REPLY.split()) * 2 - 1  # words and the spaces between them


async def test_plain_reply_async(space: str, generation: str) -> None:
    async with (
        QwenClient(space) as client,
        client.astream("What is the capital of France?") as stream,
    ):
        deltas = [delta async for delta in stream]
    assert stream.completed and "".join(deltas) == stream.text
    if generation != "live":
        assert stream.text == REPLY


def test_repeats_whitespace_emoji_cjk(space: str, replica_only: None) -> None:
    with QwenClient(space) as client:
        assert list(client.stream("/tokens " + json.dumps(TOKENS))) == TOKENS


def test_system_prompt_and_history(space: str, generation: str) -> None:
    messages = [
        {"role": "system", "content": "Answer in one word."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "/history" if generation != "live" else "And of Italy?"},
    ]
    with QwenClient(space) as client:
        reply = client.chat(messages)
        system = client.chat("/system", system="Be brief.") if generation != "live" else None
    if generation == "live":
        assert reply.strip()
    else:
        assert json.loads(reply) == [["Capital of France?", "Paris."]]
        assert system == "Be brief."


def test_app_error_mid_stream(space: str, replica_only: None) -> None:
    received = []
    with QwenClient(space) as client, pytest.raises(SpaceError) as info:
        for delta in client.stream("/fail 3 the model broke"):
            received.append(delta)
    assert info.value.message == "the model broke"
    assert info.value.partial_text == "w1 w2 w3 " == "".join(received)


async def test_provider_gpt4free_spelling(space: str, generation: str) -> None:
    parts = [
        part
        async for part in Qwen_Qwen_2_5_Max.create_async_generator(
            model="qwen-2.5-max",
            messages=[{"role": "user", "content": "What is the capital of France?"}],
            space=space,
        )
    ]
    assert len(parts) > 1 and all(parts)
    if generation != "live":
        assert "".join(parts) == REPLY


async def test_provider_seed_spelling(space: str, generation: str) -> None:
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    result = await Qwen_Qwen_2_5_Max.create_async_generator(
        model="qwen-qwen2-5-max", messages=messages, space=space
    )
    text = "".join([part async for part in result.generator])
    assert text == REPLY if generation != "live" else text.strip()


def test_provider_streams_a_20_token_reply_token_by_token(space: str, replica_only: None) -> None:
    parts = list(Qwen_Qwen_2_5_Max.create_completion("", "/long 20", space=space))
    assert parts == [f"t{k} " for k in range(20)]  # 20 fragments (the seed's original gave 2)


def test_a_token_never_reaches_the_cassette(space: str, replica_only: None) -> None:
    with QwenClient(space, hf_token="hf_" + "S3cr3t" * 6) as client:
        assert client.chat("/echo secret kept") == "secret kept"
