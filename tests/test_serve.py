"""``qwen-gradio serve``: a real server process in front of the replica (gradio 5 and 6), driven
by the official ``openai`` package (sync and async, streamed and whole) and by plain HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from qwen_gradio.replica import ReplicaServer

from .conftest import ROOT, Replica
from .docs import example
from .helpers import FrontEnd, ServerProcess, assert_stopped_early, free_port, replica_reply

HISTORY = [
    {"role": "system", "content": "Sys"},
    {"role": "user", "content": "u1"},
    {"role": "assistant", "content": "a1"},
    {"role": "user", "content": "/history"},
]
TOKENS = [f"t{k} " for k in range(20)]
KEY = "sk-test-key"


def serve(space: str, tmp_path: Path, *extra: str) -> ServerProcess:
    port = free_port()
    command = [sys.executable, "-m", "qwen_gradio", "serve", "--space", space, "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("QWEN_GRADIO_API_KEY", None)
    server = ServerProcess([*command, *extra], env, str(tmp_path))
    server.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
    server.port = port  # type: ignore[attr-defined]
    return server


@pytest.fixture
def server(replica: Replica, tmp_path: Path) -> Iterator[str]:
    with serve(replica.url, tmp_path, "--keepalive", "1") as running:
        assert "Traceback" not in running.startup
        yield running.url  # type: ignore[attr-defined]


def client(url: str, **kwargs: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, **kwargs)


def joins(replica: Replica) -> int:
    return sum(1 for r in replica.requests() if r["path"].endswith("queue/join"))


def test_whole_reply_with_history_system_and_ignored_parameters(
    server: str, replica: Replica
) -> None:
    run = replica.next_run()
    reply = client(server).chat.completions.create(
        model="qwen-2.5-max", messages=HISTORY, temperature=0.2, max_tokens=50, top_p=0.9
    )
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    assert reply.choices[0].message.content == '[["u1", "a1"]]'
    assert reply.choices[0].finish_reason == "stop" and reply.usage is not None
    assert replica.wait(run)["system"] == "Sys"


def test_streamed_reply_one_chunk_per_delta(server: str) -> None:
    chunks = list(
        client(server).chat.completions.create(
            model="qwen-2.5-max", messages=[{"role": "user", "content": "/long 20"}], stream=True
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.content for c in chunks[1:-1]] == TOKENS
    assert chunks[-1].choices[0].finish_reason == "stop" and not chunks[-1].choices[0].delta.content
    assert len({c.id for c in chunks}) == 1 and {c.object for c in chunks} == {
        "chat.completion.chunk"
    }


def test_async_client_and_content_parts(server: str) -> None:
    async def main() -> tuple[str | None, list[str]]:
        async_client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="x", max_retries=0)
        parts = [{"type": "text", "text": "/echo "}, {"type": "text", "text": "parts work"}]
        whole = await async_client.chat.completions.create(
            model="qwen-qwen2-5-max", messages=[{"role": "user", "content": parts}]
        )
        stream = await async_client.chat.completions.create(
            model="qwen-2-5-max", messages=[{"role": "user", "content": "/long 20"}], stream=True
        )
        deltas = [c.choices[0].delta.content async for c in stream if c.choices[0].delta.content]
        await async_client.close()
        return whole.choices[0].message.content, deltas

    whole, deltas = asyncio.run(main())
    assert whole == "parts work" and deltas == TOKENS


def test_models_and_health(server: str) -> None:
    models = [m.id for m in client(server).models.list()]
    assert models == ["qwen-qwen2-5-max", "qwen-2.5-max", "qwen-2-5-max"]
    health = httpx.get(f"{server}/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ("{not json", 400, "not valid JSON"),
        ({"messages": [{"role": "user", "content": "x"}]}, 400, "Missing required parameter"),
        ({"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]}, 404, "gpt-9"),
        ({"model": "qwen-2.5-max", "messages": []}, 400, "empty"),
        ({"model": "qwen-2.5-max", "messages": [{"role": "robot", "content": "x"}]}, 400, "robot"),
        ({"model": "qwen-2.5-max", "messages": "hi", "n": 2, "stream": True}, 400, "'n' above 1"),
        ({"model": "qwen-2.5-max", "messages": "hi", "tools": [{"x": 1}]}, 400, "tools[0] needs"),
        (
            {
                "model": "qwen-2.5-max",
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}],
            },
            400,
            "text only",
        ),
        ({"model": "qwen-2.5-max", "messages": "hi", "stream": "yes"}, 400, "'stream'"),
        (  # a number where OpenAI wants one: refused, not coerced (as OpenAI does)
            {"model": "qwen-2.5-max", "messages": "hi", "max_tokens": "x"},
            400,
            "Invalid type for 'max_tokens': expected an integer, but got a string instead.",
        ),
        ({"model": "qwen-2.5-max", "messages": "hi", "max_tokens": "5"}, 400, "'max_tokens'"),
        ({"model": "qwen-2.5-max", "messages": "hi", "temperature": 9}, 400, "'temperature'"),
        ({"model": "qwen-2.5-max", "messages": 7}, 400, "expected a string or an array"),
        ({"model": "qwen-2.5-max", "messages": ["hi"]}, 400, "'messages[0]'"),
        ({"model": "qwen-2.5-max", "messages": "hi", "stop": [1]}, 400, "'stop[0]'"),
        (
            {"model": "qwen-2.5-max", "messages": "hi", "stream_options": {"include_usage": 1}},
            400,
            "'stream_options.include_usage'",
        ),
        ('{"model": "qwen-2.5-max", "messages": "\\ud800 lone"}', 400, "surrogate"),
        ("[1, 2]", 400, "JSON object"),
    ],
)
def test_bad_input_is_an_openai_error_and_sends_no_job(
    server: str, replica: Replica, body: Any, status: int, fragment: str
) -> None:
    before = joins(replica)
    content = body if isinstance(body, str) else json.dumps(body)
    response = httpx.post(
        f"{server}/v1/chat/completions",
        content=content,
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert response.status_code == status
    error = response.json()["error"]
    assert fragment in error["message"] and error["type"] == "invalid_request_error"
    assert joins(replica) == before


def test_space_errors_before_the_first_token_are_http_errors(server: str) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        client(server).chat.completions.create(
            model="qwen-2.5-max", messages=[{"role": "user", "content": "/error kaput"}]
        )
    assert info.value.status_code == 502 and "kaput" in info.value.message
    with pytest.raises(openai.APIStatusError) as info:  # streamed: still an HTTP error
        list(
            client(server).chat.completions.create(
                model="qwen-2.5-max",
                messages=[{"role": "user", "content": "/error kaput"}],
                stream=True,
            )
        )
    assert info.value.status_code == 502


def test_a_mid_stream_error_is_an_error_event_after_the_text(server: str) -> None:
    received: list[str] = []
    with pytest.raises(openai.APIError) as info:
        for chunk in client(server).chat.completions.create(
            model="qwen-2.5-max",
            messages=[{"role": "user", "content": "/fail 2 kaput"}],
            stream=True,
        ):
            if chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received == ["w1 ", "w2 "] and "kaput" in info.value.message
    assert info.value.body["partial_text"] == "w1 w2 "  # type: ignore[index]


def test_a_client_that_goes_away_cancels_the_job(server: str, replica: Replica) -> None:
    run = replica.next_run()
    body = {"model": "qwen-2.5-max", "messages": "/long 5000", "stream": True}
    with httpx.stream("POST", f"{server}/v1/chat/completions", json=body, timeout=30) as response:
        for line in response.iter_lines():
            if '"t0 "' in line:
                break
    outcome = replica.wait(run)
    assert_stopped_early(outcome, 5000)


def test_twenty_concurrent_streams(server: str) -> None:
    async def main() -> list[str]:
        async_client = openai.AsyncOpenAI(base_url=f"{server}/v1", api_key="x", max_retries=0)

        async def one(i: int) -> str:
            tokens = json.dumps([f"r{i}w{k} " for k in range(30)])
            stream = await async_client.chat.completions.create(
                model="qwen-2.5-max",
                messages=[{"role": "user", "content": f"/tokens {tokens}"}],
                stream=True,
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream])

        replies = await asyncio.gather(*(one(i) for i in range(20)))
        await async_client.close()
        return replies

    replies = asyncio.run(main())
    assert replies == ["".join(f"r{i}w{k} " for k in range(30)) for i in range(20)]


def test_the_api_key_is_required_on_every_route(replica6: Replica, tmp_path: Path) -> None:
    with serve(replica6.url, tmp_path, "--api-key", KEY) as running:
        url = running.url  # type: ignore[attr-defined]
        for path in ("/v1/models", "/health"):
            assert httpx.get(f"{url}{path}", timeout=10).status_code == 401
            wrong = {"authorization": "Bearer sk-wrong"}
            assert httpx.get(f"{url}{path}", headers=wrong, timeout=10).status_code == 401
        with pytest.raises(openai.AuthenticationError):
            client(url).models.list()
        keyed = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
        reply = keyed.chat.completions.create(model="qwen-2.5-max", messages="/echo ok")  # type: ignore[arg-type]
        assert reply.choices[0].message.content == "ok"


def test_rate_limits_and_timeouts_have_their_statuses(replica6: Replica, tmp_path: Path) -> None:
    quota = json.dumps({"error": "You have exceeded your GPU quota. Retry in 0:01:23."})
    with (
        FrontEnd(lambda method, path: (429, "application/json", quota)) as front,
        serve(front.url, tmp_path) as running,
    ):
        response = httpx.post(
            f"{running.url}/v1/chat/completions",  # type: ignore[attr-defined]
            json={"model": "qwen-2.5-max", "messages": "hi"},
            timeout=30,
        )
        # refused while connecting: the wait the front end states is passed on, and a client
        # may try again after it (no x-should-retry: false)
        assert response.status_code == 429 and response.headers["retry-after"] == "83"
        assert "x-should-retry" not in response.headers
    with serve(replica6.url, tmp_path, "--timeout", "0.5") as running:
        url = running.url  # type: ignore[attr-defined]
        quota_error = "/error You have exceeded your GPU quota. Retry in 0:01:23."
        response = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "qwen-2.5-max", "messages": quota_error},
            timeout=30,
        )
        assert response.status_code == 429 and response.headers["retry-after"] == "83"
        with pytest.raises(openai.APIStatusError) as info:
            client(running.url).chat.completions.create(  # type: ignore[attr-defined]
                model="qwen-2.5-max", messages=[{"role": "user", "content": "/slow 3 late"}]
            )
        assert info.value.status_code == 504  # the job may have run: not to be sent again
        assert info.value.response.headers["x-should-retry"] == "false"


@contextlib.contextmanager
def one_slot_held(tmp_path: Path, seconds: int, max_queue: int) -> Iterator[Any]:
    """A server before a Space with one slot, which a streamed ``/slow`` reply holds for
    ``seconds``: yields an httpx client of the server, and that reply's response."""
    holding = {"model": "qwen-2.5-max", "messages": f"/slow {seconds} held", "stream": True}
    with (
        ReplicaServer(concurrency_limit=1, max_queue=max_queue) as space,
        serve(space.url, tmp_path, "--keepalive", "0.3") as running,
        httpx.Client(base_url=running.url, timeout=30) as http,  # type: ignore[attr-defined]
        http.stream("POST", "/v1/chat/completions", json=holding) as first,
    ):
        yield http, first


