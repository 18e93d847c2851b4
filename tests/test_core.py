"""The core's own rules: settings built in one place, errors that carry their policy, one sync
bridge whose events match the async stream's, and closable iterators."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import httpx
import pytest

from qwen_gradio import (
    InvalidMessagesError,
    InvalidOptionError,
    InvalidSpaceError,
    ModelNotSupportedError,
    QueueFullError,
    QwenClient,
    QwenGradioError,
    RateLimitedError,
    Settings,
    SpaceError,
    SpaceUnavailableError,
    StreamTimeoutError,
    Timeouts,
)
from qwen_gradio._transports.http import status_error
from qwen_gradio.settings import SETTING_NAMES, SettingsArguments

from .conftest import Replica

# -- settings ---------------------------------------------------------------------------------


def test_settings_come_from_arguments_then_the_environment_then_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("QWEN_GRADIO_SPACE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("QWEN_GRADIO_NO_CACHE", raising=False)
    default = Settings.build()
    assert default.space_url == "https://qwen-qwen2-5-max-demo.hf.space/"
    assert (default.hf_token, default.transport, default.cache) == (None, "auto", True)
    assert default.timeouts == Timeouts()
    monkeypatch.setenv("QWEN_GRADIO_SPACE", "you/dup")
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    monkeypatch.setenv("QWEN_GRADIO_NO_CACHE", "1")
    from_env = Settings.build()
    assert (from_env.space_url, from_env.hf_token, from_env.cache) == (
        "https://you-dup.hf.space/",
        "hf_env",
        False,
    )
    given = Settings.build("http://127.0.0.1:1", hf_token="hf_arg", cache=True, timeout=5)
    assert (given.space_url, given.hf_token, given.cache) == ("http://127.0.0.1:1/", "hf_arg", True)
    assert given.timeouts.total == 5.0
    assert "hf_arg" not in repr(given)  # a token is never printed


def test_settings_are_frozen_and_checked() -> None:
    settings = Settings.build("http://127.0.0.1:1", options={"model_size": "7B"})
    with pytest.raises(AttributeError):
        settings.proxy = "http://elsewhere"  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.options["model_size"] = "72B"  # type: ignore[index]
    assert settings.replace(options={}) != settings
    assert hash(settings.replace(options={})) == hash(settings)  # usable as a cache key
    with pytest.raises(ValueError, match="transport must be one of"):
        Settings.build(transport="carrier-pigeon")
    with pytest.raises(InvalidSpaceError):
        Settings.build("not a space")
    with pytest.raises(InvalidOptionError):
        Settings.build(options=["model_size"])  # type: ignore[arg-type]


def test_a_client_takes_settings_whole_or_as_arguments() -> None:
    settings = Settings.build("http://127.0.0.1:1", timeout=3)
    with QwenClient(settings=settings) as client:
        assert client.settings is settings and client.timeouts.total == 3.0
    with pytest.raises(TypeError, match="not both"):
        QwenClient("http://127.0.0.1:1", settings=settings)
    for name in SettingsArguments.__annotations__:  # any of them: none is dropped silently
        with pytest.raises(TypeError, match="not both"):
            QwenClient(settings=settings, **{name: False})  # type: ignore[misc]
    with pytest.raises(TypeError, match="not a setting: colour"):
        QwenClient("http://127.0.0.1:1", colour="blue")  # type: ignore[call-arg]


def test_every_front_end_takes_the_settings_from_the_one_list() -> None:
    """``SettingsArguments`` is the one list: ``Settings.build`` resolves each of its names, the
    CLI has a flag for each, the llm plugin's options are some of them."""
    from qwen_gradio import settings as module
    from qwen_gradio.cli import SETTINGS_FLAGS

    assert set(module._RESOLVE) == set(SettingsArguments.__annotations__)
    assert ("space", *SettingsArguments.__annotations__) == SETTING_NAMES
    assert {"cache" if f == "no_cache" else f for f in SETTINGS_FLAGS} == set(SETTING_NAMES)
    llm_plugin = pytest.importorskip("qwen_gradio.llm_plugin")
    assert set(llm_plugin.SETTINGS_OPTIONS) <= set(SETTING_NAMES)


