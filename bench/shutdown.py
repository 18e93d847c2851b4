"""Cancelling and stopping, timed: how soon the Space stops generating for dropped streams, and
how soon ``qwen-gradio serve`` exits on SIGTERM with streams in flight.

Rows (``--runs`` each, the median and the spread; the replica of gradio 6 runs 64 jobs at once,
so every stream is mid-reply):

- 50 streams through ``qwen-gradio serve`` (a subprocess), all dropped at once: from the drop to
  the last of the 50 jobs ended on the Space (the replica's own clock of each run's end);
- the same 50 streams read with the library alone (``AsyncStream``s closed at once);
- the baseline: 50 jobs cancelled by hand, ``POST /gradio_api/cancel`` each, all at once;
- SIGTERM to ``serve --grace 1`` with 10 streams in flight: from the signal to the process's
  exit (the goal: within the grace period + 2 s), and with a second signal (Ctrl-C) at once::

    python bench/shutdown.py [--runs 3] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LONG = "/long 100000"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="one small run (the test suite's)")
    parser.add_argument("--generation", choices=["6"], default="6")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS-shutdown.md")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.conftest import start_replica

    runs, streams, in_flight = (1, 5, 3) if args.smoke else (args.runs, 50, 10)
    replica = start_replica(sys.executable, "bench-shutdown", concurrency=64)
    results: dict[str, list[float]] = {}
    try:
        for _ in range(runs):
            for name, seconds in (
                (f"{streams} streams through serve, dropped", serve_drop(replica, streams)),
                (f"{streams} streams, the library alone, closed", library_drop(replica, streams)),
                (f"{streams} jobs cancelled by hand (baseline)", by_hand(replica, streams)),
                (
                    f"SIGTERM, serve --grace 1, {in_flight} streams: to exit",
                    sigterm(replica, in_flight, twice=False),
                ),
                (
                    f"SIGTERM then Ctrl-C, --grace 600, {in_flight} streams: to exit",
                    sigterm(replica, in_flight, twice=True),
                ),
            ):
                results.setdefault(name, []).append(seconds)
                print(f"{name}: {seconds:.2f} s", file=sys.stderr, flush=True)
    finally:
        assert replica.process is not None
        replica.process.terminate()
        replica.process.wait(timeout=10)
    rows = [
        f"| {name} | {statistics.median(v):.2f} | {min(v):.2f}–{max(v):.2f} |"
        for name, v in results.items()
    ]
    text = "\n".join(
        [
            "# Cancelling and stopping",
            "",
            f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores;"
            f" python {platform.python_version()}",
            f"- replica: gradio {replica.gradio_version}, 64 jobs at once; {runs} runs"
            + (" — SMOKE RUN" if args.smoke else ""),
            "",
            "| what | seconds, median | range |",
            "|---|---|---|",
            *rows,
            "",
        ]
    )
    print(text)
    args.output.write_text(text)
    return 0


def last_end(replica: Any, first: int, count: int) -> float:
    """When the last of runs ``first``..``first + count - 1`` ended, by the replica's clock."""
    return max(replica.wait(run, timeout=60)["ended_at"] for run in range(first, first + count))


class Serve:
    """``qwen-gradio serve`` in a subprocess, ready once it says so."""

    def __init__(self, space: str, *extra: str) -> None:
        sys.path.insert(0, str(ROOT))
        from tests.helpers import ServerProcess, free_port

        port = free_port()
        command = [sys.executable, "-m", "qwen_gradio", "serve", "--space", space]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.server = ServerProcess(
            [*command, "--port", str(port), "--quiet", *extra], env, tempfile.gettempdir()
        )
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> Any:
        return self.server.__enter__()

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__()


def open_streams(url: str, count: int, prompt: str) -> Any:
    """``count`` streams, each read to its first text (tests/helpers.py)."""
    sys.path.insert(0, str(ROOT))
    from tests.helpers import open_streams as opened

    return opened(url, count, prompt)


def serve_drop(replica: Any, count: int) -> float:
    serve = Serve(replica.url)
    with serve:
        first = replica.next_run()

        async def drop() -> float:
            http, opened = await open_streams(serve.url, count, LONG)
            dropped = time.time()
            await asyncio.gather(*(response.aclose() for response, _ in opened))
            await http.aclose()
            return dropped

        dropped = asyncio.run(drop())
        return last_end(replica, first, count) - dropped


def library_drop(replica: Any, count: int) -> float:
    from qwen_gradio import QwenClient, TextDelta

    first = replica.next_run()

    async def drop() -> float:
        async with QwenClient(replica.url) as client:
            streams = [client.astream(LONG) for _ in range(count)]

            async def first_text(stream: Any) -> None:
                async for event in stream.events():
                    if isinstance(event, TextDelta):
                        return

            await asyncio.gather(*(first_text(s) for s in streams))
            dropped = time.time()
            await asyncio.gather(*(s.aclose() for s in streams))
            return dropped

    dropped = asyncio.run(drop())
    return last_end(replica, first, count) - dropped


def by_hand(replica: Any, count: int) -> float:
    """``count`` jobs joined and read to their first text by hand, then cancelled by hand."""
    import uuid

    first = replica.next_run()

    async def run() -> float:
        async with httpx.AsyncClient(timeout=60) as http:

            async def job() -> tuple[str, str, httpx.Response]:
                session = uuid.uuid4().hex[:12]
                inputs = [LONG, [], "You are a helpful assistant."]
                payload = {"data": inputs, "fn_index": 0, "trigger_id": 11, "session_hash": session}
                joined = await http.post(f"{replica.url}/gradio_api/queue/join", json=payload)
                event_id = joined.json()["event_id"]
                data = http.build_request(
                    "GET", f"{replica.url}/gradio_api/queue/data", params={"session_hash": session}
                )
                response = await http.send(data, stream=True)
                async for line in response.aiter_lines():
                    if "process_generating" in line:
                        break
                return session, event_id, response

            jobs = await asyncio.gather(*(job() for _ in range(count)))
            dropped = time.time()

            async def cancel(session: str, event_id: str, response: httpx.Response) -> None:
                body = {"fn_index": 0, "session_hash": session, "event_id": event_id}
                await http.post(f"{replica.url}/gradio_api/cancel", json=body)
                await response.aclose()

            await asyncio.gather(*(cancel(*j) for j in jobs))
            return dropped

    dropped = asyncio.run(run())
    return last_end(replica, first, count) - dropped


def sigterm(replica: Any, count: int, *, twice: bool) -> float:
    serve = Serve(replica.url, "--grace", "600" if twice else "1")
    with serve as server:
        first = replica.next_run()

        async def stop() -> float:
            http, opened = await open_streams(serve.url, count, LONG)
            signalled = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            if twice:
                await asyncio.to_thread(server.wait_for, "Shutting down")
                server.process.send_signal(signal.SIGINT)

            async def to_the_end(lines: Any) -> str:
                last = ""
                async for line in lines:
                    last = line or last
                return last

            ends = await asyncio.gather(*(to_the_end(lines) for _, lines in opened))
            await asyncio.to_thread(server.process.wait, 60)
            exited = time.monotonic()
            await http.aclose()
            if ends != ["data: [DONE]"] * count:
                raise RuntimeError(f"streams that did not end with [DONE]: {ends}")
            return exited - signalled

        seconds = asyncio.run(stop())
        outcomes = [replica.wait(run, timeout=60)["outcome"] for run in range(first, first + count)]
        if outcomes != ["stopped"] * count:
            raise RuntimeError(f"jobs left running on the Space: {json.dumps(outcomes)}")
        return seconds


if __name__ == "__main__":
    sys.exit(main())