def test_a_long_queue_wait_is_kept_alive(tmp_path: Path) -> None:
    waiting = {"model": "qwen-2.5-max", "messages": "/echo waited", "stream": True}
    with (
        one_slot_held(tmp_path, seconds=2, max_queue=5) as (http, first),
        http.stream("POST", "/v1/chat/completions", json=waiting) as second,  # queued behind it
    ):
        assert second.status_code == 200  # the headers went out while it waited
        seen = list(itertools.takewhile(lambda line: line != "data: [DONE]", second.iter_lines()))
        assert "held" in first.read().decode()
    comments = [line for line in seen if line.startswith(":")]
    assert any("queue" in line for line in comments) and ": keep-alive" in comments
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in seen
        if line.startswith("data: {")
    )
    assert text == "waited"


def test_the_app_runs_under_any_asgi_server(replica6: Replica, tmp_path: Path) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "qwen_gradio.serve:app",
        "--port",
        str(port),
        "--workers",
        "2",  # no per-conversation state: several processes answer alike
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "QWEN_GRADIO_SPACE": replica6.url,
        "QWEN_GRADIO_API_KEY": KEY,
        "QWEN_GRADIO_MAX_BODY": "2000",
    }
    with ServerProcess(command, env, str(tmp_path), ready="Application startup complete"):
        large = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "qwen-2.5-max", "messages": "x" * 3000},
            headers={"authorization": f"Bearer {KEY}"},
            timeout=10,
        )
        assert large.status_code == 413  # the server's own settings, from the environment
        keyed = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=KEY, max_retries=0)
        for i in range(4):
            reply = keyed.chat.completions.create(
                model="qwen-2.5-max", messages=[{"role": "user", "content": f"/echo n{i}"}]
            )
            assert reply.choices[0].message.content == f"n{i}"
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 401


