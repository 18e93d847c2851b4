"""Agent frameworks against ``qwen-gradio serve``, each used as its docs say: a real server
process in front of the gradio 6 replica, and each framework's own script (``tests/agents``)
run in ``.venv-agents`` (``tests/agents-venv.sh`` builds it; ``.ci/run`` does, in parallel).
The replica answers as Qwen2.5 does when tools are declared (``qwen_gradio.replica``): a
question that names a tool calls it, a tool round's results are answered in words (or through
an agent's ``final_answer`` tool), a JSON answer when one is asked.

Without the venv these tests are skipped, unless ``QWEN_GRADIO_REQUIRE_AGENTS=1`` (as in CI).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import ROOT, Replica, shared_replica
from .test_serve import serve

SCRIPTS = Path(__file__).parent / "agents"
CITY = "City(name='Lyon', population=520000)"


@pytest.fixture(scope="module")
def python() -> str:
    given = os.environ.get("QWEN_GRADIO_AGENTS_PYTHON") or str(ROOT / ".venv-agents/bin/python")
    if not Path(given).exists():
        if os.environ.get("QWEN_GRADIO_REQUIRE_AGENTS") == "1":
            pytest.fail("no agents venv, but QWEN_GRADIO_REQUIRE_AGENTS=1 (tests/agents-venv.sh)")
        pytest.skip("no agents venv (bash tests/agents-venv.sh builds it)")
    return given


@pytest.fixture(scope="module")
def space() -> Replica:
    return shared_replica("gradio6")


@pytest.fixture(scope="module")
def base_url(space: Replica, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve(space.url, tmp_path_factory.mktemp("agents"), "--quiet") as running:
        yield f"{running.url}/v1"  # type: ignore[attr-defined]


def run(python: str, script: str, base_url: str) -> list[str]:
    """The lines ``tests/agents/uses_SCRIPT.py`` prints, run against the server."""
    env = {**os.environ, "BASE_URL": base_url, "OPENAI_API_KEY": "unused"}
    env.pop("PYTHONPATH", None)  # the framework's venv alone, as its users have it
    result = subprocess.run(
        [python, str(SCRIPTS / f"uses_{script}.py")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=SCRIPTS,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.splitlines()


def test_openai_agents_with_a_function_tool(python: str, base_url: str) -> None:
    """An Agent with a ``@function_tool``, through the Responses API (the default) and chat
    completions."""
    assert run(python, "openai_agents", base_url) == ["The tools said: sunny in Paris"] * 2


def test_pydantic_ai_with_a_tool_and_a_structured_output(python: str, base_url: str) -> None:
    """A tool, and ``output_type`` a model (pydantic-ai's default: an output tool)."""
    assert run(python, "pydantic_ai", base_url) == ["The tools said: sunny in Paris", CITY]


def test_langchain_bind_tools_and_structured_output(
    python: str, base_url: str, space: Replica
) -> None:
    """``bind_tools`` whole and streamed, with ``parallel_tool_calls=False`` (one call of
    two) and ``tool_choice="any"`` (a reply in words: asked twice, then answered in words);
    ``with_structured_output`` by json_schema (its default) and by function calling."""
    run_before = space.next_run()
    assert run(python, "langchain", base_url) == [
        "get_weather {'city': 'Paris'}",
        "get_weather {'city': 'Rome'}",
        "['get_weather']",
        "'Just words.' []",
        CITY,
        CITY,
    ]
    queries = [r["query"] for r in space.runs()[run_before:]]
    assert queries.count("/calls [] Just words.") == 2


def test_smolagents_tool_calling_and_code_agents(
    python: str, base_url: str, space: Replica
) -> None:
    """A ``ToolCallingAgent`` (its ``final_answer`` tool, ``tool_choice: required``), and a
    ``CodeAgent`` whose reply runs past ``</code>`` into an invented step: serve cuts it at
    the stop sequence, so only the first step runs, and the job stops on the Space."""
    start = space.next_run()
    assert run(python, "smolagents", base_url) == ["The tools said: sunny in Paris", "42"]
    code_run = next(
        k for k, r in enumerate(space.runs()) if k >= start and 'final_answer("42")' in r["query"]
    )
    assert space.wait(code_run)["outcome"] == "stopped"


def test_instructor_in_its_default_mode(python: str, base_url: str) -> None:
    """instructor's default mode: a tool named after the model, ``tool_choice`` naming it."""
    assert run(python, "instructor", base_url) == [CITY]


def test_qwen_agent_with_a_registered_tool(python: str, base_url: str) -> None:
    """Qwen-Agent prompts tools itself, in the same format; serve passes its text through."""
    lines = run(python, "qwen_agent", base_url)
    assert lines[-1] == "The tools said: sunny in Paris"
