"""What a shared state costs ``qwen-gradio serve``, side by side: three servers on one replica,
one with its own state (local), one on a SQLite file, one on a real Redis (Debian's
``redis-server`` on a free port), asked in turn.

Rows (``--rounds`` rounds, each server asked ``--requests`` times in a row per round; medians):

- a whole chat completion (``/long 20``: 20 deltas), sequential: ms per request;
- a Responses turn continuing the previous one (``previous_response_id``: one read and one
  write of the stored conversation more), sequential: ms per request;
- ``--streams`` streamed chat completions at once (``/long 100``) through one server with
  ``--max-replies`` as many: seconds until all have ended, and whether every text is exact::

    python bench/state.py [--rounds 5] [--requests 50] [--streams 1000] [--smoke]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MODEL = "qwen-2.5-max"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--smoke", action="store_true", help="one small run (the test suite's)")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS-state.md")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.conftest import start_replica
    from tests.helpers import RedisServer, ServerProcess, free_port

    if args.smoke:
        args.rounds, args.requests, args.streams = 1, 3, 10
    replica = start_replica(sys.executable, "bench-state", delay=0.001, concurrency=64)
    folder = Path(tempfile.mkdtemp(prefix="qwen-gradio-bench-state-"))
    redis = RedisServer(folder)
    redis.start()
    states = {
        "local": "local",
        "sqlite": f"sqlite:///{folder / 'state.db'}",
        "redis": redis.url,
    }
    rows: dict[str, dict[str, Any]] = {name: {"chat": [], "chained": []} for name in states}
    try:
        with ExitStack() as stack:
            urls = {}
            for name, state in states.items():
                port = free_port()
                command = [sys.executable, "-m", "qwen_gradio", "serve", "--quiet"]
                command += ["--space", replica.url, "--port", str(port), "--state", state]
                command += ["--max-replies", str(max(args.streams, 64))]
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                stack.enter_context(ServerProcess(command, env, str(folder)))
                urls[name] = f"http://127.0.0.1:{port}"
            for url in urls.values():  # each server connected and warm before timing
                _chat(httpx.Client(base_url=url, timeout=60), "/long 20")
            for _ in range(args.rounds):
                for name, url in urls.items():
                    with httpx.Client(base_url=url, timeout=60) as http:
                        rows[name]["chat"].append(_sequential(http, args.requests, chained=False))
                        rows[name]["chained"].append(_sequential(http, args.requests, chained=True))
            for name, url in urls.items():
                rows[name]["streams"] = asyncio.run(_streams(url, args.streams))
    finally:
        redis.stop()
        if replica.process is not None:
            replica.process.kill()
    report = _report(rows, args)
    print(report)
    if not args.smoke or args.output != BENCH / "RESULTS-state.md":
        args.output.write_text(report)
    return 0


def _chat(http: httpx.Client, text: str) -> None:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    reply = http.post("/v1/chat/completions", json=body)
    assert reply.status_code == 200, reply.text


def _sequential(http: httpx.Client, count: int, *, chained: bool) -> float:
    """The median ms of ``count`` requests in a row."""
    times, previous = [], None
    for _ in range(count):
        started = time.perf_counter()
        if chained:
            body: dict[str, Any] = {"model": MODEL, "input": "/long 20"}
            if previous is not None:
                body["previous_response_id"] = previous
            made = http.post("/v1/responses", json=body)
            assert made.status_code == 200, made.text
            previous = made.json()["id"]
        else:
            _chat(http, "/long 20")
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


async def _streams(url: str, count: int) -> dict[str, Any]:
    """``count`` streamed replies at once: seconds until all ended, how many were exact."""
    expected = "".join(f"t{k} " for k in range(100))
    limits = httpx.Limits(max_connections=count + 8)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:

        async def one() -> bool:
            body = {"model": MODEL, "messages": "/long 100", "stream": True}
            text = []
            async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: {"):
                        choices = json.loads(line[6:]).get("choices") or [{}]
                        text.append(choices[0].get("delta", {}).get("content") or "")
            return "".join(text) == expected

        started = time.perf_counter()
        exact = await asyncio.gather(*(one() for _ in range(count)))
        return {"seconds": time.perf_counter() - started, "exact": sum(exact), "count": count}


def _report(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    local = rows["local"]
    lines = [
        "# What a shared state costs serve",
        "",
        f"{platform.platform()}, Python {platform.python_version()},"
        f" {os.cpu_count()} cores; a gradio 6 replica (64 jobs at once, 1 ms a token);"
        f" {args.rounds} rounds of {args.requests} sequential requests per server, medians;"
        f" {time.strftime('%Y-%m-%d')}.",
        "",
        "| state | whole chat completion (ms) | vs local | chained Responses turn (ms)"
        f" | vs local | {args.streams} streams at once (s) | exact |",
        "|---|---|---|---|---|---|---|",
    ]
    base_chat = statistics.median(local["chat"])
    base_chained = statistics.median(local["chained"])
    for name, row in rows.items():
        chat, chained = statistics.median(row["chat"]), statistics.median(row["chained"])
        streams = row["streams"]
        lines.append(
            f"| {name} | {chat:.2f} | {chat - base_chat:+.2f} | {chained:.2f}"
            f" | {chained - base_chained:+.2f} | {streams['seconds']:.1f}"
            f" | {streams['exact']}/{streams['count']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
