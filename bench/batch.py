"""Benchmark ``qwen-gradio batch``: 200 prompts at concurrency 1, 8 and 32 against the replica.

The replica runs like the Space (5 chat jobs at a time, the rest wait in its queue; 5 ms between
tokens, 20 tokens a reply); each run is a fresh ``qwen-gradio batch`` process writing a fresh
output file. Reports wall time, prompts per second, and the median queue and generation seconds
of the output lines::

    python bench/batch.py [--generation 5|6] [--smoke] [--output bench/RESULTS-batch.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONCURRENCY = (1, 8, 32)


def run_batch(url: str, prompts: int, concurrency: int, workdir: Path) -> dict[str, float]:
    source, output = workdir / f"in-{concurrency}.jsonl", workdir / f"out-{concurrency}.jsonl"
    source.write_text("".join(json.dumps(f"/long {20}") + "\n" for _ in range(prompts)))
    output.unlink(missing_ok=True)
    command = [sys.executable, "-m", "qwen_gradio", "batch", str(source), "-o", str(output)]
    command += ["--space", url, "--concurrency", str(concurrency)]
    started = time.perf_counter()
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"batch failed: {done.stderr}")
    records = [json.loads(line) for line in output.read_text().splitlines()]
    expected = "".join(f"t{k} " for k in range(20))
    return {
        "seconds": seconds,
        "rate": prompts / seconds,
        "exact": sum(r["text"] == expected for r in records),
        "queue": statistics.median(r["queue_seconds"] for r in records),
        "generation": statistics.median(r["generation_seconds"] for r in records),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generation", choices=["5", "6"], default=None)
    parser.add_argument("--smoke", action="store_true", help="10 prompts, for the tests")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS-batch.md")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from tests.conftest import _g5_python, start_replica

    g5 = _g5_python()
    generation = args.generation or ("5" if g5 else "6")
    python = g5 if generation == "5" and g5 else sys.executable
    prompts = 10 if args.smoke else 200
    replica = start_replica(python, "bench-batch", delay=0.005)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for concurrency in CONCURRENCY:
                print(f"concurrency {concurrency}…", file=sys.stderr, flush=True)
                rows.append((concurrency, run_batch(replica.url, prompts, concurrency, Path(tmp))))
    finally:
        assert replica.process is not None
        replica.process.terminate()
        replica.process.wait(timeout=10)
    lines = [
        "# `qwen-gradio batch` benchmark",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; python"
        f" {platform.python_version()}",
        f"- replica: gradio {replica.gradio_version}, 5 chat jobs at a time like the Space, 5 ms"
        f" between tokens; {prompts} prompts of 20 tokens each, a fresh batch process per row"
        + (" — SMOKE RUN" if args.smoke else ""),
        "",
        "| concurrency | wall time (s) | prompts/s | exact replies | median queue wait (s)"
        " | median generation (s) |",
        "|---|---|---|---|---|---|",
        *[
            f"| {c} | {r['seconds']:.1f} | {r['rate']:.2f} | {r['exact']}/{prompts}"
            f" | {r['queue']:.3f} | {r['generation']:.3f} |"
            for c, r in rows
        ],
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
