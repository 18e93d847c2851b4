"""The ``llm`` plugin, through ``llm`` itself in a subprocess (and its Python API for the async
model), against the replica: a prompt streamed, ``-c`` continuing, ``-s``, ``-o`` for the
Space's options and the client's settings, ``--no-stream``, ``llm logs`` with the token counts,
errors as llm shows them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_gradio.tokens import count_text

from .conftest import Replica, shared_replica
from .helpers import replica_reply

LLM = str(Path(sys.executable).parent / "llm")


def llm(home: Path, space: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LLM_USER_PATH": str(home), "QWEN_GRADIO_SPACE": space}
    return subprocess.run([LLM, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "llm"


def test_a_prompt_a_continued_conversation_and_the_log(replica6: Replica, home: Path) -> None:
    first = llm(home, replica6.url, "-m", "qwen2.5-max", "Hello there")
    assert (first.returncode, first.stdout, first.stderr) == (
        0,
        replica_reply("Hello there") + "\n",
        "",
    )
    again = llm(home, replica6.url, "-c", "/history")
    assert json.loads(again.stdout) == [["Hello there", replica_reply("Hello there")]]
    system = llm(home, replica6.url, "-m", "qwen", "-s", "Be brief.", "/system", "--no-stream")
    assert system.stdout == "Be brief.\n"
    logs = json.loads(llm(home, replica6.url, "logs", "-n", "3", "--json").stdout)
    assert [entry["prompt"] for entry in logs] == ["Hello there", "/history", "/system"]
    assert logs[0]["output_tokens"] == count_text(replica_reply("Hello there"))
    assert logs[0]["input_tokens"] > 0 and logs[2]["system"] == "Be brief."
    assert logs[0]["conversation_id"] == logs[1]["conversation_id"] != logs[2]["conversation_id"]


def test_llm_functions_run_a_tool_round_and_log_it(replica6: Replica, home: Path) -> None:
    """``llm --functions``: the reply's call reaches llm, which runs the function and sends its
    result back; ``llm logs`` shows the call and the result."""
    function = (
        "def get_weather(city: str) -> str:\n"
        '    "The current weather in a city."\n'
        '    return f"sunny in {city}"\n'
    )
    run = llm(home, replica6.url, "-m", "qwen2.5-max", "--functions", function, "Weather in Oslo?")
    assert (run.returncode, run.stdout, run.stderr) == (0, "The tools said: sunny in Oslo\n", "")
    logs = json.loads(llm(home, replica6.url, "logs", "-n", "2", "--json").stdout)
    (call,) = logs[0]["tool_calls"]
    assert (call["name"], call["arguments"]) == ("get_weather", {"city": "Oslo"})
    (result,) = logs[1]["tool_results"]
    assert (result["output"], result["tool_call_id"]) == ("sunny in Oslo", call["tool_call_id"])


def test_options_reach_the_space_and_the_client(home: Path) -> None:
    sized = shared_replica("gradio6", "qwen2.5")
    done = llm(
        home,
        "unused/space",
        "-m",
        "qwen2.5-max",
        "-o",
        "space",
        sized.url,
        "-o",
        "model_size",
        "32B",
        "/options",
    )
    assert (done.returncode, done.stdout) == (0, '{"model_size": "32B"}\n'), done.stderr


def test_errors_are_llm_s(replica6: Replica, home: Path) -> None:
    done = llm(home, replica6.url, "-m", "qwen2.5-max", "/error the model broke")
    assert done.returncode == 1
    assert "SpaceError: the model broke" in done.stderr and "Traceback" not in done.stderr
    wrong = llm(home, replica6.url, "-m", "qwen2.5-max", "-o", "model_size", "1B", "hi")
    assert wrong.returncode == 1 and "InvalidOptionError" in wrong.stderr


def test_the_async_model(replica6: Replica, monkeypatch: pytest.MonkeyPatch) -> None:
    import llm as llm_api

    monkeypatch.setenv("QWEN_GRADIO_SPACE", replica6.url)
    model = llm_api.get_async_model("qwen2.5-max")

    async def ask() -> tuple[list[str], object]:
        response = model.prompt("/echo one two", space=replica6.url)
        chunks = [chunk async for chunk in response]
        return chunks, await response.usage()

    chunks, usage = asyncio.run(ask())
    assert chunks == ["one", " ", "two"]
    assert getattr(usage, "output", None) == 2


def test_the_docs_example(replica6: Replica, tmp_path: Path) -> None:
    from .docs import example

    script = tmp_path / "example.py"
    script.write_text(example("docs/llm.md", 'llm.get_model("qwen2.5-max")'))
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path / "llm"), "QWEN_GRADIO_SPACE": replica6.url}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == replica_reply("Hello") + "\n" + replica_reply("And again?") + "\n"


@pytest.mark.parametrize("stream", [True, False])
def test_llm_s_openai_compatible_config_works_against_serve(
    replica6: Replica, home: Path, tmp_path: Path, stream: bool
) -> None:
    """llm pointed at serve as an OpenAI-compatible model: --no-stream needed a usage object
    (llm failed with "'NoneType' object has no attribute 'model_dump'" before there was one)."""
    from .test_serve import serve

    with serve(replica6.url, tmp_path, "--quiet") as running:
        home.mkdir(parents=True, exist_ok=True)
        config = (
            f'- model_id: qwen-serve\n  model_name: qwen-2.5-max\n  api_base: "{running.url}/v1"\n'  # type: ignore[attr-defined]
        )
        (home / "extra-openai-models.yaml").write_text(config)
        done = llm(
            home, replica6.url, "-m", "qwen-serve", *([] if stream else ["--no-stream"]), "Hi"
        )
        logs = json.loads(llm(home, replica6.url, "logs", "-n", "1", "--json").stdout)
    assert (done.returncode, done.stdout) == (0, replica_reply("Hi") + "\n"), done.stderr
    if not stream:
        assert logs[0]["output_tokens"] == count_text(replica_reply("Hi"))
