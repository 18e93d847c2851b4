"""Token counts with Qwen's own tokenizer, and the context window: a prompt that cannot fit is
refused before any request, by the library and by every front end on it."""

from __future__ import annotations

import pytest

from qwen_gradio import ContextLengthError, QwenClient, to_conversation
from qwen_gradio.tokens import MAX_INPUT_TOKENS, check_fits, count_conversation, count_text

from .conftest import Replica


def test_qwen_s_tokenizer_counts_as_the_model_does() -> None:
    # Qwen's BPE: common English words are one token each, a CJK phrase a few.
    assert count_text("Hello world") == 2
    assert count_text("") == 0
    assert count_text("<|im_start|>") > 1  # typed by a user, special tokens are text
    # The default system prompt and "hi" in Qwen's ChatML template: 20 tokens.
    assert count_conversation(to_conversation("hi")) == 20
    history = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    longer = to_conversation([*history, {"role": "user", "content": "hi"}])
    assert count_conversation(longer) == 20 + 2 * 6  # each message: its tokens and 5 more


def test_what_fits_is_not_counted_and_what_does_not_is_refused() -> None:
    assert check_fits(to_conversation("short"), MAX_INPUT_TOKENS) is None  # under the bytes
    near = to_conversation("word " * 20_000)  # 100,000 bytes: counted, 20,000 tokens
    assert check_fits(near, MAX_INPUT_TOKENS) == count_conversation(near)
    over = to_conversation("word " * 40_000)
    with pytest.raises(ContextLengthError) as caught:
        check_fits(over, MAX_INPUT_TOKENS)
    error = caught.value
    assert (error.tokens, error.limit) == (count_conversation(over), MAX_INPUT_TOKENS)
    assert (error.code, error.param, error.http_status, error.exit_code) == (
        "context_length_exceeded",
        "messages",
        400,
        2,
    )
    assert check_fits(over, None) is None  # no limit


def test_the_client_refuses_a_prompt_too_long_before_any_request(replica6: Replica) -> None:
    before = len(replica6.requests())
    with (
        QwenClient(replica6.url) as client,
        pytest.raises(ContextLengthError, match="maximum context length is 30720"),
    ):
        client.stream("word " * 40_000)
    with (
        QwenClient(replica6.url, max_input_tokens=100) as client,
        pytest.raises(ContextLengthError, match="is 100 tokens"),
    ):
        client.stream("word " * 200)
    assert len(replica6.requests()) == before  # not even the config was asked
    with QwenClient(replica6.url, max_input_tokens=0) as client:  # 0: no limit
        assert client.chat("/echo sent", system="word " * 40_000) == "sent"


def test_the_cli_says_so_in_one_line(replica6: Replica) -> None:
    from click.testing import CliRunner

    from qwen_gradio.cli import main

    result = CliRunner().invoke(
        main, ["chat", "--space", replica6.url, "--max-input-tokens", "50", "word " * 100]
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("qwen-gradio: ContextLengthError: This model's maximum")
    assert result.stderr.count("\n") == 1 and result.stdout == ""
