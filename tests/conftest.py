"""Fixtures: the replica Space served by a real Gradio server on a free loopback port.

The replica runs in a subprocess, so the client's threads are all this process has. It runs under
the current gradio (this environment) and under the Space's own gradio 5.x, from the interpreter
named by ``QWEN_GRADIO_G5_PYTHON``, else ``.venv-gradio5`` (``tests/gradio5-venv.sh`` builds it).
Without one the gradio-5 cases are skipped, unless ``QWEN_GRADIO_REQUIRE_G5=1`` makes that an
error (as in CI).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
G5_PYTHON_ENV = "QWEN_GRADIO_G5_PYTHON"
ARTIFACTS = ROOT / "tests" / "artifacts"


@dataclass
class Replica:
    """A running replica and its ``/replica/*`` side API."""

    url: str
    generation: str  # "gradio6" | "gradio5"
    gradio_version: str
    process: subprocess.Popen[str] | None = None  # None: served in this process

    def runs(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/replica/runs", timeout=10).json()  # type: ignore[no-any-return]

    def next_run(self) -> int:
        """The index the next chat call will get (runs are numbered in arrival order)."""
        return len(self.runs())

    def wait(self, run: int, timeout: float = 20) -> dict[str, Any]:
        """Block until run ``run`` has ended on the Space; return what it did."""
        response = httpx.get(
            f"{self.url}/replica/wait",
            params={"run": run, "timeout": timeout},
            timeout=timeout + 5,
        )
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def requests(self) -> list[dict[str, Any]]:
        """The requests the Space received: method, path, auth header, user agent."""
        return httpx.get(f"{self.url}/replica/requests", timeout=10).json()  # type: ignore[no-any-return]

    def release(self) -> None:
        httpx.post(f"{self.url}/replica/release", timeout=10).raise_for_status()


def start_replica(python: str, generation: str, delay: float = 0.005, port: int = 0) -> Replica:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / f"replica-{generation}.log", "w")  # noqa: SIM115 - lives with the process
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(
        [python, "-m", "qwen_gradio.replica", "--port", str(port), "--delay", str(delay)],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert process.stdout is not None
    line = process.stdout.readline()  # blocks until the server is up (or the process died)
    if "serving at" not in line:
        process.kill()
        raise RuntimeError(f"the {generation} replica did not start: see {log.name}")
    url = line.rsplit(" ", 1)[-1].strip()
    version = httpx.get(f"{url}/config", timeout=10).json()["version"]
    return Replica(url, generation, version, process)


def _g5_python() -> str | None:
    python = os.environ.get(G5_PYTHON_ENV)
    if python:
        return python
    local = ROOT / ".venv-gradio5" / "bin" / "python"  # made by tests/gradio5-venv.sh
    if local.exists():
        return str(local)
    if os.environ.get("QWEN_GRADIO_REQUIRE_G5") == "1":
        pytest.fail(f"{G5_PYTHON_ENV} is not set but QWEN_GRADIO_REQUIRE_G5=1")
    return None


@pytest.fixture(scope="session", params=["gradio6", "gradio5"])
def replica(request: pytest.FixtureRequest) -> Iterator[Replica]:
    """The replica under each gradio generation."""
    if request.param == "gradio5":
        python = _g5_python()
        if python is None:
            pytest.skip(f"set {G5_PYTHON_ENV} to a Python with gradio 5.x to run these")
    else:
        python = sys.executable
    server = start_replica(python, request.param)
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture(scope="session")
def replica6() -> Iterator[Replica]:
    """The replica under the current gradio only (for tests not about the generation)."""
    server = start_replica(sys.executable, "gradio6-solo")
    yield server
    server.process.terminate()
    server.process.wait(timeout=10)


@pytest.fixture
def no_new_threads() -> Iterator[None]:
    """Fail the test if it leaves a thread behind."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    for thread in left:  # a thread that is ending may need a moment to be gone
        thread.join(timeout=5)
    left = [t.name for t in left if t.is_alive()]
    assert not left, f"threads left behind: {left}"


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    """Register the matcher that keeps session hashes and event ids out of cassette matching."""
    from .cassette_config import gradio_matcher

    vcr.register_matcher("gradio", gradio_matcher)
