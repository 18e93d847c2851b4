"""README examples of the library itself, run as written in a fresh process against the replica
(the provider's and gpt4free's have their own in test_provider.py and test_gpt4free.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, Replica

REPLY = "This is the offline replica of Qwen2.5-Max. You said: Hello"


def example(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    return next(block for block in blocks if marker in block)


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ("stream.events()", f"The Space is working on your message…\n{REPLY}\n"),
        ('QwenClient().chat("Hello")', ""),  # the errors example prints only on an error
    ],
)
def test_readme_example(replica6: Replica, tmp_path: Path, marker: str, expected: str) -> None:
    script = tmp_path / "example.py"
    script.write_text(example(marker))
    env = {**os.environ, "QWEN_GRADIO_SPACE": replica6.url, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.endswith(expected)
    assert expected or result.stdout == ""  # an example that prints nothing printed nothing


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
def test_readme_options_examples(tmp_path: Path, marker: str, expected: str) -> None:
    """The options examples, with the Qwen2.5 demo replaced by the replica of its layout."""
    from .conftest import shared_replica

    sized = shared_replica("gradio6", "qwen2.5")
    script = tmp_path / "example.py"
    code = example(marker)
    assert '"Qwen/Qwen2.5"' in code
    script.write_text(code.replace('"Qwen/Qwen2.5"', repr(sized.url)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=60
    )
    assert (result.returncode, result.stderr, result.stdout) == (0, "", expected)
