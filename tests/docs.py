"""The documentation's examples, found where they are written, so tests run them as written.

Every ``python`` block of README.md, CONTRIBUTING.md and docs/*.md is listed in ``EXAMPLES`` by a
marker (a string only it contains), with the test that runs it; ``test_docs.py`` fails on a block
that no entry names, so a new example cannot go untested."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]

#: (page, marker) -> the test module that runs that example.
EXAMPLES: dict[tuple[str, str], str] = {
    ("README.md", 'system="Be brief."'): "test_docs",
    ("README.md", "await client.achat(messages)"): "test_docs",
    ("README.md", "from qwen_gradio.gpt4free import"): "test_gpt4free",
    ("docs/python.md", "print(stream.text)"): "test_docs",
    ("docs/python.md", "async def main"): "test_docs",
    ("docs/python.md", "ReplyCompleted, TextDelta"): "test_docs",
    ("docs/python.md", "Timeouts(connect=10"): "test_docs",
    ("docs/python.md", 'QwenClient().chat("Hello")'): "test_docs, test_faults",
    ("docs/python.md", "Settings.build("): "test_docs",
    ("docs/python.md", "client.chat_options()"): "test_docs",
    ("docs/python.md", "Retrying, Space"): "test_docs",
    ("docs/python.md", "class Qwen25"): "test_docs",
    ("docs/python.md", "max_input_tokens=100"): "test_docs",
    ("docs/serve.md", "stream = client.chat.completions.create("): "test_serve",
    ("docs/serve.md", "client.responses.create("): "test_responses",
    ("docs/ui.md", 'api_name="/chat"'): "test_ui",
    ("docs/tools.md", "with QwenClient() as client:"): "test_tools",
    ("docs/tools.md", "client = OpenAI(base_url="): "test_serve_tools",
    ("docs/llm.md", 'llm.get_model("qwen2.5-max")'): "test_llm",
    ("docs/gpt4free.md", "create_async_generator(\n        model="): "test_provider",
    ("docs/gpt4free.md", '"You are a helpful assistant."'): "test_provider",
    ("docs/gpt4free.md", "from qwen_gradio.typing import Messages"): "test_provider",
    ("docs/gpt4free.md", "client = Client(provider="): "test_gpt4free",
    ("docs/gpt4free.md", "AsyncClient(provider="): "test_gpt4free",
    ("docs/gpt4free.md", "g4f.ChatCompletion.create"): "test_gpt4free",
}


def page_text(page: str) -> str:
    return (ROOT / page).read_text(encoding="utf-8")


def python_blocks(page: str) -> list[str]:
    """The ``python`` code blocks of ``page`` (a path from the repository's root), in order."""
    return re.findall(r"```python\n(.*?)```", page_text(page), re.DOTALL)


def example(page: str, marker: str) -> str:
    """The one example of ``page`` that contains ``marker`` (which EXAMPLES must list)."""
    assert (page, marker) in EXAMPLES, f"list ({page!r}, {marker!r}) in tests/docs.py"
    (block,) = [block for block in python_blocks(page) if marker in block]
    return block
