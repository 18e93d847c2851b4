"""Fixtures: the replica Space served by a real Gradio server on a free loopback port.

The replica runs in a subprocess, so the client's threads are all this process has. It runs under
the current gradio (this environment), under the Space's own gradio 5.x, from the interpreter
named by ``QWEN_GRADIO_G5_PYTHON``, else ``.venv-gradio5`` (``tests/gradio5-venv.sh`` builds it),
and under gradio 4.44 from ``QWEN_GRADIO_G4_PYTHON``, else ``.venv-gradio4``
(``tests/gradio4-venv.sh``). Without one those cases are skipped, unless
``QWEN_GRADIO_REQUIRE_G5=1``/``QWEN_GRADIO_REQUIRE_G4=1`` makes that an error (as in CI).
Replicas are started once per session and shared by the fixtures that ask for the same one.
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

from .helpers import REDIS_SERVER, RedisServer

ROOT = Path(__file__).resolve().parent.parent
G5_PYTHON_ENV = "QWEN_GRADIO_G5_PYTHON"
G4_PYTHON_ENV = "QWEN_GRADIO_G4_PYTHON"
ARTIFACTS = ROOT / "tests" / "artifacts"
# generation -> (interpreter variable, local venv, "require" variable, the script that builds it)
OLD_GENERATIONS = {
    "gradio5": (G5_PYTHON_ENV, ".venv-gradio5", "QWEN_GRADIO_REQUIRE_G5", "gradio5-venv.sh"),
    "gradio4": (G4_PYTHON_ENV, ".venv-gradio4", "QWEN_GRADIO_REQUIRE_G4", "gradio4-venv.sh"),
}


@dataclass
class Replica:
    """A running replica and its ``/replica/*`` side API."""

    url: str
    generation: str  # "gradio6" | "gradio5" | "gradio4"
    gradio_version: str
    process: subprocess.Popen[str] | None = None  # None: served in this process

    def runs(self) -> list[dict[str, Any]]:
        return httpx.get(f"{self.url}/replica/runs", timeout=10).json()  # type: ignore[no-any-return]

    def next_run(self) -> int:
        """The index the next chat call will get (runs are numbered in arrival order)."""
        return len(self.runs())

    def wait(self, run: int, timeout: float = 20) -> dict[str, Any]:
        """Block until run ``run`` has ended on the Space; return what it did."""
        return self._block("wait", run, timeout)

    def started(self, run: int, timeout: float = 20) -> dict[str, Any]:
        """Block until run ``run`` has started on the Space; return what it received."""
        return self._block("started", run, timeout)

    def _block(self, route: str, run: int, timeout: float) -> dict[str, Any]:
        response = httpx.get(
            f"{self.url}/replica/{route}",
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


def start_replica(
    python: str,
    generation: str,
    delay: float = 0.005,
    port: int = 0,
    variant: str = "max",
    concurrency: int = 5,
) -> Replica:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = open(ARTIFACTS / f"replica-{generation}-{variant}.log", "w")  # noqa: SIM115 - lives with the process
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [python, "-m", "qwen_gradio.replica", "--port", str(port), "--delay", str(delay)]
    command += ["--concurrency", str(concurrency)]
    process = subprocess.Popen(
        [*command, "--variant", variant],
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


def generation_python(generation: str) -> str | None:
    """The interpreter whose gradio is ``generation`` ("gradio6": this one), or None."""
    if generation not in OLD_GENERATIONS:
        return sys.executable
    variable, venv, require, script = OLD_GENERATIONS[generation]
    python = os.environ.get(variable)
    if python:
        return python
    local = ROOT / venv / "bin" / "python"  # made by tests/<script>
    if local.exists():
        return str(local)
    if os.environ.get(require) == "1":
        pytest.fail(f"{variable} is not set but {require}=1 (tests/{script} builds it)")
    return None


def _g5_python() -> str | None:
    return generation_python("gradio5")


_REPLICAS: dict[tuple[str, str], Replica] = {}


def shared_replica(generation: str, variant: str = "max") -> Replica:
    """The replica under ``generation`` (one per session and variant), or skip without one."""
    key = (generation, variant)
    if key not in _REPLICAS:
        python = generation_python(generation)
        if python is None:
            variable = OLD_GENERATIONS[generation][0]
            pytest.skip(f"set {variable} to a Python with {generation} to run these")
        _REPLICAS[key] = start_replica(python, generation, variant=variant)
    return _REPLICAS[key]


@pytest.fixture(autouse=True)
def _test_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's own cache directory: what one test's Spaces left never meets another's (a
    port the system hands out again would otherwise find the entry of another Space there)."""
    monkeypatch.setenv("QWEN_GRADIO_CACHE_DIR", str(tmp_path / "qwen-gradio-cache"))


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The tests' own cache directory (never the user's), for this process and its children."""
    before = os.environ.get("QWEN_GRADIO_CACHE_DIR")
    os.environ["QWEN_GRADIO_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if before is None:
        os.environ.pop("QWEN_GRADIO_CACHE_DIR", None)
    else:
        os.environ["QWEN_GRADIO_CACHE_DIR"] = before


@pytest.fixture(scope="session", autouse=True)
def _stop_shared_replicas() -> Iterator[None]:
    yield
    for server in _REPLICAS.values():
        assert server.process is not None
        server.process.terminate()
    for server in _REPLICAS.values():
        assert server.process is not None
        server.process.wait(timeout=10)
    _REPLICAS.clear()


@pytest.fixture(scope="session", params=["gradio6", "gradio5"])
def replica(request: pytest.FixtureRequest) -> Replica:
    """The replica under each gradio generation."""
    return shared_replica(request.param)


@pytest.fixture(scope="session", params=["gradio6", "gradio5", "gradio4"])
def replica_any(request: pytest.FixtureRequest) -> Replica:
    """The replica under gradio 6, 5 and 4.44."""
    return shared_replica(request.param)


@pytest.fixture(scope="session", params=["gradio6", "gradio5"])
def sized_replica(request: pytest.FixtureRequest) -> Replica:
    """The Qwen2.5 demo's layout (a model-size radio, the chat event at fn_index 3)."""
    return shared_replica(request.param, "qwen2.5")


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


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A real Redis on a free port (Debian's redis-server): skipped without it, unless
    ``QWEN_GRADIO_REQUIRE_REDIS=1`` makes that an error (as in CI, which installs it)."""
    if REDIS_SERVER is None:
        if os.environ.get("QWEN_GRADIO_REQUIRE_REDIS") == "1":
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()
