"""OpenAI's shapes for ``serve``: its error JSON (``ApiError``), the request body read under a
size limit, and the chat-completions request as a pydantic model.

Types are checked as OpenAI checks them: a string where a number belongs is refused, not coerced
(pydantic's strict mode); fields OpenAI defines that the Space cannot honour are refused when
they would change the reply (``REFUSED_CHAT_FIELDS``), accepted and ignored otherwise
(``temperature``, ``max_tokens``...); fields OpenAI does not define are ignored, as vLLM does.
The messages themselves are checked by qwen_gradio's message rules (``_core.messages``).
"""

from __future__ import annotations

import json
import math
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from .._core.shape import ReplyArguments
from ..errors import ModelNotSupportedError, QwenGradioError
from ..provider import Qwen_Qwen_2_5_Max

__all__ = [
    "MAX_BODY",
    "REFUSED_CHAT_FIELDS",
    "ApiError",
    "ChatCompletionRequest",
    "api_error",
    "chat_request",
    "check_model",
    "json_body",
    "read_body",
    "validation_error",
]

MAX_N = 8  # choices of one request (n jobs at once)
MAX_BODY = 4 * 1024 * 1024  # bytes: far above a full context window of text, as JSON
#: Request fields that change what a reply is and that the Space cannot honour: refused (400).
REFUSED_CHAT_FIELDS = ("functions", "function_call", "audio", "prediction")


class ApiError(Exception):
    """An OpenAI-style error response."""

    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind
        self.code, self.param, self.headers = code, param, headers or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        error = {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}
        if request_id is not None:
            error["request_id"] = request_id
        return {"error": error}

    def response(self, request_id: str | None = None) -> JSONResponse:
        return JSONResponse(self.body(request_id), status_code=self.status, headers=self.headers)


def api_error(error: QwenGradioError) -> ApiError:
    """The HTTP error for a qwen_gradio error met before the reply's first token: its status,
    type, code and param are the error class's own (``qwen_gradio.errors``), with a
    ``Retry-After`` of the wait the Space stated (at least 1 s), else the class's default. An
    error that trying again cannot help (``retryable`` false; a reply not the JSON asked for has
    been asked twice already) says ``x-should-retry: false``: OpenAI's SDKs would otherwise
    send a 5xx twice more, each a job on the Space."""
    wait = error.retry_after if error.retry_after is not None else error.default_wait
    headers = {"Retry-After": str(max(1, math.ceil(wait)))} if wait is not None else {}
    if not error.retryable:
        headers["x-should-retry"] = "false"
    return ApiError(
        error.http_status,
        error.message,
        error.error_type,
        code=error.code,
        param=error.param,
        headers=headers,
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request's body, refused (413) as soon as it is known to be longer than ``limit``
    bytes: by its Content-Length before any of it is read, or while a chunked one arrives."""
    too_large = ApiError(
        413,
        f"the request body is larger than this server's limit of {limit} bytes",
        code="request_too_large",
        headers={"Connection": "close"},
    )
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)

    include_usage: bool | None = None


class ChatCompletionRequest(BaseModel):
    """The fields of OpenAI's chat-completions request that this server reads or checks."""

    model_config = ConfigDict(extra="allow", strict=True)

    model: str = Field(min_length=1)
    messages: str | list[dict[str, Any]]  # a prompt string is qwen_gradio's own shortcut
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=MAX_N)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: dict[str, Any] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    user: str | None = None
    #: qwen_gradio's own: values for the Space's extra chat inputs (``extra_body`` in the SDKs).
    options: dict[str, Any] | None = None

    def asked(self) -> ReplyArguments:
        """What the reply is asked besides its messages (``max_completion_tokens`` first, as
        OpenAI)."""
        return ReplyArguments(
            tools=self.tools or None,
            tool_choice=self.tool_choice,
            parallel_tool_calls=self.parallel_tool_calls,
            stop=self.stop,
            max_tokens=self.max_completion_tokens or self.max_tokens,
            response_format=self.response_format,
        )


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
}


_JSON_TYPES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


def _param(location: tuple[int | str, ...]) -> str:
    """``("messages", 0, "content")`` -> ``messages[0].content``, as OpenAI names params
    (leaving out pydantic's names for the members of a union, such as ``list[str]``)."""
    name = ""
    for part in location:
        if isinstance(part, int):
            name += f"[{part}]"
        elif not name:
            name = part
        elif not ("[" in part or part in ("str", "int", "float", "bool") or part[:1].isupper()):
            name += f".{part}"
    return name


def _message(errors: list[dict[str, Any]], param: str) -> str:
    """OpenAI's wording for what is wrong with ``param``: one error, or one per member of a
    union (then every type that would have done)."""
    kinds = [e["type"] for e in errors]
    if kinds[0] == "missing":
        return f"Missing required parameter: '{param}'."
    if all(kind in _EXPECTED for kind in kinds):
        expected = " or ".join(dict.fromkeys(_EXPECTED[kind] for kind in kinds))
        got = _JSON_TYPES.get(type(errors[0].get("input")), "something else")
        return f"Invalid type for '{param}': expected {expected}, but got {got} instead."
    return f"Invalid value for '{param}': {errors[0]['msg']}."


def validation_error(invalid: ValidationError) -> ApiError:
    """The 400 for a request the schema refused: the first field that failed, with each of its
    errors (a union has one per member), the deepest first (in a list of messages, the message
    that is wrong), in OpenAI's wording."""
    errors = sorted(invalid.errors(include_url=False), key=lambda e: -len(e["loc"]))
    param = _param(tuple(errors[0]["loc"]))
    same = [dict(e) for e in errors if _param(tuple(e["loc"])) == param]
    return ApiError(400, _message(same, param), param=param or None)


def json_body(body: bytes) -> Any:
    """The request body's JSON, or ApiError (400)."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON") from None


def check_model(model: str) -> None:
    """ApiError (404) for a model the provider does not serve."""
    try:
        Qwen_Qwen_2_5_Max.get_model(model)
    except ModelNotSupportedError as error:
        raise api_error(error) from None


def chat_request(body: bytes) -> ChatCompletionRequest:
    """The validated request in ``body``, or ApiError (400, OpenAI's shape and param)."""
    data = json_body(body)
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    for name in REFUSED_CHAT_FIELDS:
        if data.get(name):
            raise ApiError(400, f"'{name}' is not supported by this Space", param=name)
    try:
        request = ChatCompletionRequest.model_validate(data)
    except ValidationError as invalid:
        raise validation_error(invalid) from None
    if (request.n or 1) > 1 and request.stream:
        raise ApiError(400, "'n' above 1 is for whole replies: stream one at a time", param="n")
    if request.logprobs or request.top_logprobs:
        raise ApiError(400, "the Space gives no log probabilities", param="logprobs")
    modalities = data.get("modalities")
    if modalities is not None and modalities != ["text"]:
        raise ApiError(400, "the Space answers in text only", param="modalities")
    check_model(request.model)
    return request
