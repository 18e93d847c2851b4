"""Token counts (``usage``) with Qwen's own tokenizer: on the Python streams, on serve's whole
replies and, when ``include_usage`` asks for it, as the last chunk of a stream; in batch lines."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from click.testing import CliRunner

from qwen_gradio import QwenClient, ReplyCompleted, Usage, to_conversation
from qwen_gradio.cli import main
from qwen_gradio.tokens import count_conversation, count_text

from .conftest import Replica
from .helpers import replica_reply
from .test_serve import serve

MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hello there"},
]


def expected(messages: object, reply: str) -> Usage:
    return Usage(count_conversation(to_conversation(messages)), count_text(reply))  # type: ignore[arg-type]


def test_the_python_streams_count_the_reply(replica6: Replica) -> None:
    reply = replica_reply("Hello there")
    with QwenClient(replica6.url) as client:
        with client.stream(MESSAGES) as stream:
            events = list(stream.events())
            assert stream.usage == expected(MESSAGES, reply)
        (done,) = [e for e in events if isinstance(e, ReplyCompleted)]
        assert done.usage == expected(MESSAGES, reply) and done.usage.total_tokens == (
            done.usage.prompt_tokens + done.usage.completion_tokens
        )

        async def read() -> Usage | None:
            async with client.astream(MESSAGES) as stream:
                await stream.until_done()
                return stream.usage

        assert asyncio.run(read()) == expected(MESSAGES, reply)
    assert expected("hi", "Hello world") == Usage(20, 2)  # known texts: the tokenizer's own


@pytest.fixture
def api(replica6: Replica, tmp_path: Path) -> Iterator[openai.OpenAI]:
    with serve(replica6.url, tmp_path, "--quiet") as running:
        url = running.url  # type: ignore[attr-defined]
        yield openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)


def test_a_whole_reply_has_its_usage(api: openai.OpenAI) -> None:
    completion = api.chat.completions.create(model="qwen-2.5-max", messages=MESSAGES)  # type: ignore[arg-type]
    reply = completion.choices[0].message.content or ""
    assert reply == replica_reply("Hello there")
    assert completion.usage is not None
    usage = expected(MESSAGES, reply)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert completion.usage.total_tokens == usage.total_tokens


@pytest.mark.parametrize("include", [True, False])
def test_a_stream_ends_with_a_usage_chunk_exactly_when_asked(
    api: openai.OpenAI, include: bool
) -> None:
    extra = {"stream_options": {"include_usage": True}} if include else {}
    chunks = list(
        api.chat.completions.create(
            model="qwen-2.5-max",
            messages=MESSAGES,  # type: ignore[arg-type]
            stream=True,
            **extra,  # type: ignore[call-overload]
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    with_usage = [c for c in chunks if c.usage is not None]
    if not include:
        assert with_usage == [] and all(c.choices for c in chunks)
        return
    assert with_usage == [chunks[-1]] and chunks[-1].choices == []
    usage = expected(MESSAGES, text)
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (  # type: ignore[union-attr]
        usage.prompt_tokens,
        usage.completion_tokens,
    )


def test_batch_lines_carry_the_usage_when_asked(replica6: Replica, tmp_path: Path) -> None:
    prompts = tmp_path / "in.jsonl"
    prompts.write_text('"Hello there"\n')
    out, plain = tmp_path / "out.jsonl", tmp_path / "plain.jsonl"
    for path, flags in ((plain, []), (out, ["--usage"])):
        result = CliRunner().invoke(
            main, ["batch", str(prompts), "-o", str(path), "--space", replica6.url, *flags]
        )
        assert result.exit_code == 0, result.stderr
    assert json.loads(plain.read_text())["usage"] is None  # not asked: not counted
    (line,) = [json.loads(x) for x in out.read_text().splitlines()]
    usage = expected("Hello there", line["text"])
    assert line["usage"] == {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def test_usage_costs_nothing_until_it_is_read(replica6: Replica) -> None:
    """A reply nobody asks the usage of never loads the tokenizer (0.5 s that would hold the
    GIL while deltas stream); reading it counts then. In a fresh process: this one's tests
    have loaded it already."""
    script = f"""
import qwen_gradio.tokens as tokens
from qwen_gradio import QwenClient
with QwenClient({replica6.url!r}, cache=False) as client, client.stream("Hello there") as s:
    text = s.until_done()
    assert s.completed and tokens._encoding is None, "loaded before anyone asked"
    assert s.usage.completion_tokens == tokens.count_text(text) > 0
    assert tokens._encoding is not None
print("ok")
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.stdout.strip() == "ok", done.stderr
