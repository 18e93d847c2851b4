"""The documentation's examples run as written, in a fresh process against the replica, and every
example is one that a test runs (the provider's, gpt4free's, serve's and the UI's examples run in
their own test modules: see tests/docs.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, Replica, shared_replica
from .docs import EXAMPLES, PAGES, example, page_text, python_blocks
from .helpers import replica_reply

REPLY = replica_reply("")
WORKING = "The Space is working on your message…"
ITALY = f"{REPLY}And of Italy?"


def test_every_example_is_run_by_a_test() -> None:
    for path in PAGES:
        page = str(path.relative_to(ROOT))
        markers = [m for p, m in EXAMPLES if p == page]
        for block in python_blocks(page):
            named = [m for m in markers if m in block]
            assert len(named) == 1, f"an example of {page} is named by {named}:\n{block}"
        for marker in markers:
            assert sum(marker in b for b in python_blocks(page)) == 1, (page, marker)


def run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "example.py"
    script.write_text(code)
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        timeout=60,
    )


@pytest.mark.parametrize(
    ("page", "marker", "expected"),
    [
        ("README.md", 'system="Be brief."', f"{REPLY}What is the capital of France?"),
        ("README.md", "await client.achat(messages)", f"{REPLY}And of Italy?\n"),
        ("docs/python.md", "print(stream.text)", f"{ITALY}\n{ITALY}{ITALY}\n"),
        ("docs/python.md", "async def main", f"{REPLY}Tell me a joke.{REPLY}And another.\n"),
        ("docs/python.md", "ReplyCompleted, TextDelta", f"{WORKING}\n{REPLY}Hello\n"),
        ("docs/python.md", "Timeouts(connect=10", ""),
        ("docs/python.md", 'QwenClient().chat("Hello")', ""),  # prints only on an error
        ("docs/python.md", "Settings.build(", "SPACE 60\n"),
        ("docs/python.md", "max_input_tokens=100", "1020 tokens, over 100\n"),
    ],
)
def test_library_examples(
    replica6: Replica, tmp_path: Path, page: str, marker: str, expected: str
) -> None:
    result = run(example(page, marker), tmp_path, QWEN_GRADIO_SPACE=replica6.url)
    assert (result.returncode, result.stderr) == (0, "")
    # The queue position shows only if the Space reports one before it starts the job.
    lines = result.stdout.splitlines(keepends=True)
    out = "".join(line for line in lines if not line.startswith("Waiting in the Space's queue"))
    assert out == expected.replace("SPACE", replica6.url + "/")


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        (
            "client.chat_options()",
            "model_size (radio \"Model size\"): 72B, 32B, 14B, 7B; default '72B'\n"
            "This is the offline replica of Qwen2.5-Max (32B). You said: Hello\n"
            "This is the offline replica of Qwen2.5-Max (7B). You said: Hello\n",
        ),
        ("class Qwen25", "This is the offline replica of Qwen2.5-Max (7B). You said: Hello\n"),
    ],
)
def test_options_examples(tmp_path: Path, marker: str, expected: str) -> None:
    """The options examples, with the Qwen2.5 demo replaced by the replica of its layout."""
    sized = shared_replica("gradio6", "qwen2.5")
    code = example("docs/python.md", marker)
    assert '"Qwen/Qwen2.5"' in code
    result = run(code.replace('"Qwen/Qwen2.5"', repr(sized.url)), tmp_path)
    assert (result.returncode, result.stderr, result.stdout) == (0, "", expected)


def test_the_docs_build_strictly(tmp_path: Path) -> None:
    """mkdocs builds the site with no warning (a broken link or anchor fails), and the command
    line reference is generated from the commands themselves."""
    pytest.importorskip("mkdocs_click")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    reference = (tmp_path / "site" / "cli" / "index.html").read_text()
    for flag in ("--no-cache", "--transport", "--keepalive", "--concurrency"):
        assert flag in reference


def test_the_exit_code_table_is_the_error_classes_own() -> None:
    """docs/cli.md's table names each error class with the exit code the class carries."""
    import re

    import qwen_gradio

    rows = re.findall(r"^\| (\d+) \| .*\(`(\w+Error)`\) \|$", page_text("docs/cli.md"), re.M)
    assert len(rows) == 5
    for code, name in rows:
        assert getattr(qwen_gradio, name).exit_code == int(code), name


def test_the_pool_example(replica6: Replica, tmp_path: Path) -> None:
    """The pool example, its first Space one that is gone and the others two replicas."""
    from .helpers import free_port

    dead, other = f"http://127.0.0.1:{free_port()}", shared_replica("gradio6").url
    code = example("docs/python.md", "Retrying, Space")
    for name, url in (
        ('"Qwen/Qwen2.5-Max-Demo"', repr(dead)),
        ('"you/your-duplicate"', repr(replica6.url)),
        ('"you/private-copy"', repr(other)),
    ):
        assert name in code
        code = code.replace(name, url)
    result = run(code, tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"( unavailable on {dead}; trying {replica6.url} in 0.0 s )\n"
        f"{REPLY}Hello | from {replica6.url} after 2 attempts\n"
    )
