"""What a shared state costs ``qwen-gradio serve``, side by side: three servers on one replica,
one with its own state (local), one on a SQLite file, one on a real Redis (Debian's
``redis-server`` on a free port), asked in turn.

Rows, per state:

- each operation a reply makes on the state, in this process with an idle event loop (300 of
  each, the median in µs): ``loads`` (read before each reply: the fleet's load of two Spaces),
  ``keep`` and ``kept`` (a stored conversation of 10 messages), ``hit`` (a key's limit);
- a whole chat completion (``/long 20``: 20 deltas) and a Responses turn continuing the
  previous one (``previous_response_id``, conversations of up to 10 turns), the servers asked
  in turn, one request each, ``--requests`` times (medians, ms);
- ``--streams`` streamed chat completions at once (``/long 100``) through one server with
  ``--max-replies`` as many: seconds until all have ended, whether every text is exact, and
  the server's peak memory (0 skips it)::

    python bench/state.py [--requests 300] [--streams 1000] [--states local,redis] [--smoke]
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
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--states", default="local,sqlite,redis")
    parser.add_argument("--generation", choices=["6"], default="6")
    parser.add_argument("--smoke", action="store_true", help="one small run (the test suite's)")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS-state.md")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.conftest import start_replica
    from tests.helpers import RedisServer, ServerProcess, free_port

    if args.smoke:
        args.requests, args.streams = 3, 10
    replica = start_replica(sys.executable, "bench-state", delay=0.001, concurrency=64)
    folder = Path(tempfile.mkdtemp(prefix="qwen-gradio-bench-state-"))
    redis = RedisServer(folder)
    redis.start()
    every = {"local": "local", "sqlite": f"sqlite:///{folder / 'state.db'}", "redis": redis.url}
    states = {name: every[name] for name in args.states.split(",")}
    rows: dict[str, dict[str, Any]] = {name: {"chat": [], "chained": []} for name in states}
    for name, url in states.items():
        rows[name]["ops"] = asyncio.run(_operations(url.replace("state.db", "ops.db")))
    try:
        with ExitStack() as stack:
            urls, servers = {}, []
            for name, state in states.items():
                port = free_port()
                command = [sys.executable, "-m", "qwen_gradio", "serve", "--quiet"]
                command += ["--space", replica.url, "--port", str(port), "--state", state]
                command += ["--max-replies", str(max(args.streams, 64))]
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                servers.append(stack.enter_context(ServerProcess(command, env, str(folder))))
                urls[name] = f"http://127.0.0.1:{port}"
            for url in urls.values():  # each server connected and warm before timing
                _chat(httpx.Client(base_url=url, timeout=60), "/long 20")
            clients = {name: httpx.Client(base_url=url, timeout=60) for name, url in urls.items()}
            previous: dict[str, str | None] = dict.fromkeys(urls)
            for k in range(args.requests):  # in turn, so that drift falls on every state alike
                for name, http in clients.items():
                    rows[name]["chat"].append(_timed(http))
                    if k % 10 == 0:
                        previous[name] = None
                    took, previous[name] = _turn(http, previous[name])
                    rows[name]["chained"].append(took)
            for http in clients.values():
                http.close()
            for (name, url), server in zip(urls.items(), servers, strict=True):
                if args.streams:
                    rows[name]["streams"] = asyncio.run(_streams(url, args.streams))
                    rows[name]["streams"]["peak_mb"] = _peak_mb(server.process.pid)
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


def _timed(http: httpx.Client) -> float:
    """One whole chat completion: its ms."""
    started = time.perf_counter()
    _chat(http, "/long 20")
    return (time.perf_counter() - started) * 1000


def _turn(http: httpx.Client, previous: str | None) -> tuple[float, str]:
    """One Responses turn after ``previous``: its ms, and its id."""
    body: dict[str, Any] = {"model": MODEL, "input": "/long 20"}
    if previous is not None:
        body["previous_response_id"] = previous
    started = time.perf_counter()
    made = http.post("/v1/responses", json=body)
    took = (time.perf_counter() - started) * 1000
    assert made.status_code == 200, made.text
    return took, str(made.json()["id"])


async def _operations(url: str) -> dict[str, float]:
    """The median µs of each state operation, 300 times, on an idle loop."""
    from qwen_gradio._state import open_state

    state = open_state(url)
    conversation = json.dumps([{"role": "user", "content": "x" * 200}] * 10)
    spaces = ["https://a.hf.space/", "https://b.hf.space/"]
    await state.loads(spaces)  # connected
    calls = {
        "loads": lambda k: state.loads(spaces),
        "keep": lambda k: state.keep(f"bench:{k}", conversation, 3600.0, 1000),
        "kept": lambda k: state.kept(f"bench:{k}"),
        "hit": lambda k: state.hit(f"bench-{k % 10}", 10_000, 60.0),
    }
    found = {}
    for name, call in calls.items():
        times = []
        for k in range(300):
            started = time.perf_counter()
            await call(k)
            times.append(time.perf_counter() - started)
        found[name] = statistics.median(times) * 1e6
    state.close()
    return found


def _peak_mb(pid: int) -> float:
    """The process's peak resident memory (Linux), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


def _table(intro: str, header: str, cells: dict[str, list[str]]) -> list[str]:
    """A report's table: ``intro``, then a row per state of its ``cells``."""
    columns = header.count("|") - 1
    rows = [f"| {name} | {' | '.join(row)} |" for name, row in cells.items()]
    return ["", intro, "", header, "|---" * columns + "|", *rows]


def _report(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    first = rows[next(iter(rows))]
    chat0, chained0 = statistics.median(first["chat"]), statistics.median(first["chained"])
    lines = [
        "# What a shared state costs serve",
        "",
        f"{platform.platform()}, Python {platform.python_version()},"
        f" {os.cpu_count()} cores; a gradio 6 replica (64 jobs at once, 1 ms a token);"
        f" redis-server and SQLite on this machine; {time.strftime('%Y-%m-%d')}.",
    ]
    lines += _table(
        "Each operation on the state (µs, median of 300, an idle loop):",
        "| state | loads (before each reply) | keep (a response) | kept | hit (a key's limit) |",
        {
            name: [f"{row['ops'][op]:.0f}" for op in ("loads", "keep", "kept", "hit")]
            for name, row in rows.items()
        },
    )
    served = {}
    for name, row in rows.items():
        chat, chained = statistics.median(row["chat"]), statistics.median(row["chained"])
        served[name] = [f"{chat:.2f}", f"{chat - chat0:+.2f}", f"{chained:.2f}"]
        served[name].append(f"{chained - chained0:+.2f}")
    lines += _table(
        f"Through serve ({args.requests} requests per server, asked in turn; medians):",
        "| state | chat completion (ms) | vs first | Responses turn, chained (ms) | vs first |",
        served,
    )
    if args.streams:
        lines += _table(
            f"{args.streams} streamed replies at once through one server (`--max-replies"
            f" {max(args.streams, 64)}`, 100 deltas each):",
            "| state | all ended after (s) | exact | the server's peak memory (MB) |",
            {
                name: [
                    f"{row['streams']['seconds']:.1f}",
                    f"{row['streams']['exact']}/{row['streams']['count']}",
                    f"{row['streams']['peak_mb']:.0f}",
                ]
                for name, row in rows.items()
            },
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
