"""Space ids and URLs, and reading the chat endpoint from a Space's config."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qwen_gradio import ChatFormat, resolve_space_url
from qwen_gradio.space import ChatEndpoint, assistant_text, encode_history


def test_space_id_maps_to_its_subdomain() -> None:
    assert resolve_space_url("Qwen/Qwen2.5-Max-Demo") == "https://qwen-qwen2-5-max-demo.hf.space/"
    assert resolve_space_url("me/My_Space") == "https://me-my-space.hf.space/"


def test_urls_pass_through_and_the_env_var_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_space_url("http://127.0.0.1:7860") == "http://127.0.0.1:7860/"
    monkeypatch.setenv("QWEN_GRADIO_SPACE", "a/b")
    assert resolve_space_url() == "https://a-b.hf.space/"
    monkeypatch.delenv("QWEN_GRADIO_SPACE")
    assert resolve_space_url() == "https://qwen-qwen2-5-max-demo.hf.space/"


@pytest.mark.parametrize("bad", ["no-slash", "a/b/c", "ftp://x", "/x"])
def test_bad_space_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        resolve_space_url(bad)


def config(version: str, chatbot_props: dict[str, object]) -> dict[str, object]:
    return {
        "version": version,
        "protocol": "sse_v3",
        "api_prefix": "/gradio_api",
        "components": [
            {"id": 8, "type": "textbox", "props": {}},
            {"id": 10, "type": "chatbot", "props": chatbot_props},
            {"id": 11, "type": "textbox", "props": {}},
            {"id": 4, "type": "textbox", "props": {}},
        ],
        "dependencies": [
            {
                "id": 0,
                "api_name": "model_chat",
                "targets": [[11, "submit"]],
                "inputs": [11, 10, 8],
                "outputs": [11, 10, 4],
            },
        ],
    }


@pytest.mark.parametrize(
    ("version", "props", "expected"),
    [
        ("5.13.1", {"type": "tuples"}, ChatFormat.TUPLES),
        ("5.13.1", {"type": "messages"}, ChatFormat.MESSAGES),
        ("6.31.0", {}, ChatFormat.MESSAGE_PARTS),
    ],
)
def test_chat_format_comes_from_the_config(
    version: str, props: dict[str, object], expected: ChatFormat
) -> None:
    endpoint = ChatEndpoint.from_config(config(version, props))
    assert endpoint.chat_format is expected
    assert (endpoint.fn_index, endpoint.trigger_id, endpoint.chatbot_output) == (0, 11, 1)
    assert endpoint.api_prefix == "gradio_api/"


def test_a_space_without_the_chat_endpoint_is_refused() -> None:
    cfg = config("5.13.1", {})
    cfg["dependencies"][0]["api_name"] = "predict"  # type: ignore[index]
    with pytest.raises(ValueError, match="model_chat"):
        ChatEndpoint.from_config(cfg)


def test_history_encodings() -> None:
    history = ((None, "hello"), ("u", "a"))
    assert encode_history(history, ChatFormat.TUPLES) == [[None, "hello"], ["u", "a"]]
    assert encode_history(history, ChatFormat.MESSAGES) == [
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": "a"},
    ]
    assert encode_history(history, ChatFormat.MESSAGE_PARTS)[1] == {
        "role": "user",
        "content": [{"type": "text", "text": "u"}],
    }


def test_assistant_text_in_every_format() -> None:
    assert assistant_text([["q", "a"]]) == "a"
    assert assistant_text([["q", None]]) == ""
    assert assistant_text([{"role": "user", "content": "q"}]) == ""
    assert (
        assistant_text(
            [
                {"role": "user", "content": "q"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "text", "text": "a"},
                        {"type": "file", "file": {}},
                        {"type": "text", "text": "b"},
                    ],
                },
            ]
        )
        == "ab"
    )


def test_import_does_not_load_gradio() -> None:
    code = "import sys, qwen_gradio; print('gradio' in sys.modules, 'gradio_client' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