# -- errors carry their policy -------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "retryable", "status", "exit_code", "code"),
    [
        (SpaceUnavailableError("x"), True, 503, 3, "space_unavailable"),
        (SpaceError("x"), False, 502, 4, "SpaceError"),
        (QueueFullError("x"), True, 503, 5, "queue_full"),
        (RateLimitedError("x"), True, 429, 6, "rate_limited"),
        (StreamTimeoutError("x", kind="idle"), False, 504, 7, "timeout_idle"),
        (InvalidMessagesError("x"), False, 400, 2, None),
        (InvalidOptionError("x"), False, 400, 2, None),
        (ModelNotSupportedError("x"), False, 404, 2, "model_not_found"),
        (QwenGradioError("x"), False, 502, 1, "QwenGradioError"),
    ],
)
def test_each_error_carries_its_policy(
    error: QwenGradioError, retryable: bool, status: int, exit_code: int, code: str | None
) -> None:
    assert (error.retryable, error.http_status, error.exit_code, error.code) == (
        retryable,
        status,
        exit_code,
        code,
    )


def test_retry_after_comes_from_the_header_or_the_message() -> None:
    request = httpx.Request("POST", "http://space/queue/join")
    limited = httpx.Response(429, headers={"Retry-After": "7"}, json={}, request=request)
    error = status_error(limited, "refused")
    assert isinstance(error, RateLimitedError) and error.retry_after == 7.0
    worded = httpx.Response(429, json={"detail": "retry in 0:01:23"}, request=request)
    assert status_error(worded, "refused").retry_after == 83.0
    dated = httpx.Response(
        429, headers={"Retry-After": "Wed, 21 Oct 2026 07:28:00 GMT"}, request=request
    )
    assert status_error(dated, "refused").retry_after is None
    full = httpx.Response(503, headers={"Retry-After": "2"}, json={"detail": "queue is full"})
    error = status_error(full, "refused")
    assert isinstance(error, QueueFullError) and error.retry_after == 2.0


# -- one sync bridge: the same events as the async stream ---------------------------------

SCENARIOS = ["/echo a b", "/long 30", "/rewrite", "/fail 3 broke", "/history"]


def _outcome(events: list[Any], error: BaseException | None, text: str) -> dict[str, Any]:
    return {
        "events": [
            (type(e).__name__, getattr(e, "delta", None), getattr(e, "text", None))
            for e in events
            if type(e).__name__ != "QueueStatus"
        ],
        "error": None if error is None else (type(error).__name__, str(error)),
        "partial": getattr(error, "partial_text", None),
        "text": text,
    }


def sync_outcome(client: QwenClient, prompt: str) -> dict[str, Any]:
    events: list[Any] = []
    error = None
    with client.stream(prompt) as stream:
        try:
            for event in stream.events():
                events.append(event)
        except QwenGradioError as exc:
            error = exc
        return _outcome(events, error, stream.text)


async def async_outcome(client: QwenClient, prompt: str) -> dict[str, Any]:
    events: list[Any] = []
    error = None
    async with client.astream(prompt) as stream:
        try:
            async for event in stream.events():
                events.append(event)
        except QwenGradioError as exc:
            error = exc
        return _outcome(events, error, stream.text)


@pytest.mark.parametrize("prompt", SCENARIOS)
async def test_sync_and_async_streams_give_the_same_events(replica6: Replica, prompt: str) -> None:
    with QwenClient(replica6.url) as client:
        sync = sync_outcome(client, prompt)
    async with QwenClient(replica6.url) as client:
        asynchronous = await async_outcome(client, prompt)
    assert sync == asynchronous
    assert sync["events"], sync  # something streamed


def test_closing_the_sync_events_iterator_closes_the_stream(replica6: Replica) -> None:
    """``ev = stream.events(); next(ev); ev.close()`` stops the job on the Space."""
    run = replica6.next_run()
    with QwenClient(replica6.url) as client:
        stream = client.stream("/long 5000")
        events = stream.events()
        next(event for event in events if type(event).__name__ == "TextDelta")
        events.close()
        with pytest.raises(Exception, match="closed"):
            next(events)
        assert replica6.wait(run)["outcome"] == "stopped"


def test_a_failed_cancellation_is_logged_not_printed(
    replica6: Replica, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    """Background failures go to the ``qwen_gradio`` logger (a NullHandler: silent unless the
    application configures logging), never to the console."""
    logger = logging.getLogger("qwen_gradio")
    assert any(isinstance(h, logging.NullHandler) for h in logger.handlers)
    with QwenClient(replica6.url) as client:
        gone = dataclasses.replace(client.connect(), url="http://127.0.0.1:9/")  # nothing there
        with caplog.at_level(logging.DEBUG, logger="qwen_gradio"):
            client._cancel_in_background(gone, "s" * 12, "e1", started=True).result()
    assert any("cancelling e1" in r.getMessage() for r in caplog.records), caplog.records
    assert capfd.readouterr() == ("", "")