def test_the_docs_openai_example(server: str, tmp_path: Path) -> None:
    code = example("docs/serve.md", "stream = client.chat.completions.create(")
    script = tmp_path / "example.py"
    script.write_text(code.replace("http://127.0.0.1:8000", server))  # this test's server
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == replica_reply("Hello") + "\n"


def test_a_client_that_drops_a_whole_request_cancels_the_job(server: str, replica: Replica) -> None:
    run = replica.next_run()
    body = {"model": "qwen-2.5-max", "messages": "/long 5000"}
    with pytest.raises(httpx.ReadTimeout):  # the client gives up and closes its connection
        httpx.post(f"{server}/v1/chat/completions", json=body, timeout=2)
    outcome = replica.wait(run)
    assert_stopped_early(outcome, 5000)


def test_an_unavailable_space_and_a_full_queue_are_503(tmp_path: Path) -> None:
    body = {"model": "qwen-2.5-max", "messages": "/echo refused"}
    with serve("http://127.0.0.1:9", tmp_path) as running:  # nothing listens there
        response = httpx.post(f"{running.url}/v1/chat/completions", json=body, timeout=30)  # type: ignore[attr-defined]
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "space_unavailable"
    queued = {"model": "qwen-2.5-max", "messages": "/echo queued", "stream": True}
    with (
        one_slot_held(tmp_path, seconds=5, max_queue=1) as (http, _),
        http.stream("POST", "/v1/chat/completions", json=queued),  # waits: the queue is full
    ):
        response = http.post("/v1/chat/completions", json=body)
        assert response.status_code == 503 and "retry-after" in response.headers
        assert response.json()["error"]["code"] == "queue_full"


