"""Cold start: from a fresh process to the first token, through a front end that holds every
request 100 ms (a Space far away), side by side.

Rows: qwen_gradio on a machine that never talked to the Space (an empty cache directory) and
on one that did (the cache a first run left; sync, and async like the seed), the seed's
gpt4free 0.5.7.0 provider (from ``.venv-seed``, ``bash bench/seed-venv.sh``; aiohttp), the
seed's two requests made by hand with httpx (the floor of qwen_gradio's stack), and bare
gradio_client (``Client`` + ``submit``);
then qwen_gradio again against the Qwen2.5 demo's layout (a model-size option, whose name only
the API info gives: a second request that the cache saves).
Then the first reply of a fresh process against a later one of the same process: the latency of
each delta (40 deltas 5 ms apart, a gradio 6 replica, sync ``stream()``), which work done on the
first reply only (loading a tokenizer, say) would raise. Run it with every extra installed.
Each run is a fresh interpreter; its clock starts after the package's import (qwen_gradio
imports gradio_client only when it needs it, so that counts). The kinds alternate, run after
run; the table has the median and the spread of ``--runs`` runs::

    python bench/cold.py [--generation 5|6] [--delay 0.1] [--runs 5] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SEED_PYTHON = ROOT / ".venv-seed" / "bin" / "python"
QUERY = "/echo cold start"
KINDS = (
    "qwen_gradio, never seen",
    "qwen_gradio, seen before",
    "qwen_gradio async, seen before",
    "seed (gpt4free 0.5.7.0)",
    "httpx by hand (join, then data)",
    "gradio_client",
    "qwen_gradio, Qwen2.5 layout, never seen",
    "qwen_gradio, Qwen2.5 layout, seen before",
)


STAMPS = 40  # deltas of the first-reply latency run


def first_reply_worker(url: str) -> dict[str, list[float]]:
    """Each delta's latency (ms, from the Space's emit), in this fresh process's first reply
    and in the one after it."""
    from qwen_gradio import QwenClient

    def latencies(client: QwenClient) -> list[float]:
        seen: list[float] = []
        # the first token 0.1 s after the job starts: the event stream is open by then, so
        # every delta measures the client's own path, not the join's head start
        with client.stream(f"/stamp {STAMPS} 0.1") as stream:
            for delta in stream:
                now = time.time_ns()
                seen.extend((now - int(token)) / 1e6 for token in delta.split())
        return seen

    with QwenClient(url, cache=False) as client:
        return {"first": latencies(client), "later": latencies(client)}


def worker(kind: str, url: str) -> float:
    """Seconds from after the import to the first token, in this (fresh) process."""
    if kind.startswith("qwen_gradio async"):
        import asyncio

        from qwen_gradio import QwenClient

        started = time.perf_counter()

        async def first_async() -> float:
            async with QwenClient(url) as client, client.astream(QUERY) as stream:
                await stream.__anext__()
                return time.perf_counter() - started

        return asyncio.run(first_async())
    if kind.startswith("qwen_gradio"):
        from qwen_gradio import QwenClient

        started = time.perf_counter()
        with QwenClient(url) as client, client.stream(QUERY) as stream:
            next(stream)
            return time.perf_counter() - started
    if kind.startswith("seed"):
        import asyncio

        from g4f.Provider.hf_space.Qwen_Qwen_2_5_Max import Qwen_Qwen_2_5_Max

        started = time.perf_counter()
        base = url.rstrip("/")
        provider = type(
            "SeedAt",
            (Qwen_Qwen_2_5_Max,),
            {"url": base, "api_endpoint": f"{base}/gradio_api/queue/join?"},
        )

        async def first() -> float:
            messages = [{"role": "user", "content": QUERY}]
            async for part in provider.create_async_generator("qwen-qwen2-5-max", messages):
                if isinstance(part, str) and part:
                    return time.perf_counter() - started
            raise RuntimeError("no token")

        return asyncio.run(first())
    if kind.startswith("httpx"):
        return by_hand(url)
    from gradio_client import Client

    started = time.perf_counter()
    client = Client(url, verbose=False, download_files=False)
    job = client.submit(QUERY, [], "You are a helpful assistant.", fn_index=0)
    for output in job:
        history = output[1]
        if history and (history[-1][1] if isinstance(history[-1], list) else history[-1]):
            seconds = time.perf_counter() - started
            job.cancel()
            return seconds
    raise RuntimeError("no token")


def by_hand(url: str) -> float:
    """The seed's two requests with httpx and nothing else: the floor of qwen_gradio's stack."""
    import asyncio
    import ssl
    import uuid

    import httpx

    sys.path.insert(0, str(ROOT))
    from qwen_gradio._transports.warm import warm_http_imports

    warm_http_imports()  # httpx's lazy imports before the clock, as qwen_gradio makes them
    started = time.perf_counter()
    base = url.rstrip("/")

    async def first() -> float:
        plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # as qwen_gradio's for http:// (no CAs)
        async with httpx.AsyncClient(verify=plain) as http:
            session = uuid.uuid4().hex[:12]
            inputs = [QUERY, [], "You are a helpful assistant."]
            payload = {"data": inputs, "fn_index": 0, "trigger_id": 11, "session_hash": session}
            await http.post(f"{base}/gradio_api/queue/join", json=payload)
            data = f"{base}/gradio_api/queue/data"
            async with http.stream("GET", data, params={"session_hash": session}) as response:
                async for line in response.aiter_lines():
                    if "process_generating" in line:
                        return time.perf_counter() - started
        raise RuntimeError("no token")

    return asyncio.run(first())


def run_worker(kind: str, url: str, cache: Path) -> float | str:
    python = str(SEED_PYTHON) if kind.startswith("seed") else sys.executable
    if kind.startswith("seed") and not SEED_PYTHON.exists():
        return "skipped: no .venv-seed"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "QWEN_GRADIO_CACHE_DIR": str(cache)}
    env["GRADIO_ANALYTICS_ENABLED"] = "False"
    done = subprocess.run(
        [python, str(BENCH / "cold.py"), "--worker", kind, "--url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        return "failed: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    return float(json.loads(done.stdout)["seconds"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generation", choices=["5", "6"], default=None)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds held per request")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="one run, no delay")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS-cold.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "first reply":
        print(json.dumps(first_reply_worker(args.url)))
        return 0
    if args.worker:
        print(json.dumps({"seconds": worker(args.worker, args.url)}))
        return 0
    sys.path.insert(0, str(ROOT))
    from tests.conftest import _g5_python, start_replica
    from tests.helpers import FaultyFrontEnd

    runs, delay = (1, 0.0) if args.smoke else (args.runs, args.delay)
    g5 = _g5_python()
    generation = args.generation or ("5" if g5 else "6")
    python = g5 if generation == "5" and g5 else sys.executable
    replica = start_replica(python, "bench-cold", delay=0.005)
    sized = start_replica(python, "bench-cold-sized", delay=0.005, variant="qwen2.5")
    near = start_replica(sys.executable, "bench-first-reply", delay=0.005)  # gradio 6
    results: dict[str, list[float | str]] = {kind: [] for kind in KINDS}
    scratch = Path(tempfile.mkdtemp(prefix="qwen-gradio-cold-"))
    try:
        with (
            FaultyFrontEnd(replica.url, lambda method, path: "forward", delay=delay) as front,
            FaultyFrontEnd(sized.url, lambda method, path: "forward", delay=delay) as sized_front,
        ):
            for run in range(runs):
                for number, kind in enumerate(KINDS):
                    url = sized_front.url if "Qwen2.5" in kind else front.url
                    cache = scratch / f"{number}-{run}"
                    if kind.endswith("seen before"):  # a first contact leaves the cache
                        run_worker(kind, url, cache)
                    print(f"run {run + 1}: {kind}…", file=sys.stderr, flush=True)
                    results[kind].append(run_worker(kind, url, cache))
        print("first reply vs a later one…", file=sys.stderr, flush=True)
        firsts = [first_reply(near.url) for _ in range(runs)]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for server in (replica, sized, near):
            assert server.process is not None
            server.process.terminate()
            server.process.wait(timeout=10)
    rows = []
    seed = _median(results[next(k for k in KINDS if k.startswith("seed"))])
    for kind in KINDS:
        values = [v for v in results[kind] if isinstance(v, float)]
        if not values:
            rows.append(f"| {kind} | {results[kind][0]} | | |")
            continue
        median = statistics.median(values)
        versus = f"{(median - seed) * 1000:+.0f} ms" if seed is not None else ""
        rows.append(
            f"| {kind} | {median * 1000:.0f} | {min(values) * 1000:.0f}–{max(values) * 1000:.0f}"
            f" | {versus} |"
        )
    text = "\n".join(
        [
            "# Cold start: first token from a fresh process",
            "",
            f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
            f"- machine: {platform.machine()}, {os.cpu_count()} cores;"
            f" python {platform.python_version()}",
            f"- replica: gradio {replica.gradio_version} behind a loopback front end holding"
            f" every request {delay * 1000:.0f} ms; query {QUERY!r}; {runs} alternating runs,"
            " each a fresh process, clocks started after the package's import"
            + (" — SMOKE RUN" if args.smoke else ""),
            "",
            "| client | first token, median (ms) | range (ms) | vs the seed |",
            "|---|---|---|---|",
            *rows,
            "",
            "## The first reply of a process against a later one",
            "",
            f"- replica: gradio {near.gradio_version}, {STAMPS} deltas 5 ms apart, sync"
            f" `stream()`; {runs} fresh processes, each a first reply then a second;"
            f" {extras()}",
            "",
            "| reply | delta latency p50, median of the runs (ms) | p95 (ms) | p95 range (ms) |",
            "|---|---|---|---|",
            *first_reply_rows(firsts),
            "",
        ]
    )
    print(text)
    args.output.write_text(text)
    return 0


def first_reply(url: str) -> dict[str, list[float]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run(
        [sys.executable, str(BENCH / "cold.py"), "--worker", "first reply", "--url", url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def first_reply_rows(runs: list[dict[str, list[float]]]) -> list[str]:
    rows = []
    for reply in ("first", "later"):
        p50s = [statistics.median(run[reply]) for run in runs]
        p95s = [_percentile(run[reply], 0.95) for run in runs]
        rows.append(
            f"| {'first of the process' if reply == 'first' else 'the next one'}"
            f" | {statistics.median(p50s):.1f} | {statistics.median(p95s):.1f}"
            f" | {min(p95s):.1f}–{max(p95s):.1f} |"
        )
    return rows


def extras() -> str:
    """Which of the extras that touch a reply's path are installed here."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("dashscope", "tiktoken", "starlette", "gradio", "llm"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    return "installed: " + (", ".join(found) or "no extra")


def _median(values: list[Any]) -> float | None:
    numbers = [v for v in values if isinstance(v, float)]
    return statistics.median(numbers) if numbers else None


if __name__ == "__main__":
    sys.exit(main())
