"""Side-by-side benchmark: ``python bench/run.py`` (``--smoke`` for a tiny run).

Starts the replica Space on loopback (one with 5 ms between tokens, one with none for the long
reply) and runs the same workload through every client, each in a fresh process of its own:

- ``raw``: a minimal direct client of the queue protocol (bench/raw.py) — the floor;
- ``gradio_client``: bare ``Client.submit`` and Job iteration;
- ``qwen_gradio``: ``QwenClient.stream`` and ``astream``;
- ``qwen-gradio serve``: the OpenAI-compatible server in a process of its own, read over SSE;
- ``seed``: gpt4free 0.5.7.0's ``Qwen_Qwen_2_5_Max`` (the seed's original), when
  ``.venv-seed`` exists (``bash bench/seed-venv.sh``); skipped otherwise.

It prints a table and writes bench/RESULTS.md (machine, versions, date, the table, the targets).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SEED_PYTHON = ROOT / ".venv-seed" / "bin" / "python"
SYSTEM = "You are a helpful assistant."
METHODS = [
    "raw (sync)",
    "raw (async)",
    "gradio_client (sync)",
    "gradio_client (async)",
    "qwen_gradio stream",
    "qwen_gradio astream",
    "qwen_gradio stream, transport=gradio_client",
    "qwen_gradio astream, transport=gradio_client",
    "qwen-gradio serve (openai SSE)",
    "seed (gpt4free 0.5.7.0)",
]


@dataclass(frozen=True)
class Sizes:
    first_delta_runs: int = 20
    stamped_tokens: int = 300
    cpu_tokens: int = 3000  # CPU per delta, from a reply with no gaps between tokens
    cpu_runs: int = 3
    long_tokens: int = 12_000
    concurrent: int = 48
    concurrent_tokens: int = 100
    concurrent_runs: int = 3  # best of: the replica shares the machine's 2 cores
    idle_streams: int = 200  # streamed requests waiting in the queue, for the server's memory
    import_runs: int = 7


SMOKE = Sizes(
    first_delta_runs=2,
    stamped_tokens=20,
    cpu_tokens=100,
    cpu_runs=1,
    long_tokens=200,
    concurrent=4,
    concurrent_tokens=10,
    concurrent_runs=1,
    idle_streams=5,
    import_runs=1,
)


# -- the clients, as workers see them ---------------------------------------------------------


def text_of(history: Any) -> str:
    last = history[-1] if history else None
    if isinstance(last, (list, tuple)):
        return str(last[1] or "")
    if isinstance(last, dict):
        content = last.get("content")
        if isinstance(content, list):
            return "".join(part.get("text", "") for part in content if isinstance(part, dict))
        return str(content or "")
    return ""


class Client:
    """One way of getting a reply's deltas."""

    is_async = False

    def __init__(self, url: str) -> None:
        self.url = url

    def deltas(self, prompt: str) -> Iterator[str]:
        raise NotImplementedError

    async def adeltas(self, prompt: str) -> AsyncIterator[str]:
        raise NotImplementedError
        yield ""

    async def aopen(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    def close(self) -> None:
        pass


class RawSync(Client):
    def __init__(self, url: str) -> None:
        import httpx

        from bench import raw

        super().__init__(url)
        self.http, self.raw = httpx.Client(timeout=None), raw

    def deltas(self, prompt: str) -> Iterator[str]:
        return self.raw.stream(self.http, self.url, prompt)

    def close(self) -> None:
        self.http.close()


class RawAsync(Client):
    is_async = True

    async def aopen(self) -> None:
        import httpx

        from bench import raw

        self.raw = raw
        self.http = httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=None))

    def adeltas(self, prompt: str) -> AsyncIterator[str]:
        return self.raw.astream(self.http, self.url, prompt)

    async def aclose(self) -> None:
        await self.http.aclose()


class GradioClientSync(Client):
    def __init__(self, url: str) -> None:
        from gradio_client import Client as GradioClient

        super().__init__(url)
        self.client = GradioClient(url, verbose=False)

    def deltas(self, prompt: str) -> Iterator[str]:
        job = self.client.submit(prompt, [], SYSTEM, fn_index=0)
        text = ""
        for output in job:  # every intermediate full output, then the last again
            new = text_of(output[1])
            if new != text:
                yield new[len(text) :]
                text = new

    def close(self) -> None:
        self.client.close()


class GradioClientAsync(GradioClientSync):
    is_async = True

    async def adeltas(self, prompt: str) -> AsyncIterator[str]:
        job = self.client.submit(prompt, [], SYSTEM, fn_index=0)
        text = ""
        async for update in job:
            if getattr(update, "type", None) != "output" or update.final:
                continue
            new = text_of(update.outputs[1])
            if new != text:
                yield new[len(text) :]
                text = new


