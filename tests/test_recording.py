"""The cassettes are safe to commit, and recording them again reproduces the same results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .cassette_config import CASSETTES, TOKEN_PATTERN
from .conftest import ROOT, Replica


def test_no_cassette_holds_a_token_a_cookie_or_a_heartbeat() -> None:
    files = sorted(CASSETTES.rglob("*.yaml"))
    assert {p.parent.name for p in files} >= {"gradio4", "gradio5", "gradio6"}, f"missing: {files}"
    for path in files:
        text = path.read_text()
        assert not TOKEN_PATTERN.search(text), f"{path} holds a token"
        assert "/heartbeat/" not in text, f"{path} recorded a heartbeat"
        lowered = text.lower()
        for header in ("authorization:", "cookie:"):
            assert header not in lowered, f"{path} holds a {header} header"


def run(command: list[str], cassettes: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QWEN_GRADIO_CASSETTES": str(cassettes)}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def replay(cassettes: Path, select: str) -> str:
    result = run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_cassettes.py",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            select,
        ],
        cassettes,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_re_recording_reproduces_the_results(tmp_path: Path) -> None:
    recorded = run(
        [
            sys.executable,
            "tests/record.py",
            "--generation",
            "gradio6",
            "--cassettes",
            str(tmp_path),
        ],
        tmp_path,
    )
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    assert len(list((tmp_path / "gradio6").glob("*.yaml"))) == 9
    fresh = replay(tmp_path, "gradio6")
    committed = replay(CASSETTES, "gradio6")
    assert fresh.split(" in ")[0] == committed.split(" in ")[0] == "9 passed, 18 deselected"


def test_live_mode_records_a_space_set(tmp_path: Path, replica6: Replica) -> None:
    """``--live`` against a Space: here the replica stands in for the real one (no internet)."""
    recorded = run(
        [
            sys.executable,
            "tests/record.py",
            "--live",
            "--space",
            replica6.url,
            "--cassettes",
            str(tmp_path),
        ],
        tmp_path,
    )
    assert recorded.returncode == 0, recorded.stdout + recorded.stderr
    names = sorted(p.stem for p in (tmp_path / "live").glob("*.yaml"))
    assert "test_plain_reply_sync" in names and "test_app_error_mid_stream" not in names
    assert replay(tmp_path, "live").startswith("5 passed, 4 skipped, 27 deselected")
