"""Availability under faults: replies through a pool of three Spaces while one of them is down
half the time (killed and back every few seconds) and another answers "queue full" to every
other job, against the same faults on a single Space; and the load spread of the pool's routing
(queue-aware) against round-robin::

    python bench/availability.py [--generation 5|6] [--smoke] [--output FILE.md]

The three replicas run on loopback, each behind a front end that plays its fault (tests/helpers'
``FaultyFrontEnd``): "down" drops every connection it takes while the Space is away (as a killed
Space's front end does), "full" refuses every other join with gradio's 503 "Queue is full.". The
first-token time of each reply is split by how many failovers it took, so the cost of one is the
difference of their medians.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import statistics
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from qwen_gradio import QwenClient, Retrying, TextDelta  # noqa: E402
from tests.conftest import _g5_python, start_replica  # noqa: E402
from tests.helpers import FaultyFrontEnd  # noqa: E402


class Faults:
    """The faults the front ends play: "down" is away for ``period`` seconds of every two;
    "full" refuses every other join."""

    def __init__(self, period: float) -> None:
        self.period = period
        self.started = time.monotonic()
        self.joins = itertools.count()
        self.lock = threading.Lock()

    def down(self, method: str, path: str) -> str:
        away = int((time.monotonic() - self.started) / self.period) % 2 == 1
        return "cut" if away else "forward"

    def full(self, method: str, path: str) -> str:
        if not path.split("?")[0].endswith("queue/join"):
            return "forward"
        with self.lock:
            refused = next(self.joins) % 2 == 0
        return "queue_full" if refused else "forward"


async def run(
    spaces: list[str], replies: int, concurrency: int, attempts: int, route: str = "queue-aware"
) -> dict[str, Any]:
    """``replies`` replies, ``concurrency`` at a time; what became of each."""
    import qwen_gradio._client.job as job_module

    original = job_module.choose
    if route == "round-robin":  # the baseline: each reply to the next Space, whatever its state
        turn = itertools.count()

        def round_robin(members: Any, now: float) -> int | None:
            return next(turn) % len(members)

        job_module.choose = round_robin
    outcomes: list[dict[str, Any]] = []
    slots = asyncio.Semaphore(concurrency)
    try:
        async with QwenClient(spaces, attempts=attempts, timeout=60) as client:

            async def one(k: int) -> None:
                async with slots:
                    started = time.perf_counter()
                    first, failovers, error = None, 0, None
                    stream = client.astream(f"/echo reply {k} of the run")
                    try:
                        async with stream:
                            async for event in stream.events():
                                if isinstance(event, Retrying):
                                    failovers += 1
                                elif isinstance(event, TextDelta) and first is None:
                                    first = time.perf_counter() - started
                    except Exception as exc:  # counted, not raised: availability is the point
                        error = type(exc).__name__
                    outcomes.append(
                        {
                            "exact": stream.text == f"reply {k} of the run",
                            "error": error,
                            "first": first,
                            "failovers": failovers,
                            "space": stream.space,
                        }
                    )

            await asyncio.gather(*(one(k) for k in range(replies)))
    finally:
        job_module.choose = original
    return summarise(outcomes, replies)


def summarise(outcomes: list[dict[str, Any]], replies: int) -> dict[str, Any]:
    answered = [o for o in outcomes if o["exact"] and o["error"] is None]

    def median_first(failovers: int) -> float | None:
        times = [o["first"] for o in answered if o["failovers"] == failovers and o["first"]]
        return statistics.median(times) * 1000 if times else None

    return {
        "answered": len(answered),
        "replies": replies,
        "errors": Counter(o["error"] for o in outcomes if o["error"]),
        "first_0": median_first(0),
        "first_1": median_first(1),
        "failovers": sum(o["failovers"] for o in outcomes),
        "spread": Counter(o["space"] for o in answered),
    }


def fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a tiny run (the test suite's)")
    parser.add_argument("--generation", choices=["5", "6"], default="6")
    parser.add_argument("--output", type=Path, default=BENCH / "RESULTS-availability.md")
    args = parser.parse_args(argv)
    replies, concurrency, period = (8, 4, 0.5) if args.smoke else (300, 8, 3.0)
    g5 = _g5_python()
    if args.generation == "5" and g5 is None:
        parser.error("no gradio 5 interpreter: run bash tests/gradio5-venv.sh")
    python = g5 if args.generation == "5" and g5 else sys.executable
    replicas = [start_replica(python, f"availability-{k}", delay=0.005) for k in range(3)]
    faults = Faults(period)
    try:
        with (
            FaultyFrontEnd(replicas[0].url, faults.down, cut_after=0) as down,
            FaultyFrontEnd(replicas[1].url, faults.full) as full,
            FaultyFrontEnd(replicas[2].url, lambda method, path: "forward") as healthy,
        ):
            names = {
                down.url: "down half the time",
                full.url: "queue full half the time",
                healthy.url: "healthy",
            }
            pool = [down.url, full.url, healthy.url]
            down1, full1 = "one Space, down half the time", "one Space, queue full half the time"
            rows = [
                (f"{down1} (1 try)", run([down.url], replies, concurrency, 1)),
                (f"{down1} (3 tries)", run([down.url], replies, concurrency, 3)),
                (f"{full1} (1 try)", run([full.url], replies, concurrency, 1)),
                (f"{full1} (3 tries)", run([full.url], replies, concurrency, 3)),
                ("the pool of three, queue-aware (3 tries)", run(pool, replies, concurrency, 3)),
                (
                    "the pool of three, round-robin (3 tries)",
                    run(pool, replies, concurrency, 3, "round-robin"),
                ),
            ]
            results = [(label, asyncio.run(coro)) for label, coro in rows]
    finally:
        for replica in replicas:
            replica.process.terminate()
            replica.process.wait(timeout=10)
    lines = [
        "# Availability under faults",
        "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {platform.machine()}, {os.cpu_count()} cores; python"
        f" {platform.python_version()}",
        f"- {replies} replies, {concurrency} at a time, through three gradio"
        f" {replicas[0].gradio_version} replicas on loopback, each behind a front end: one down"
        f" for {period:g} s of every {2 * period:g} (it drops every connection), one refusing every"
        ' other join with 503 "Queue is full.", one healthy'
        + (" — SMOKE RUN" if args.smoke else ""),
        "",
        "| run | answered | errors | first token, no failover (ms) | first token, one failover"
        " (ms) | failovers | replies per Space |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, r in results:
        errors = ", ".join(f"{n} {kind}" for kind, n in r["errors"].items()) or "none"
        spread = ", ".join(f"{names[url]}: {n}" for url, n in sorted(r["spread"].items()))
        share = f"{r['answered']}/{r['replies']} ({100 * r['answered'] / r['replies']:.0f} %)"
        lines.append(
            f"| {label} | {share} | {errors} | {fmt(r['first_0'])} | {fmt(r['first_1'])}"
            f" | {r['failovers']} | {spread} |"
        )
    text = "\n".join([*lines, ""])
    print(text)
    args.output.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
