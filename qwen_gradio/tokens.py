"""Token counts with Qwen's own tokenizer (``pip install 'qwen-gradio[tokens]'``; ``serve``
brings it): how long a conversation is for the model, and whether it fits its context window.

The vocabulary is Qwen's BPE (151,643 tokens, ``qwen.tiktoken``) as shipped inside Alibaba
Cloud's own SDK, ``dashscope``, whose ``get_tokenizer("qwen-max")`` maps Qwen2.5-Max to it; it is
read from that package's files (nothing is downloaded, and dashscope itself is never imported)
and run by ``tiktoken``. A conversation counts as the model sees it, in Qwen's ChatML template:
``<|im_start|>{role}\\n{content}<|im_end|>\\n`` per message, then ``<|im_start|>assistant\\n``.

Qwen2.5-Max (Model Studio's ``qwen-max-2025-01-25``) takes 32,768 tokens of context, at most
30,720 of them input and 8,192 output: ``MAX_INPUT_TOKENS``. A client refuses a longer prompt
before any request (``ContextLengthError``, OpenAI's ``context_length_exceeded``); a prompt of
fewer UTF-8 bytes than the limit always fits (a token is at least one byte) and is not counted.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import threading
from pathlib import Path
from typing import Any

from ._core.messages import Conversation
from .errors import ContextLengthError

__all__ = [
    "MAX_INPUT_TOKENS",
    "TokenizerUnavailable",
    "Usage",
    "check_fits",
    "count_conversation",
    "count_text",
    "first_tokens",
    "load_tokenizer",
    "tokenizer_installed",
    "usage_of",
]

MAX_INPUT_TOKENS = 30_720  # Qwen2.5-Max's input limit (of a 32,768-token context)
# Qwen's pre-tokenizer (the same in dashscope's QwenTokenizer and Qwen2's tokenizer.json).
PAT_STR = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)
SPECIAL_START = 151_643
SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
TEMPLATE_TOKENS_PER_MESSAGE = 3  # <|im_start|>, <|im_end|>, the "\n" after it

_lock = threading.Lock()
_encoding: Any = None


class Usage:
    """A reply's token counts, OpenAI's ``usage``: the prompt as the model sees it (in Qwen's
    chat template, the template's own tokens included) and the reply's text (the end-of-turn
    token the model emits after it not included).

    A reply's usage is counted when it is first read, not before: a process that never reads
    one never loads the tokenizer (the first count loads it, ~0.5 s once per process; a server
    calls ``load_tokenizer()`` at startup instead)."""

    __slots__ = ("_counts", "_source")

    def __init__(self, prompt_tokens: int, completion_tokens: int) -> None:
        self._counts: tuple[int, int] | None = (prompt_tokens, completion_tokens)
        self._source: tuple[Conversation, str] | None = None

    @classmethod
    def of(cls, conversation: Conversation, reply: str) -> Usage:
        """The usage of ``reply`` to ``conversation``, counted when first read."""
        usage = cls(0, 0)
        usage._counts, usage._source = None, (conversation, reply)
        return usage

    def _counted(self) -> tuple[int, int]:
        if self._counts is None:
            assert self._source is not None
            conversation, reply = self._source
            self._counts = (count_conversation(conversation), count_text(reply))
            self._source = None
        return self._counts

    @property
    def prompt_tokens(self) -> int:
        return self._counted()[0]

    @property
    def completion_tokens(self) -> int:
        return self._counted()[1]

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        """OpenAI's ``usage`` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Usage):
            return NotImplemented
        return self._counted() == other._counted()

    def __hash__(self) -> int:
        return hash(self._counted())

    def __repr__(self) -> str:
        if self._counts is None:
            return "Usage(<counted when read>)"
        return f"Usage(prompt_tokens={self._counts[0]}, completion_tokens={self._counts[1]})"


class TokenizerUnavailable(RuntimeError):
    """Qwen's tokenizer is not installed: ``pip install 'qwen-gradio[tokens]'``."""


def vocabulary_path() -> Path:
    """Where dashscope's copy of Qwen's vocabulary is, found without importing dashscope."""
    spec = importlib.util.find_spec("dashscope")
    if spec is None or not spec.submodule_search_locations:
        raise TokenizerUnavailable(
            "Qwen's tokenizer needs dashscope and tiktoken: pip install 'qwen-gradio[tokens]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "resources" / "qwen.tiktoken"
    if not path.is_file():
        raise TokenizerUnavailable(f"dashscope no longer ships {path.name}: {path}")
    return path


def _load() -> Any:
    global _encoding
    with _lock:
        if _encoding is None:
            try:
                import tiktoken
            except ImportError:
                raise TokenizerUnavailable(
                    "Qwen's tokenizer needs tiktoken: pip install 'qwen-gradio[tokens]'"
                ) from None
            ranks = {
                base64.b64decode(token): int(rank)
                for token, rank in (
                    line.split() for line in vocabulary_path().read_bytes().splitlines() if line
                )
            }
            specials = {name: SPECIAL_START + k for k, name in enumerate(SPECIALS)}
            _encoding = tiktoken.Encoding(
                name="qwen", pat_str=PAT_STR, mergeable_ranks=ranks, special_tokens=specials
            )
        return _encoding


def usage_of(conversation: Conversation, reply: str) -> Usage | None:
    """The token counts of ``reply`` to ``conversation``, counted when first read; None
    without the tokenizer."""
    return Usage.of(conversation, reply) if tokenizer_installed() else None


@functools.cache
def tokenizer_installed() -> bool:
    """Whether Qwen's tokenizer is installed (asked of the import system: nothing is loaded)."""
    try:
        vocabulary_path()
    except TokenizerUnavailable:
        return False
    return importlib.util.find_spec("tiktoken") is not None


def load_tokenizer() -> bool:
    """Load Qwen's tokenizer now (~0.5 s, once per process), so that no count waits for it;
    whether it could be loaded here."""
    try:
        _load()
    except TokenizerUnavailable:
        return False
    return True


def count_text(text: str) -> int:
    """The tokens of ``text`` (special tokens in it count as text, as a chat sends them)."""
    return len(_load().encode_ordinary(text))


def first_tokens(text: str, limit: int) -> str:
    """The text of ``text``'s first ``limit`` tokens (a token cut inside a character is left
    out whole)."""
    encoding = _load()
    data: bytes = encoding.decode_bytes(encoding.encode_ordinary(text)[:limit])
    return data.decode("utf-8", errors="ignore")


def _messages(conversation: Conversation) -> list[tuple[str, str]]:
    turns = [("system", conversation.system)]
    for user, assistant in conversation.history:
        if user is not None:
            turns.append(("user", user))
        if assistant is not None:
            turns.append(("assistant", assistant))
    return [*turns, ("user", conversation.query)]


def count_conversation(conversation: Conversation) -> int:
    """The prompt tokens of ``conversation`` in Qwen's chat template, up to the reply."""
    encoding = _load()
    total = len(encoding.encode_ordinary("assistant\n")) + 1  # the reply's own <|im_start|>
    for role, content in _messages(conversation):
        total += TEMPLATE_TOKENS_PER_MESSAGE + len(encoding.encode_ordinary(f"{role}\n{content}"))
    return total


def check_fits(conversation: Conversation, limit: int | None) -> int | None:
    """Raise ContextLengthError if ``conversation`` is longer than ``limit`` tokens (None or 0:
    no limit). Returns its count when it had to be counted, else None. Without the tokenizer,
    nothing is refused."""
    if not limit:
        return None
    size = sum(len(content.encode("utf-8")) for _, content in _messages(conversation))
    messages = len(conversation.history) * 2 + 2
    if size + messages * 8 <= limit:  # a token is at least one byte: it fits
        return None
    try:
        count = count_conversation(conversation)
    except TokenizerUnavailable:
        return None
    if count > limit:
        raise ContextLengthError(
            f"This model's maximum context length is {limit} tokens of input. However, your"
            f" messages resulted in {count} tokens. Please reduce the length of the messages.",
            tokens=count,
            limit=limit,
        )
    return count
