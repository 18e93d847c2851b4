"""Space ids and URLs, and reading the chat endpoint from a Space's config."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from qwen_gradio import ChatFormat, InvalidMessagesError, resolve_space_url, to_conversation
from qwen_gradio._core.space import ChatEndpoint, assistant_text, encode_history
from qwen_gradio.errors import InvalidOptionError


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


def test_a_space_without_a_chat_event_is_refused() -> None:
    cfg = config("5.13.1", {})
    cfg["dependencies"][0]["api_name"] = "predict"  # type: ignore[index]
    cfg["dependencies"][0]["outputs"] = [11, 4]  # type: ignore[index]
    with pytest.raises(ValueError, match="model_chat"):
        ChatEndpoint.from_config(cfg)


def sized_config(version: str = "5.13.1") -> dict[str, Any]:
    """The Qwen2.5 demo's layout: the chat event after three others, a model-size radio, a
    slider and a checkbox as extra inputs (only the radio is on the real Space)."""
    cfg: dict[str, Any] = config(version, {})
    cfg["components"] += [
        {
            "id": 15,
            "type": "radio",
            "props": {
                "label": "Model size",
                "value": "72B",
                "choices": [["72B", "72B"], ["7B", "7B"]],
            },
        },
        {
            "id": 16,
            "type": "slider",
            "props": {"label": "Temperature", "value": 0.7, "minimum": 0, "maximum": 2},
        },
        {"id": 17, "type": "checkbox", "props": {"label": "Search", "value": False}},
    ]
    chat = cfg["dependencies"][0]
    chat.update(id=3, inputs=[11, 10, 8, 15, 16, 17], api_name="model_chat")
    others = [
        {"id": k, "api_name": f"other_{k}", "targets": [], "inputs": [], "outputs": [10]}
        for k in range(3)
    ]
    cfg["dependencies"] = [*others, chat]
    return cfg


def sized_info() -> dict[str, Any]:
    names = ["query", "history", "system", "model_size", "temperature", "search"]
    return {
        "named_endpoints": {"/model_chat": {"parameters": [{"parameter_name": n} for n in names]}}
    }


def test_extra_inputs_become_options_named_by_the_api_info() -> None:
    endpoint = ChatEndpoint.from_config(sized_config(), sized_info())
    assert endpoint.fn_index == 3
    assert [(o.name, o.component, o.position, o.default) for o in endpoint.options] == [
        ("model_size", "radio", 3, "72B"),
        ("temperature", "slider", 4, 0.7),
        ("search", "checkbox", 5, False),
    ]
    conversation = to_conversation("hi", system="be brief")
    assert endpoint.inputs(conversation) == ["hi", [], "be brief", "72B", 0.7, False]
    given = {"Model size": "7B", "temperature": "1.5", "SEARCH": "true"}
    assert endpoint.inputs(conversation, given)[3:] == ["7B", 1.5, True]


def test_without_api_info_options_are_named_after_their_labels() -> None:
    endpoint = ChatEndpoint.from_config(sized_config())
    assert [o.name for o in endpoint.options] == ["model_size", "temperature", "search"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model_size": "1B"}, "'1B' is not a value of the Space's option 'model_size'.*72B, 7B"),
        ({"temperature": 3}, "temperature.*0 to 2"),
        ({"temperature": "warm"}, "temperature.*0 to 2"),
        ({"search": "maybe"}, "true or false"),
        ({"size": "7B"}, "no option 'size'; its options: model_size \\(radio"),
    ],
)
def test_a_wrong_option_names_the_allowed_values(options: dict[str, Any], message: str) -> None:
    endpoint = ChatEndpoint.from_config(sized_config(), sized_info())
    with pytest.raises(InvalidOptionError, match=message):
        endpoint.inputs(to_conversation("hi"), options)


def test_the_template_has_no_options() -> None:
    endpoint = ChatEndpoint.from_config(config("5.13.1", {}))
    assert endpoint.options == ()
    with pytest.raises(InvalidOptionError, match="its options: none"):
        endpoint.option_values({"model_size": "72B"})


def test_a_space_without_a_system_box_refuses_a_system_prompt() -> None:
    cfg = config("5.13.1", {})
    cfg["dependencies"][0]["inputs"] = [11, 10]  # type: ignore[index]
    endpoint = ChatEndpoint.from_config(cfg)
    assert endpoint.system_input is None
    assert endpoint.inputs(to_conversation("hi")) == ["hi", []]
    with pytest.raises(InvalidMessagesError, match="no system prompt"):
        endpoint.inputs(to_conversation("hi", system="be brief"))


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