class QwenSync(Client):
    transport = "direct"

    def __init__(self, url: str) -> None:
        from qwen_gradio import QwenClient

        super().__init__(url)
        self.client = QwenClient(url, transport=self.transport)

    def deltas(self, prompt: str) -> Iterator[str]:
        with self.client.stream(prompt) as stream:
            yield from stream

    def close(self) -> None:
        self.client.close()


class QwenAsync(Client):
    is_async = True
    transport = "direct"

    async def aopen(self) -> None:
        from qwen_gradio import QwenClient

        self.client = QwenClient(self.url, transport=self.transport)

    async def adeltas(self, prompt: str) -> AsyncIterator[str]:
        async with self.client.astream(prompt) as stream:
            async for delta in stream:
                yield delta

    async def aclose(self) -> None:
        await self.client.aclose()


class QwenSyncViaGradioClient(QwenSync):
    transport = "gradio_client"


class QwenAsyncViaGradioClient(QwenAsync):
    transport = "gradio_client"


class Serve(Client):
    """``qwen-gradio serve`` in a process of its own, read as an OpenAI client reads it (SSE)."""

    is_async = True

    async def aopen(self) -> None:
        import socket

        import httpx

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = [sys.executable, "-m", "qwen_gradio", "serve", "--space", self.url]
        self.server = subprocess.Popen(
            [*command, "--port", str(port), "--keepalive", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert self.server.stdout is not None
        for line in self.server.stdout:  # until uvicorn says it listens
            if "Uvicorn running on" in line:
                break
        threading.Thread(target=self.server.stdout.read, daemon=True).start()  # drain it
        weakref.finalize(self, self.server.kill)  # a worker that fails leaves no server behind
        self.base = f"http://127.0.0.1:{port}/v1/chat/completions"
        self.http = httpx.AsyncClient(timeout=None, limits=httpx.Limits(max_connections=None))

    async def adeltas(self, prompt: str) -> AsyncIterator[str]:
        body = {"model": "qwen-2.5-max", "messages": prompt, "stream": True}
        async with self.http.stream("POST", self.base, json=body) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: {"):
                    content = json.loads(line[6:])["choices"][0]["delta"].get("content")
                    if content:
                        yield content

    async def idle_streams_rss_mb(self, count: int) -> float:
        """The server's RSS growth with ``count`` streamed requests waiting in the queue (every
        slot of the Space held by a slow reply), its connections open."""
        status = Path(f"/proc/{self.server.pid}/status")

        def rss() -> int:
            line = next(x for x in status.read_text().splitlines() if x.startswith("VmRSS"))
            return int(line.split()[1])

        before = rss()
        holders = [self._open(f"/slow 30 held{i}") for i in range(5)]  # the replica's 5 slots
        waiting = [self._open(f"/echo waiting{i}") for i in range(count)]
        opened = await asyncio.gather(*holders, *waiting)  # each: headers out, job queued
        grown = (rss() - before) / 1024
        for stream in opened:  # closing them cancels their jobs
            await stream.__aexit__(None, None, None)
        return grown

    async def _open(self, prompt: str) -> Any:
        body = {"model": "qwen-2.5-max", "messages": prompt, "stream": True}
        stream = self.http.stream("POST", self.base, json=body)
        await stream.__aenter__()  # returns once the headers are in
        return stream

    async def aclose(self) -> None:
        await self.http.aclose()
        self.server.terminate()
        self.server.wait(timeout=10)


class Seed(Client):
    is_async = True

    async def aopen(self) -> None:
        from g4f.Provider.hf_space.Qwen_Qwen_2_5_Max import Qwen_Qwen_2_5_Max

        base = self.url.rstrip("/")
        # The original hard-codes the real Space in class attributes: a subclass per runner
        # points it at this replica without touching the other runner's.
        self.provider = type(
            "SeedAtReplica",
            (Qwen_Qwen_2_5_Max,),
            {
                "url": base,
                "api_endpoint": f"{base}/gradio_api/queue/join?",
            },
        )

    async def adeltas(self, prompt: str) -> AsyncIterator[str]:
        messages = [{"role": "user", "content": prompt}]
        async for part in self.provider.create_async_generator("qwen-qwen2-5-max", messages):
            if isinstance(part, str):
                yield part


CLIENTS: dict[str, type[Client]] = dict(
    zip(
        METHODS,
        [
            RawSync,
            RawAsync,
            GradioClientSync,
            GradioClientAsync,
            QwenSync,
            QwenAsync,
            QwenSyncViaGradioClient,
            QwenAsyncViaGradioClient,
            Serve,
            Seed,
        ],
        strict=True,
    )
)


# -- one worker process: every scenario for one client ----------------------------------------


def rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak_rss() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


class Runner:
    """Runs a scenario through a sync or async client, from sync code."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.loop = asyncio.new_event_loop() if client.is_async else None
        if self.loop:
            self.loop.run_until_complete(client.aopen())

    def collect(self, prompt: str, on_delta: Any = None) -> tuple[str, float | None]:
        """The reply's text, and seconds from the call to the first delta."""
        started, first = time.perf_counter(), None
        parts = []

        def take(delta: str) -> None:
            nonlocal first
            if first is None:
                first = time.perf_counter() - started
            if on_delta:
                on_delta(delta)
            parts.append(delta)

        if self.loop:

            async def run() -> None:
                async for delta in self.client.adeltas(prompt):
                    take(delta)

            self.loop.run_until_complete(run())
        else:
            for delta in self.client.deltas(prompt):
                take(delta)
        return "".join(parts), first

    def concurrent(self, prompts: list[str]) -> list[str]:
        if self.loop:

            async def one(prompt: str) -> str:
                return "".join([d async for d in self.client.adeltas(prompt)])

            async def all_of() -> list[str]:
                return list(await asyncio.gather(*(one(p) for p in prompts)))

            return self.loop.run_until_complete(all_of())
        replies = [""] * len(prompts)

        def one_sync(index: int) -> None:
            replies[index] = "".join(self.client.deltas(prompts[index]))

        threads = [threading.Thread(target=one_sync, args=(i,)) for i in range(len(prompts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return replies

    def close(self) -> None:
        if self.loop:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())  # as asyncio.run does
            self.loop.close()
        else:
            self.client.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def worker(method: str, url: str, fast_url: str, sizes: Sizes) -> dict[str, Any]:
    result: dict[str, Any] = {"method": method}
    slow, fast = Runner(CLIENTS[method](url)), Runner(CLIENTS[method](fast_url))
    slow.collect("/echo warm up")
    fast.collect("/echo warm up")

    firsts = [slow.collect("/echo x")[1] or 0.0 for _ in range(sizes.first_delta_runs)]
    result["first_delta_ms"] = statistics.median(firsts) * 1000

    latencies: list[float] = []
    deltas = 0

    def stamp(delta: str) -> None:
        nonlocal deltas
        now, deltas = time.time_ns(), deltas + 1
        latencies.extend((now - int(token)) / 1e6 for token in delta.split())

    slow.collect(f"/stamp {sizes.stamped_tokens}", stamp)
    result.update(
        latency_p50_ms=statistics.median(latencies),
        latency_p95_ms=percentile(latencies, 0.95),
        deltas=deltas,
        tokens=len(latencies),
    )

    counted = 0

    def count(delta: str) -> None:
        nonlocal counted
        counted += 1

    cpus = []
    for _ in range(sizes.cpu_runs):  # the least of a few: CPU time only grows with noise
        counted = 0
        cpu = time.process_time()  # every thread of the process: the sync API's loop thread too
        fast.collect(f"/long {sizes.cpu_tokens}", count)
        cpus.append((time.process_time() - cpu) / max(counted, 1))
    result["cpu_ms_per_1000"] = min(cpus) * 1000 * 1000

    reset_peak_rss()
    before = rss_kb("VmRSS")
    text, _ = fast.collect(f"/long {sizes.long_tokens}")
    result["rss_growth_mb"] = (rss_kb("VmHWM") - before) / 1024
    result["long_reply_kb"] = len(text.encode()) / 1024
    result["long_reply_exact"] = text == "".join(f"t{k} " for k in range(sizes.long_tokens))

    prompts, expected = [], []
    for i in range(sizes.concurrent):
        tokens = [f"r{i}w{k} " for k in range(sizes.concurrent_tokens)]
        prompts.append("/tokens " + json.dumps(tokens))
        expected.append("".join(tokens))
    times, exact = [], sizes.concurrent
    for _ in range(sizes.concurrent_runs):
        started = time.perf_counter()
        replies = slow.concurrent(prompts)
        times.append(time.perf_counter() - started)
        exact = min(exact, sum(r == e for r, e in zip(replies, expected, strict=True)))
    result["concurrent_s"] = min(times)
    result["concurrent_exact"] = exact  # in the worst of the runs
    result["concurrent"] = sizes.concurrent
    if isinstance(slow.client, Serve) and slow.loop is not None:
        measure = slow.client.idle_streams_rss_mb(sizes.idle_streams)
        result["idle_streams_rss_mb"] = slow.loop.run_until_complete(measure)
        result["idle_streams"] = sizes.idle_streams
    slow.close()
    fast.close()
    return result


# -- the orchestrator ------------------------------------------------------------------------


def import_seconds(module: str, runs: int) -> float:
    def once(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        return time.perf_counter() - started

    baseline = min(once("pass") for _ in range(runs))
    return min(once(f"import {module}") for _ in range(runs)) - baseline


def run_worker(method: str, url: str, fast_url: str, smoke: bool) -> dict[str, Any]:
    python = sys.executable
    if method.startswith("seed"):
        if not SEED_PYTHON.exists():
            return {"method": method, "skipped": "no .venv-seed (bash bench/seed-venv.sh)"}
        python = str(SEED_PYTHON)
    command = [
        python,
        str(BENCH / "run.py"),
        "--worker",
        method,
        "--url",
        url,
        "--fast-url",
        fast_url,
    ] + (["--smoke"] if smoke else [])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1800)
    if done.returncode != 0:
        return {"method": method, "failed": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in ("qwen-gradio", "gradio_client", "gradio", "httpx"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "-"
    return found


def fmt(value: Any, digits: int = 1) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(rows: list[dict[str, Any]], sizes: Sizes) -> str:
    head = (
        f"| client | delta latency p50 / p95 (ms) | deltas for {sizes.stamped_tokens} tokens "
        f"| first delta (ms) | CPU per 1,000 deltas (ms) "
        f"| RSS growth, {sizes.long_tokens:,}-token reply (MB) "
        f"| {sizes.concurrent} concurrent {sizes.concurrent_tokens}-token replies (s) "
        f"| exact replies |"
    )
    lines = [head, "|" + "---|" * 8]
    for row in rows:
        if "skipped" in row or "failed" in row:
            why = row.get("skipped") or f"failed: {row['failed']}"
            lines.append(f"| {row['method']} | {why} |" + " |" * 6)
            continue
        lines.append(
            f"| {row['method']} | {fmt(row['latency_p50_ms'])} / {fmt(row['latency_p95_ms'])} "
            f"| {row['deltas']} | {fmt(row['first_delta_ms'])} | {fmt(row['cpu_ms_per_1000'], 0)} "
            f"| {fmt(row['rss_growth_mb'])} | {fmt(row['concurrent_s'], 2)} "
            f"| {row['concurrent_exact']}/{row['concurrent']} |"
        )
    return "\n".join(lines)


def targets(rows: dict[str, dict[str, Any]], imports: dict[str, float]) -> list[str]:
    out = []

    def check(name: str, ok: bool, detail: str) -> None:
        out.append(f"- {'met' if ok else 'NOT met'}: {name} ({detail})")

    for mine, floor in (
        ("qwen_gradio stream", "raw (sync)"),
        ("qwen_gradio astream", "raw (async)"),
    ):
        a, b = rows.get(mine), rows.get(floor)
        if not a or not b or "latency_p50_ms" not in a or "latency_p50_ms" not in b:
            continue
        check(
            f"{mine} delta latency p50 ≤ {floor} + 5 ms",
            a["latency_p50_ms"] <= b["latency_p50_ms"] + 5,
            f"{a['latency_p50_ms']:.2f} vs {b['latency_p50_ms']:.2f} ms",
        )
        check(
            f"{mine} first delta ≤ {floor} + 10 ms",
            a["first_delta_ms"] <= b["first_delta_ms"] + 10,
            f"{a['first_delta_ms']:.1f} vs {b['first_delta_ms']:.1f} ms",
        )
        limit = 3 * a["long_reply_kb"] / 1024 + 30
        check(
            f"{mine} RSS growth ≤ 3 × reply + 30 MB",
            a["rss_growth_mb"] <= limit,
            f"{a['rss_growth_mb']:.1f} MB, limit {limit:.1f} MB",
        )
    a, b = rows.get("qwen_gradio stream"), rows.get("qwen_gradio astream")
    if a and b and "cpu_ms_per_1000" in a and "cpu_ms_per_1000" in b:
        ratio = a["cpu_ms_per_1000"] / b["cpu_ms_per_1000"]
        check(
            "stream CPU per delta ≤ 1.3 × astream's",
            ratio <= 1.3,
            f"{a['cpu_ms_per_1000']:.0f} vs {b['cpu_ms_per_1000']:.0f} ms per 1,000, {ratio:.2f} ×",
        )
    a, b = rows.get("qwen-gradio serve (openai SSE)"), rows.get("qwen_gradio astream")
    if a and b and "latency_p50_ms" in a and "latency_p50_ms" in b:
        check(
            "serve delta latency p50 ≤ astream + 2 ms",
            a["latency_p50_ms"] <= b["latency_p50_ms"] + 2,
            f"{a['latency_p50_ms']:.2f} vs {b['latency_p50_ms']:.2f} ms",
        )
        ratio = b["concurrent_s"] / a["concurrent_s"]
        check(
            "serve concurrent throughput ≥ 0.85 × astream, every reply exact",
            ratio >= 0.85 and a["concurrent_exact"] == a["concurrent"],
            f"{ratio:.2f} × astream, {a['concurrent_exact']}/{a['concurrent']} exact",
        )
    a, b = rows.get("qwen_gradio astream"), rows.get("raw (async)")
    if a and b and "concurrent_s" in a and "concurrent_s" in b:
        ratio = b["concurrent_s"] / a["concurrent_s"]
        check(
            "concurrent throughput ≥ 0.85 × raw, every reply exact",
            ratio >= 0.85 and a["concurrent_exact"] == a["concurrent"],
            f"{ratio:.2f} × raw (async), {a['concurrent_exact']}/{a['concurrent']} exact",
        )
    if imports.get("gradio_client"):
        ratio = imports["qwen_gradio"] / imports["gradio_client"]
        check(
            "import qwen_gradio ≤ 1.2 × import gradio_client",
            ratio <= 1.2,
            f"{imports['qwen_gradio'] * 1000:.0f} vs {imports['gradio_client'] * 1000:.0f} ms,"
            f" {ratio:.2f} ×",
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run (the test suite's)")
    parser.add_argument(
        "--generation",
        choices=["5", "6"],
        default=None,
        help="the replica's gradio: 5 (the Space's own, the default when"
        " .venv-gradio5 exists) or 6 (this environment's)",
    )
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS.md")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--fast-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else Sizes()
    if args.worker:
        print(json.dumps(worker(args.worker, args.url, args.fast_url, sizes)))
        return 0

    sys.path.insert(0, str(ROOT))
    from tests.conftest import _g5_python, start_replica

    g5 = _g5_python()
    generation = args.generation or ("5" if g5 else "6")
    if generation == "5" and g5 is None:
        parser.error("no gradio 5 interpreter: run bash tests/gradio5-venv.sh")
    server_python = g5 if generation == "5" and g5 else sys.executable
    slow = start_replica(server_python, "bench", delay=0.005)
    fast = start_replica(server_python, "bench-fast", delay=0.0)
    try:
        rows = []
        for method in METHODS:
            print(f"running {method}…", file=sys.stderr, flush=True)
            rows.append(run_worker(method, slow.url, fast.url, args.smoke))
    finally:
        for server in (slow, fast):
            server.process.terminate()
            server.process.wait(timeout=10)
    imports = {
        m: import_seconds(m, sizes.import_runs) for m in ("httpx", "gradio_client", "qwen_gradio")
    }
    report = [
        "# Benchmark results",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        f"- python {platform.python_version()}; "
        + ", ".join(f"{k} {v}" for k, v in versions().items()),
        "- replica: gradio " + slow.gradio_version + ", 5 ms between tokens (none for the long"
        " reply), 5 chat jobs at a time like the Space; each client runs in a fresh process;"
        f" latency over one {sizes.stamped_tokens}-token reply, first delta the median of"
        f" {sizes.first_delta_runs}, concurrent replies the best of {sizes.concurrent_runs} runs,"
        f" CPU (the process's, every thread) the least of {sizes.cpu_runs} {sizes.cpu_tokens}-token"
        " replies with no gaps" + (" — SMOKE RUN, tiny sizes" if args.smoke else ""),
        "",
        table(rows, sizes),
        "",
        *[
            f"`qwen-gradio serve` with {r['idle_streams']} streamed requests waiting in the"
            f" Space's queue (its 5 slots held): server RSS +{r['idle_streams_rss_mb']:.1f} MB"
            " (the CPU, RSS and latency columns of its row are the client's, an httpx reader)"
            for r in rows
            if "idle_streams_rss_mb" in r
        ],
        "",
        "Import time (a fresh interpreter, best of "
        f"{sizes.import_runs}): "
        + ", ".join(f"`import {m}` {s * 1000:.0f} ms" for m, s in imports.items()),
        "",
        "## Targets",
        "",
        *targets({r["method"]: r for r in rows}, imports),
        "",
    ]
    text = "\n".join(report)
    print(text)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
