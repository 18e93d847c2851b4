"""``qwen-gradio serve`` as an operator meets it: huge and endless bodies, many clients dropping
at once, shutdown signals with replies in flight, a full server, browsers, a Space that is down.
Real processes on loopback (the replica, the server as a subprocess), raw sockets where a client
library would hide the fault; asserted: what the client sees, what the Space saw (its run log),
the server's memory (from /proc) and its output. Timings are the benchmark's (bench/serve.py)."""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ROOT, Replica, start_replica
from .helpers import free_port, open_streams
from .test_serve import serve

BODY_LIMIT = 1024 * 1024
LONG = "/long 100000"  # a reply far longer than any test: it is always cut short


@pytest.fixture(scope="module")
def wide() -> Iterator[Replica]:
    """A replica that runs 64 jobs at once (the Space runs 5): every stream is mid-reply."""
    replica = start_replica(sys.executable, "gradio6-wide", concurrency=64)
    yield replica
    assert replica.process is not None
    replica.process.terminate()
    replica.process.wait(timeout=10)


def rss_kb(pid: int) -> int:
    """The process's resident memory, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def joins(replica: Replica) -> int:
    return sum(1 for r in replica.requests() if r["path"].endswith("queue/join"))


def response_head(sock: socket.socket) -> tuple[int, bytes]:
    """The status and the rest of what the server sent, up to its closing the connection (0
    if the connection was reset first: a server that closes a connection with a body still
    coming makes its system reset it, which may drop the response on the way)."""
    sock.settimeout(30)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        if not data.startswith(b"HTTP/"):
            return 0, data
    return int(data.split(b" ", 2)[1]), data


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(
    wide: Replica, tmp_path: Path
) -> None:
    with serve(wide.url, tmp_path, "--max-body", str(BODY_LIMIT)) as server:
        before, jobs = rss_kb(server.process.pid), joins(wide)
        with socket.create_connection(("127.0.0.1", server.port)) as sock:  # type: ignore[attr-defined]
            head = (
                "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
            )
            sock.sendall(head.encode() + b'{"model": "qwen-2.5-max", "messages": "hi", "pad": "')
            status, data = response_head(sock)
        assert status == 413
        error = json.loads(data.split(b"\r\n\r\n", 1)[1])["error"]
        assert error["code"] == "request_too_large" and str(BODY_LIMIT) in error["message"]
        assert joins(wide) == jobs
        assert rss_kb(server.process.pid) - before < 10_000  # KB: nothing of the 20 MB held


def test_an_endless_chunked_body_is_cut_off_at_the_limit(wide: Replica, tmp_path: Path) -> None:
    """200 MB sent in chunks: the server answers 413 once 1 MB has come and reads no more."""
    with serve(wide.url, tmp_path, "--max-body", str(BODY_LIMIT)) as server:
        before, jobs = rss_kb(server.process.pid), joins(wide)
        chunk = b"x" * 65536
        framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
        sent = 0
        with socket.create_connection(("127.0.0.1", server.port)) as sock:  # type: ignore[attr-defined]
            head = (
                "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            sock.sendall(head.encode())
            while sent < 200 * 1024 * 1024:
                readable, writable, _ = select.select([sock], [sock], [], 10)
                if readable or not writable:  # answered, or no longer reading
                    break
                try:
                    sent += sock.send(framed)
                except OSError:  # it closed the connection
                    break
            status, data = response_head(sock)
        assert status in (413, 0) and (status == 0 or b"request_too_large" in data)
        server.wait_for('"POST /v1/chat/completions" 413')  # what it answered, either way
        assert sent < 50 * 1024 * 1024  # it stopped reading long before the end
        assert joins(wide) == jobs
        assert rss_kb(server.process.pid) - before < 20_000  # KB


def test_fifty_dropped_streams_are_all_stopped_on_the_space(wide: Replica, tmp_path: Path) -> None:
    with serve(wide.url, tmp_path, "--quiet") as server:
        first = wide.next_run()

        async def drop_all() -> None:
            http, opened = await open_streams(server.url, 50, LONG)  # type: ignore[attr-defined]
            for response, _ in opened:
                await response.aclose()
            await http.aclose()

        asyncio.run(drop_all())
        outcomes = [wide.wait(run, timeout=30) for run in range(first, first + 50)]
        assert [o["outcome"] for o in outcomes] == ["stopped"] * 50
        assert all(o["tokens_sent"] < 100000 for o in outcomes)
    assert "Traceback" not in "".join(server.log)


def test_a_dropped_whole_request_cancels_its_job_without_a_traceback(
    wide: Replica, tmp_path: Path
) -> None:
    with serve(wide.url, tmp_path) as server:
        run = wide.next_run()
        body = {"model": "qwen-2.5-max", "messages": LONG}
        with socket.create_connection(("127.0.0.1", server.port)) as sock:  # type: ignore[attr-defined]
            payload = json.dumps(body).encode()
            head = (
                "POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
            )
            sock.sendall(head.encode() + payload)
            wide.started(run)
        assert wide.wait(run, timeout=30)["outcome"] == "stopped"
    log = "".join(server.log)
    assert "Traceback" not in log and "RuntimeError" not in log


def test_sigterm_ends_the_replies_in_flight_after_the_grace_period(
    wide: Replica, tmp_path: Path
) -> None:
    """Ten streams and a whole request in flight; SIGTERM: after the grace period (1 s here)
    each stream ends with an OpenAI error event and [DONE], the whole request with a 503, every
    job is stopped on the Space, and the server exits."""
    with serve(wide.url, tmp_path, "--grace", "1") as server:
        first = wide.next_run()
        whole: list[httpx.Response] = []
        body = {"model": "qwen-2.5-max", "messages": LONG}
        thread = threading.Thread(
            target=lambda: whole.append(
                httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)  # type: ignore[attr-defined]
            )
        )
        thread.start()
        wide.started(first)

        async def scenario() -> list[list[str]]:
            http, opened = await open_streams(server.url, 10, LONG)  # type: ignore[attr-defined]
            server.process.send_signal(signal.SIGTERM)
            ends = await asyncio.gather(*(rest(lines) for _, lines in opened))
            await http.aclose()
            return list(ends)

        async def rest(lines: Any) -> list[str]:
            return [line async for line in lines if line]

        ends = asyncio.run(scenario())
        thread.join(timeout=60)
        assert server.process.wait(timeout=30) in (0, -signal.SIGTERM)
    for lines in ends:
        assert lines[-1] == "data: [DONE]"
        error = json.loads(lines[-2].removeprefix("data: "))["error"]
        assert error["code"] == "server_shutting_down" and error["partial_text"].startswith("t0 ")
    assert whole[0].status_code == 503
    assert whole[0].json()["error"]["code"] == "server_shutting_down"
    outcomes = [wide.wait(run, timeout=30)["outcome"] for run in range(first, first + 11)]
    assert outcomes == ["stopped"] * 11
    assert "Traceback" not in "".join(server.log)


def test_a_second_signal_skips_the_grace_period(wide: Replica, tmp_path: Path) -> None:
    with serve(wide.url, tmp_path, "--grace", "600") as server:
        first = wide.next_run()

        async def scenario() -> list[list[str]]:
            http, opened = await open_streams(server.url, 3, LONG)  # type: ignore[attr-defined]
            server.process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(server.wait_for, "Shutting down")
            server.process.send_signal(signal.SIGINT)
            ends = [[line async for line in lines if line] for _, lines in opened]
            await http.aclose()
            return ends

        ends = asyncio.run(scenario())
        assert server.process.wait(timeout=30) is not None
    assert all(lines[-1] == "data: [DONE]" for lines in ends)
    outcomes = [wide.wait(run, timeout=30)["outcome"] for run in range(first, first + 3)]
    assert outcomes == ["stopped"] * 3


def test_every_response_has_a_request_id_and_an_access_log_line(
    wide: Replica, tmp_path: Path
) -> None:
    with serve(wide.url, tmp_path) as server:
        url = server.url  # type: ignore[attr-defined]
        given = httpx.get(f"{url}/health", headers={"x-request-id": "abc-123"}, timeout=10)
        made = httpx.post(f"{url}/v1/chat/completions", json={"messages": "hi"}, timeout=10)
        ok = httpx.post(
            f"{url}/v1/chat/completions",
            json={"model": "qwen-2.5-max", "messages": "/echo fine"},
            timeout=30,
        )
        odd = httpx.get(f"{url}/health", headers={"x-request-id": "x" * 500}, timeout=10)
    assert given.headers["x-request-id"] == "abc-123"
    request_id = made.headers["x-request-id"]
    assert request_id.startswith("req_") and made.json()["error"]["request_id"] == request_id
    assert ok.status_code == 200 and ok.headers["x-request-id"].startswith("req_")
    assert odd.headers["x-request-id"].startswith("req_")  # not echoed: not a well-formed id
    lines = [line for line in server.log if "req_" in line or "abc-123" in line]
    assert len(lines) == 4
    assert '"GET /health" 200' in lines[0] and lines[0].rstrip().endswith("abc-123")
    assert '"POST /v1/chat/completions" 400' in lines[1] and request_id in lines[1]
    assert '"POST /v1/chat/completions" 200' in lines[2]


def test_quiet_leaves_out_the_access_log(wide: Replica, tmp_path: Path) -> None:
    with serve(wide.url, tmp_path, "--quiet") as server:
        response = httpx.get(f"{server.url}/health", timeout=10)  # type: ignore[attr-defined]
    assert response.status_code == 200
    assert not [line for line in server.log if '"GET /health"' in line]


def test_replies_beyond_the_bound_get_a_503_at_once(wide: Replica, tmp_path: Path) -> None:
    with serve(wide.url, tmp_path, "--max-replies", "2", "--quiet") as server:
        url = server.url  # type: ignore[attr-defined]

        async def scenario() -> tuple[httpx.Response, dict[str, Any]]:
            http, opened = await open_streams(url, 2, LONG)
            jobs = joins(wide)
            body = {"model": "qwen-2.5-max", "messages": "/echo one too many"}
            async with httpx.AsyncClient(timeout=10) as other:
                refused = await other.post(f"{url}/v1/chat/completions", json=body)
                health = (await other.get(f"{url}/health")).json()
            assert joins(wide) == jobs  # refused before any job
            for response, _ in opened:
                await response.aclose()
            await http.aclose()
            return refused, health

        refused, health = asyncio.run(scenario())
    assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
    assert refused.json()["error"]["code"] == "server_overloaded"
    assert health["replies"] == 2


@pytest.mark.parametrize("allowed", [False, True])
def test_cors_is_off_unless_an_origin_is_allowed(
    wide: Replica, tmp_path: Path, allowed: bool
) -> None:
    extra = ("--cors-origin", "https://app.example") if allowed else ()
    with serve(wide.url, tmp_path, "--quiet", *extra) as server:
        url = server.url  # type: ignore[attr-defined]
        preflight = {
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization, content-type",
        }
        answer = httpx.options(f"{url}/v1/chat/completions", headers=preflight, timeout=10)
        other = httpx.options(
            f"{url}/v1/chat/completions",
            headers={**preflight, "origin": "https://evil.example"},
            timeout=10,
        )
        simple = httpx.get(f"{url}/v1/models", headers={"origin": "https://app.example"})
    if allowed:
        assert answer.headers["access-control-allow-origin"] == "https://app.example"
        assert simple.headers["access-control-allow-origin"] == "https://app.example"
        assert "access-control-allow-origin" not in other.headers
    else:
        assert "access-control-allow-origin" not in answer.headers
        assert "access-control-allow-origin" not in simple.headers


def test_health_answers_from_what_it_knows_when_the_space_is_down(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with serve(dead, tmp_path, "--quiet") as server:
        health = httpx.get(f"{server.url}/health", timeout=10)  # type: ignore[attr-defined]
    body = health.json()
    assert health.status_code == 200 and body["status"] == "ok"
    assert body["members"] == [
        {
            "space": dead,
            "connected": False,
            "cooling_down": False,
            "in_flight": 0,
            "fleet_in_flight": 0,
        }
    ]
    assert body["state"] == {"url": "local", "shared": False}


def test_batch_on_a_full_disk_ends_with_one_line_and_keeps_what_it_wrote(
    wide: Replica, tmp_path: Path
) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        if os.environ.get("QWEN_GRADIO_REQUIRE_TMPFS") == "1":
            pytest.fail(f"cannot mount a small tmpfs: {mounted.stderr.decode().strip()}")
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        prompts = tmp_path / "prompts.txt"
        lines = (json.dumps(f"/echo line {k} of a batch that will not fit") for k in range(300))
        prompts.write_text("\n".join(lines) + "\n")
        out = disk / "out.jsonl"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "qwen_gradio", "batch", str(prompts), "-o", str(out)]
        done = subprocess.run(
            [*command, "--space", wide.url],
            capture_output=True,
            text=True,
            env=env,
            timeout=300,
        )
        written = out.read_text().splitlines()
    finally:
        subprocess.run(["umount", str(disk)], check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith("qwen-gradio: BatchOutputError: cannot write ") and str(out) in last
    assert "No space left on device" in last
    complete = [line for line in written if line.endswith("}")]
    assert complete and all(json.loads(line)["text"] for line in complete)


@pytest.mark.parametrize(
    "messages",
    [
        [  # 10,000 messages: a long conversation
            {"role": ("user", "assistant")[k % 2], "content": f"message {k} of a long chat"}
            for k in range(9_999)
        ]
        + [{"role": "user", "content": "and one more"}],
        [{"role": "user", "content": "word " * 400_000}],  # one message of 2 MB
    ],
    ids=["10000-messages", "2MB-message"],
)
def test_a_prompt_longer_than_the_context_window_is_refused_before_any_job(
    wide: Replica, tmp_path: Path, messages: list[dict[str, str]]
) -> None:
    with serve(wide.url, tmp_path, "--quiet") as server:
        jobs = joins(wide)
        body = {"model": "qwen-2.5-max", "messages": messages}
        response = httpx.post(f"{server.url}/v1/chat/completions", json=body, timeout=60)  # type: ignore[attr-defined]
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (
        "context_length_exceeded",
        "messages",
        "invalid_request_error",
    )
    assert "maximum context length is 30720 tokens" in error["message"]
    assert joins(wide) == jobs
