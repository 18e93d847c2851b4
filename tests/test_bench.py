"""Tiny runs of the benchmarks: each runs and produces every row (no timing is asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from bench.cold import KINDS
from bench.run import METHODS

from .conftest import ROOT
from .helpers import RedisServer


def smoke_run(script: str, output: Path) -> tuple[str, dict[str, str]]:
    """Run ``bench/<script> --smoke`` against a gradio 6 replica; its report and table rows
    (first column -> the whole line)."""
    done = subprocess.run(
        [
            sys.executable,
            f"bench/{script}",
            "--smoke",
            "--generation",
            "6",
            "--output",
            str(output),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    report = output.read_text()
    rows = {
        line.split("|")[1].strip(): line
        for line in report.splitlines()
        if line.startswith("| ") and "|---" not in line
    }
    return report, rows


def test_the_benchmark_smoke_run_produces_every_row(tmp_path: Path) -> None:
    report, rows = smoke_run("run.py", tmp_path / "RESULTS.md")
    rows.pop("client")
    assert set(rows) == set(METHODS)
    for method, line in rows.items():
        if method.startswith("seed"):
            continue  # measured when .venv-seed exists; on gradio 6 the original fails
        assert "failed" not in line and "skipped" not in line, line
        assert line.rstrip().endswith("| 4/4 |"), line  # every concurrent reply exact
    assert "`import qwen_gradio`" in report and "## Targets" in report
    assert "streamed requests waiting in the Space's queue" in report  # the server's memory


def test_the_batch_benchmark_smoke_run(tmp_path: Path) -> None:
    _, rows = smoke_run("batch.py", tmp_path / "RESULTS-batch.md")
    rows.pop("concurrency")
    assert list(rows) == ["1", "8", "32"]
    assert all("| 10/10 |" in row for row in rows.values())  # every reply exact


def test_the_cold_start_benchmark_smoke_run(tmp_path: Path) -> None:
    _, rows = smoke_run("cold.py", tmp_path / "RESULTS-cold.md")
    rows.pop("client")
    rows.pop("reply")
    for reply in ("first of the process", "the next one"):  # each delta's latency
        assert re.match(r"\| [^|]+ \| \d+\.\d \| \d+\.\d \|", rows.pop(reply)), reply
    assert set(rows) == set(KINDS)
    for kind, line in rows.items():
        if not kind.startswith("seed"):  # measured when .venv-seed exists
            assert line.split("|")[2].strip().isdigit(), line


def test_the_availability_benchmark_smoke_run(tmp_path: Path) -> None:
    report, rows = smoke_run("availability.py", tmp_path / "availability.md")
    assert "SMOKE RUN" in report
    labels = [label for label in rows if label.startswith(("one Space", "the pool"))]
    assert len(labels) == 6
    for label in labels:  # every row counted all 8 replies, answered or not
        assert re.search(r"\| \d+/8 \(\d+ %\) \|", rows[label]), rows[label]


def test_the_shutdown_benchmark_smoke_run(tmp_path: Path) -> None:
    _, rows = smoke_run("shutdown.py", tmp_path / "RESULTS-shutdown.md")
    rows.pop("what")
    assert len(rows) == 5 and all("failed" not in line for line in rows.values())


def test_the_shared_state_benchmark_smoke_run(tmp_path: Path, redis_server: RedisServer) -> None:
    """Every state in every table, every stream exact (``redis_server`` is asked for its skip
    rule only: the benchmark starts a Redis of its own)."""
    report, _ = smoke_run("state.py", tmp_path / "RESULTS-state.md")
    tables = [part for part in report.split("\n\n") if part.startswith("| state")]
    assert len(tables) == 3  # the operations, through serve, the streams
    for table in tables:
        rows = table.splitlines()[2:]
        assert [row.split("|")[1].strip() for row in rows] == ["local", "sqlite", "redis"]
    assert all("| 10/10 |" in row for row in tables[2].splitlines()[2:])