def test_options_per_server_and_per_request(tmp_path: Path) -> None:
    from .conftest import shared_replica

    sized = shared_replica("gradio6", "qwen2.5")
    with serve(sized.url, tmp_path, "-o", "model_size=32B", "--transport", "gradio_client") as up:
        api = client(up.url)  # type: ignore[attr-defined]
        whole = api.chat.completions.create(
            model="qwen-2.5-max", messages=[{"role": "user", "content": "/options"}]
        )
        assert whole.choices[0].message.content == '{"model_size": "32B"}'
        chunks = api.chat.completions.create(
            model="qwen-2.5-max",
            messages=[{"role": "user", "content": "/options"}],
            stream=True,
            extra_body={"options": {"Model size": "7B"}},
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == '{"model_size": "7B"}'
        before = joins(sized)
        for stream in (False, True):
            with pytest.raises(openai.BadRequestError) as caught:
                api.chat.completions.create(
                    model="qwen-2.5-max",
                    messages=[{"role": "user", "content": "hi"}],
                    stream=stream,
                    extra_body={"options": {"model_size": "1B"}},
                )
            error = caught.value.body
            assert isinstance(error, dict) and error["param"] == "options"
            assert "allowed: 72B, 32B, 14B, 7B" in error["message"]
        with pytest.raises(openai.BadRequestError, match="'options': expected an object"):
            api.chat.completions.create(
                model="qwen-2.5-max",
                messages=[{"role": "user", "content": "hi"}],
                extra_body={"options": ["7B"]},
            )
        assert joins(sized) == before
