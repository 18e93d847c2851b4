"""The provider inside gpt4free itself, on the seed's g4f 0.5.7.0 and on current g4f 8.8.x.

Each g4f version lives in its own venv (``tests/g4f-venvs.sh``); the scenarios run there, through
``tests/g4f_driver.py``, against the replica under gradio 6 and 5. gpt4free's API server runs
as a real process and is driven over HTTP. Without the venvs these tests are skipped, unless
``QWEN_GRADIO_REQUIRE_G4F=1`` (CI) makes that an error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ROOT, Replica
from .docs import example
from .helpers import ServerProcess, assert_stopped_early, free_port, replica_reply

VERSIONS = {"g4f-0.5.7": "0.5.7.0", "g4f-8.8": "8.8"}
TOKENS = [f"t{k} " for k in range(20)]
G4F_MODULES = ("g4f.errors.ResponseError", "g4f.errors.ModelNotFoundError")


def g4f_python(name: str) -> str:
    python = os.environ.get(f"QWEN_GRADIO_{name.upper().replace('-', '_').replace('.', '')}_PYTHON")
    local = ROOT / f".venv-{name}" / "bin" / "python"
    if python:
        return python
    if local.exists():
        return str(local)
    if os.environ.get("QWEN_GRADIO_REQUIRE_G4F") == "1":
        pytest.fail(f"no {name} venv, but QWEN_GRADIO_REQUIRE_G4F=1: run tests/g4f-venvs.sh")
    pytest.skip(f"no {name} venv: run tests/g4f-venvs.sh")


@pytest.fixture(scope="session", params=sorted(VERSIONS))
def g4f(request: pytest.FixtureRequest) -> str:
    """The Python of a venv with that gpt4free version (and qwen_gradio) installed."""
    python = g4f_python(request.param)
    version = subprocess.run(
        [python, "-c", "import importlib.metadata as m; print(m.version('g4f'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert version.startswith(VERSIONS[request.param]), version
    return python


def drive(python: str, scenario: str, replica: Replica) -> dict[str, Any]:
    """Run one scenario of tests/g4f_driver.py in the g4f venv; fail on any stderr output."""
    result = subprocess.run(
        [python, str(ROOT / "tests" / "g4f_driver.py"), scenario, replica.url],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no warnings, no tracebacks from background work
    out: dict[str, Any] = json.loads(result.stdout)
    assert set(out["hosts"]) <= {"127.0.0.1"}  # nothing but the Space was looked up
    return out


def test_a_real_gpt4free_provider_that_keeps_the_seeds_attributes(
    g4f: str, replica: Replica
) -> None:
    out = drive(g4f, "imports", replica)
    assert out["is_g4f_provider"] and out["same_as_standalone"]
    assert not out["qwen_gradio_alone_imports_g4f"]  # `import qwen_gradio` leaves g4f alone
    assert not out["standalone_is_g4f_provider"]
    assert out["attributes"] == {
        "label": "Qwen Qwen-2.5-Max",
        "url": "https://qwen-qwen2-5-max-demo.hf.space",
        "api_endpoint": "https://qwen-qwen2-5-max-demo.hf.space/gradio_api/queue/join",
        "working": True,
        "supports_stream": True,
        "supports_system_message": True,
        "supports_message_history": True,
        "default_model": "qwen-qwen2-5-max",
        "model_aliases": {"qwen-2.5-max": "qwen-qwen2-5-max", "qwen-2-5-max": "qwen-qwen2-5-max"},
        "models": ["qwen-qwen2-5-max"],
    }


def test_client_whole_reply_with_history_and_system(g4f: str, replica: Replica) -> None:
    out = drive(g4f, "whole", replica)
    assert out["content"] == '[["u1", "a1"]]'  # the history reached the Space as turns
    assert out["received"]["system"] == "Sys" and out["received"]["outcome"] == "completed"
    assert (out["finish_reason"], out["provider"], out["model"]) == (
        "stop",
        "Qwen_Qwen_2_5_Max",
        "qwen-qwen2-5-max",
    )


def check_chunks(chunks: list[dict[str, Any]]) -> None:
    """One chunk per Space token, then one closing chunk with finish_reason "stop"."""
    assert [c["content"] for c in chunks[:-1]] == TOKENS
    assert all(c["finish_reason"] is None for c in chunks[:-1])
    assert not chunks[-1]["content"] and chunks[-1]["finish_reason"] == "stop"
    assert len({c["id"] for c in chunks}) == 1
    assert {(c["provider"], c["model"]) for c in chunks[:-1]} == {
        ("Qwen_Qwen_2_5_Max", "qwen-qwen2-5-max")
    }


def test_client_streams_one_chunk_per_token(g4f: str, replica: Replica) -> None:
    check_chunks(drive(g4f, "stream", replica)["chunks"])


def test_async_client(g4f: str, replica: Replica) -> None:
    out = drive(g4f, "async_client", replica)
    check_chunks(out["chunks"])
    assert (out["content"], out["finish_reason"]) == ('[["u1", "a1"]]', "stop")
    assert out["received"]["system"] == "Sys"


def test_chat_completion(g4f: str, replica: Replica) -> None:
    out = drive(g4f, "chat_completion", replica)
    assert out["whole"] == '[["u1", "a1"]]'
    assert out["parts"] == [f"t{k} " for k in range(5)]


def test_errors_are_both_ours_and_gpt4frees(g4f: str, replica: Replica) -> None:
    out = drive(g4f, "errors", replica)
    mid = out["mid_stream"]
    assert mid["types"][:2] == ["qwen_gradio.gpt4free.SpaceError", "qwen_gradio.errors.SpaceError"]
    assert "g4f.errors.ResponseError" in mid["types"]
    assert (mid["message"], mid["partial_text"], mid["received"]) == (
        "kaput",
        "w1 w2 ",
        ["w1 ", "w2 "],
    )
    model = out["unknown_model"]
    assert {"qwen_gradio.errors.ModelNotSupportedError", "g4f.errors.ModelNotFoundError"} <= set(
        model["types"]
    )
    assert "gpt-4" in model["message"]
    assert "qwen_gradio.errors.InvalidMessagesError" in out["bad_messages"]["types"]
    assert out["jobs_for_bad_input"] == 0
    timeout = out["timeout"]
    assert {"qwen_gradio.errors.StreamTimeoutError", "g4f.errors.TimeoutError"} <= set(
        timeout["types"]
    )
    early = out["async_before_any_token"]
    assert early["message"] == "kaput" and "g4f.errors.ResponseError" in early["types"]


def test_closing_or_dropping_a_stream_cancels_the_job(g4f: str, replica: Replica) -> None:
    out = drive(g4f, "cancel", replica)
    for how in ("sync", "async"):
        assert out[how]["first"] == "t0 "
        received = out[how]["received"]
        assert_stopped_early(received, 5000)


def test_register_serves_it_by_name(g4f: str, replica: Replica) -> None:
    out = drive(g4f, "registry", replica)
    if "0.5.7" in g4f:  # the seed's generation ships a class of that name: ours replaces it
        assert out["before"] == "g4f.Provider.hf_space.Qwen_Qwen_2_5_Max.Qwen_Qwen_2_5_Max"
    else:
        assert out["before"] is None
    assert out["after_is_ours"] and out["listed"] == 1
    assert out["content"] == "by name"


def test_provider_options_reach_the_space(g4f: str, replica6: Replica) -> None:
    out = drive(g4f, "options", replica6)
    received = out["flatten_received"]
    assert received["query"] == "User: u1\nAssistant: a1\nUser: u2\nAssistant:"
    assert (received["history"], received["system"]) == ([], "Sys")
    assert out["authorization"] == ["Bearer hf_driver_token"] * 3  # config, join, data
    assert out["proxied_content"] == "proxied"
    # The config (the demo has no options: no API info), the join, the event stream; the config
    # is asked alongside the join when an earlier call of the driver left it in the cache.
    paths = [line.split("?")[0].split(" ")[1].rsplit("/", 1)[-1] for line in out["proxy_seen"]]
    assert sorted(paths) == ["config", "data", "join"] and paths[-1] == "data"
    assert all(replica6.url in line for line in out["proxy_seen"])


# -- gpt4free's API server -------------------------------------------------------------------


def offline_g4f_cache(folder: Path) -> Path:
    """g4f 8.x's API server downloads g4f.dev's provider list when it is imported (cached for
    the day under G4F_CACHE_DIR): give it a cached list, naming no real host, so it starts
    offline and contacts nothing."""
    listing = {"providers": {"default": {"baseUrl": "http://127.0.0.1:9/v1"}}, "defaultModels": {}}
    for day in (date.today(), date.today() + timedelta(days=1)):
        path = folder / ".models" / day.isoformat() / "providers.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(listing))
    return folder


@pytest.fixture
def api_server(g4f: str, replica: Replica, tmp_path: Path) -> Iterator[str]:
    """``python -m qwen_gradio.gpt4free --space REPLICA`` (gpt4free's API server), its URL."""
    port = free_port()
    env = {
        **os.environ,
        "G4F_CACHE_DIR": str(offline_g4f_cache(tmp_path / "g4f-cache")),
        "HOME": str(tmp_path),  # g4f keeps cookies and settings under the home folder
        "PYTHONPATH": str(ROOT),
    }
    command = [g4f, "-m", "qwen_gradio.gpt4free", "--port", str(port), "--space", replica.url]
    with ServerProcess(command, env, str(tmp_path)) as server:
        assert "Warning" not in server.startup and "Traceback" not in server.startup
        yield f"http://127.0.0.1:{port}"


def post(url: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)


def sse_chunks(response: httpx.Response, done: bool = True) -> list[Any]:
    """The JSON events of a streamed reply; ``done``: it must end with ``data: [DONE]``."""
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    if done or lines[-1] == "[DONE]":  # g4f 8.8 ends a failed stream at its error event
        assert lines.pop() == "[DONE]"
    return [json.loads(line) for line in lines]


def test_the_api_server_serves_the_provider(api_server: str) -> None:
    messages = [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "/history"},
    ]
    # As the default provider, and by name (which would reach g4f 0.5.7's own class unregistered)
    for extra in ({}, {"provider": "Qwen_Qwen_2_5_Max"}):
        whole = post(api_server, {"model": "qwen-2.5-max", "messages": messages, **extra})
        assert whole.status_code == 200, whole.text
        body = whole.json()
        assert body["choices"][0]["message"]["content"] == '[["u1", "a1"]]'
        assert (body["provider"], body["model"]) == ("Qwen_Qwen_2_5_Max", "qwen-qwen2-5-max")
        streamed = post(
            api_server,
            {
                "model": "qwen-2.5-max",
                "messages": [{"role": "user", "content": "/long 20"}],
                "stream": True,
                **extra,
            },
        )
        chunks = sse_chunks(streamed)
        assert [c["choices"][0]["delta"].get("content") for c in chunks[:-1]] == TOKENS
        assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    providers = httpx.get(f"{api_server}/v1/providers", timeout=10).json()
    ours = [p for p in providers if p["id"] == "Qwen_Qwen_2_5_Max"]
    assert ours == [
        {
            "id": "Qwen_Qwen_2_5_Max",
            "object": "provider",
            "created": 0,
            "url": "https://qwen-qwen2-5-max-demo.hf.space",
            "label": "Qwen Qwen-2.5-Max",
        }
    ]


