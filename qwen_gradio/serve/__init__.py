"""An OpenAI-compatible HTTP API over the Space: ``qwen-gradio serve``, or any ASGI server with
``qwen_gradio.serve:app`` (``pip install 'qwen-gradio[serve]'``).

- ``GET /v1/models``: the provider's model and its aliases; ``GET /health``: liveness.
- ``POST /v1/responses``: OpenAI's Responses API, whole and streamed (``serve.responses``).
- ``POST /v1/chat/completions``: OpenAI's request, and exactly the shapes OpenAI clients parse:
  a ``chat.completion`` object, or with ``"stream": true`` an event stream of
  ``chat.completion.chunk`` objects (a first chunk with the role, one chunk per Space delta, a
  last one with ``finish_reason: "stop"``, then ``data: [DONE]``), one ``id`` per reply. An
  ``"options"`` object (OpenAI SDKs: ``extra_body={"options": {...}}``) sets the Space's extra
  chat inputs for that reply, such as the Qwen2.5 demo's ``model_size``.

The conversation reaches the Space as real history and system prompt (qwen_gradio's message
rules). Bad input is refused with OpenAI's error JSON (400, 404, 413) before any job is sent
(``serve.schema``: the body under a size limit, its fields checked by a pydantic
schema). Space errors before the first token are HTTP errors (429 with ``Retry-After``, 503,
504, 502); after it, an error event in the shape OpenAI's SDKs raise on. While a streamed
request waits in the Space's queue, comment lines keep the connection alive; a client that goes
away cancels the job. Beyond ``max_replies`` replies at once, a request gets a 503 at once.
Every response carries an ``x-request-id``, and each request is one line of the access log
(``serve.deployment``, which also drains the server on a signal). CORS is off unless origins
are allowed. Several processes (``--workers``, or servers on several machines) share one state
(``Settings.state``: stored responses, key limits, each Space's load and cooldown).
"""

from __future__ import annotations

from typing import Any

from ..settings import Settings
from .api import API_KEY_ENV, MAX_REPLIES, ServeOptions, create_app
from .replies import SPACE_HEADER
from .schema import MAX_BODY

__all__ = [
    "API_KEY_ENV",
    "MAX_BODY",
    "MAX_REPLIES",
    "SPACE_HEADER",
    "ServeOptions",
    "create_app",
]


def __getattr__(name: str) -> Any:
    """``qwen_gradio.serve:app`` for ASGI servers (``uvicorn qwen_gradio.serve:app --workers 4``),
    configured from the environment: the client's settings (``QWEN_GRADIO_SPACE``, ``HF_TOKEN``,
    ``QWEN_GRADIO_MAX_INPUT_TOKENS``...) and the server's (``ServeOptions.from_environment``)."""
    if name == "app":
        app = create_app(Settings.build(), ServeOptions.from_environment())
        globals()["app"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