def test_the_api_server_reports_errors(api_server: str) -> None:
    unknown = post(api_server, {"model": "gpt-9", "messages": [{"role": "user", "content": "x"}]})
    assert unknown.status_code == 404
    assert "ModelNotFoundError" in unknown.text or "ModelNotSupportedError" in unknown.text
    kaput = [{"role": "user", "content": "/error kaput"}]
    failed = post(api_server, {"model": "", "messages": kaput})
    assert failed.status_code == 500
    assert "error" in failed.json()
    streamed = post(
        api_server,
        {"model": "", "stream": True, "messages": [{"role": "user", "content": "/fail 2 kaput"}]},
    )
    chunks = sse_chunks(streamed, done=False)
    assert [c["choices"][0]["delta"].get("content") for c in chunks[:-1]] == ["w1 ", "w2 "]
    assert "error" in chunks[-1]  # the text already sent stays delivered, then the error


def test_the_api_server_refuses_a_bad_space(g4f: str) -> None:
    result = subprocess.run(
        [g4f, "-m", "qwen_gradio.gpt4free", "--space", "not a space"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "space must be a Space id" in result.stderr


def test_without_gpt4free_the_adapter_says_how_to_get_it() -> None:
    code = "import qwen_gradio.gpt4free"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if result.returncode == 0:
        pytest.skip("gpt4free is installed in this environment")
    assert "pip install 'qwen-gradio[g4f]'" in result.stderr


DOCS_EXAMPLES = [
    ("docs/gpt4free.md", "client = Client(provider=", 2),  # whole, then streamed
    ("docs/gpt4free.md", "AsyncClient(provider=", 1),
    ("docs/gpt4free.md", "g4f.ChatCompletion.create", 1),
    ("README.md", "from qwen_gradio.gpt4free import", 1),
]


@pytest.mark.parametrize(("page", "marker", "replies"), DOCS_EXAMPLES)
def test_the_docs_examples(
    g4f: str, replica6: Replica, tmp_path: Path, page: str, marker: str, replies: int
) -> None:
    """The docs' examples of the provider used through gpt4free, run as written."""
    script = tmp_path / "example.py"
    script.write_text(example(page, marker))
    result = subprocess.run(
        [g4f, str(ROOT / "tests" / "g4f_driver.py"), "example", str(script), replica6.url],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        timeout=120,
    )
    assert (result.returncode, result.stderr) == (0, "")
    out = json.loads(result.stdout)
    assert set(out["hosts"]) <= {"127.0.0.1"}
    reply = replica_reply("What is the capital of France?")
    assert out["stdout"] == f"{reply}\n" * replies


def test_a_provider_for_a_family_of_template_spaces(g4f: str, sized_replica: Replica) -> None:
    out = drive(g4f, "family", sized_replica)
    assert out["name"] == "Qwen25"
    assert out["models"] == ["qwen-2.5-72b", "qwen-2.5-7b"]
    assert out["contents"] == {
        "qwen-2.5-7b": '{"model_size": "7B"}',
        "qwen-2.5": '{"model_size": "72B"}',
        "": '{"model_size": "72B"}',
    }
    assert out["unknown_model"] is not None and "qwen-2.5-1b" in out["unknown_model"]


def test_gpt4free_88_hands_tools_to_the_provider(replica6: Replica) -> None:
    """gpt4free 8.8 passes tools to a provider that says it takes them (rather than its own
    emulation, which asks for another JSON shape and buffers the reply): the reply's calls come
    back as gpt4free's tool calls, whole and streamed; ``stop`` is honoured too."""
    python = g4f_python("g4f-8.8")
    out = drive(python, "tools", replica6)
    assert (out["whole"], out["finish_reason"]) == (["get_weather"], "tool_calls")
    assert out["streamed"] == ["get_weather"] and out["stopped"] == "t0 t1 t2 "
