"""Scenarios run *inside* a gpt4free venv (``tests/g4f-venvs.sh``): ``python tests/g4f_driver.py
SCENARIO SPACE_URL`` prints one JSON object with what gpt4free's own APIs returned, for
tests/test_gpt4free.py to check. Every host name the process looks up is reported in "hosts", so
a test can fail on anything that would leave the machine.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import httpx

HOSTS: list[str] = []
_getaddrinfo = socket.getaddrinfo


def _recording_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    HOSTS.append(host.decode() if isinstance(host, bytes) else str(host))
    return _getaddrinfo(host, *args, **kwargs)


socket.getaddrinfo = _recording_getaddrinfo

import g4f  # noqa: E402 - after the look-up recorder
import g4f.debug  # noqa: E402
from g4f.client import AsyncClient, Client  # noqa: E402

import qwen_gradio  # noqa: E402
from qwen_gradio.gpt4free import Qwen_Qwen_2_5_Max as P  # noqa: E402
from qwen_gradio.gpt4free import register  # noqa: E402

g4f.debug.version_check = False  # it would look the latest version up on the network

HISTORY = [
    {"role": "system", "content": "Sys"},
    {"role": "user", "content": "u1"},
    {"role": "assistant", "content": "a1"},
    {"role": "user", "content": "/history"},
]
SCENARIOS: dict[str, Callable[[str], dict[str, Any]]] = {}


def scenario(fn: Callable[[str], dict[str, Any]]) -> Callable[[str], dict[str, Any]]:
    SCENARIOS[fn.__name__] = fn
    return fn


def runs(space: str) -> list[dict[str, Any]]:
    return httpx.get(f"{space}/replica/runs", timeout=10).json()  # type: ignore[no-any-return]


def wait(space: str, run: int) -> dict[str, Any]:
    response = httpx.get(f"{space}/replica/wait", params={"run": run, "timeout": 20}, timeout=25)
    return response.json()  # type: ignore[no-any-return]


def jobs_submitted(space: str) -> int:
    requests = httpx.get(f"{space}/replica/requests", timeout=10).json()
    return sum(1 for r in requests if r["path"].endswith("queue/join"))


def error_info(error: BaseException) -> dict[str, Any]:
    return {
        "types": [f"{k.__module__}.{k.__qualname__}" for k in type(error).__mro__],
        "message": getattr(error, "message", str(error)),
        "partial_text": getattr(error, "partial_text", None),
        "str": str(error),
    }


def chunk_info(chunk: Any) -> dict[str, Any]:
    choice = chunk.choices[0]
    return {
        "id": chunk.id,
        "content": choice.delta.content,
        "finish_reason": choice.finish_reason,
        "provider": getattr(chunk, "provider", None),
        "model": getattr(chunk, "model", None),
    }


@scenario
def imports(space: str) -> dict[str, Any]:
    from g4f.providers.base_provider import AsyncGeneratorProvider, ProviderModelMixin

    from qwen_gradio.provider import Qwen_Qwen_2_5_Max as Standalone

    return {
        "qwen_gradio_alone_imports_g4f": _fresh_import_imports_g4f(),
        "is_g4f_provider": issubclass(P, AsyncGeneratorProvider)
        and issubclass(P, ProviderModelMixin),
        "standalone_is_g4f_provider": issubclass(Standalone, AsyncGeneratorProvider),
        "attributes": {
            name: getattr(P, name)
            for name in (
                "label",
                "url",
                "api_endpoint",
                "working",
                "supports_stream",
                "supports_system_message",
                "supports_message_history",
                "default_model",
                "model_aliases",
                "models",
            )
        },
        "same_as_standalone": all(
            getattr(P, name) == getattr(Standalone, name)
            for name in ("label", "url", "api_endpoint", "default_model", "models")
        ),
        "version": qwen_gradio.__version__,
    }


def _fresh_import_imports_g4f() -> bool:
    import subprocess

    code = "import sys, qwen_gradio; print('g4f' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip() == "True"


@scenario
def whole(space: str) -> dict[str, Any]:
    run = len(runs(space))
    response = Client(provider=P).chat.completions.create(
        model="qwen-2.5-max", messages=HISTORY, space=space
    )
    choice = response.choices[0]
    return {
        "content": choice.message.content,
        "finish_reason": choice.finish_reason,
        "provider": response.provider,
        "model": response.model,
        "received": wait(space, run),
    }


@scenario
def stream(space: str) -> dict[str, Any]:
    chunks = Client(provider=P).chat.completions.create(
        model="qwen-2.5-max", messages="/long 20", stream=True, space=space
    )
    return {"chunks": [chunk_info(c) for c in chunks]}


@scenario
def async_client(space: str) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        client = AsyncClient(provider=P)
        chunks = [
            chunk_info(c)
            async for c in client.chat.completions.create(
                model="qwen-2.5-max", messages="/long 20", stream=True, space=space
            )
        ]
        run = len(runs(space))
        response = await client.chat.completions.create(
            model="qwen-2.5-max", messages=HISTORY, space=space
        )
        return {
            "chunks": chunks,
            "content": response.choices[0].message.content,
            "finish_reason": response.choices[0].finish_reason,
            "received": wait(space, run),
        }

    return asyncio.run(main())


@scenario
def chat_completion(space: str) -> dict[str, Any]:
    whole = g4f.ChatCompletion.create(
        model="qwen-2.5-max", messages=HISTORY, provider=P, space=space
    )
    parts = g4f.ChatCompletion.create(
        model="qwen-2.5-max",
        messages=[{"role": "user", "content": "/long 5"}],
        provider=P,
        stream=True,
        space=space,
    )
    return {"whole": whole, "parts": [p for p in parts if isinstance(p, str)]}


@scenario
def errors(space: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    received: list[str] = []
    try:
        for chunk in Client(provider=P).chat.completions.create(
            model="", messages="/fail 2 kaput", stream=True, space=space
        ):
            if chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    except Exception as error:
        result["mid_stream"] = {**error_info(error), "received": received}
    before = jobs_submitted(space)
    try:
        Client(provider=P).chat.completions.create(model="gpt-4", messages="hi", space=space)
    except Exception as error:
        result["unknown_model"] = error_info(error)
    try:
        Client(provider=P).chat.completions.create(model="", messages=[], space=space)
    except Exception as error:
        result["bad_messages"] = error_info(error)
    result["jobs_for_bad_input"] = jobs_submitted(space) - before

    async def async_errors() -> None:
        client = AsyncClient(provider=P)
        try:
            await client.chat.completions.create(model="", messages="/error kaput", space=space)
        except Exception as error:
            result["async_before_any_token"] = error_info(error)
        try:  # g4f 0.5's sync Client keeps `timeout` for itself; its AsyncClient passes it on
            await client.chat.completions.create(
                model="", messages="/slow 5 late", space=space, timeout=0.5
            )
        except Exception as error:
            result["timeout"] = error_info(error)

    asyncio.run(async_errors())
    return result


@scenario
def cancel(space: str) -> dict[str, Any]:
    run = len(runs(space))
    response = Client(provider=P).chat.completions.create(
        model="", messages="/long 5000", stream=True, space=space
    )
    first = next(iter(response)).choices[0].delta.content
    del response  # abandoned: gpt4free closes its generators, which cancels the job
    gc.collect()
    sync = {"first": first, "received": wait(space, run)}

    async def main() -> dict[str, Any]:
        run = len(runs(space))
        response = AsyncClient(provider=P).chat.completions.create(
            model="", messages="/long 5000", stream=True, space=space
        )
        async for chunk in response:
            first = chunk.choices[0].delta.content
            break
        await response.aclose()
        return {"first": first, "received": await asyncio.to_thread(wait, space, run)}

    return {"sync": sync, "async": asyncio.run(main())}


@scenario
def registry(space: str) -> dict[str, Any]:
    from g4f.Provider import ProviderUtils

    name = "Qwen_Qwen_2_5_Max"
    before = ProviderUtils.convert.get(name)
    register()
    register()  # idempotent
    response = Client(provider=name).chat.completions.create(
        model="qwen-2.5-max", messages="/echo by name", space=space
    )
    return {
        "before": None if before is None else f"{before.__module__}.{before.__qualname__}",
        "after_is_ours": ProviderUtils.convert[name] is P,
        "content": response.choices[0].message.content,
        "listed": list(ProviderUtils.convert.keys()).count(name),
    }


@scenario
def options(space: str) -> dict[str, Any]:
    from tests.helpers import RecordingProxy

    run = len(runs(space))
    flat = Client(provider=P).chat.completions.create(
        model="",
        messages=[*HISTORY[:-1], {"role": "user", "content": "u2"}],
        space=space,
        history="flatten",
        hf_token="hf_driver_token",
    )
    received = wait(space, run)
    auth = [r["authorization"] for r in httpx.get(f"{space}/replica/requests").json()][-3:]
    with RecordingProxy() as proxy:
        via_proxy = Client(provider=P, proxies=proxy.url).chat.completions.create(
            model="", messages="/echo proxied", space=space
        )
        seen = list(proxy.seen)
    return {
        "flatten_received": received,
        "flatten_content": flat.choices[0].message.content,
        "authorization": auth,
        "proxied_content": via_proxy.choices[0].message.content,
        "proxy_seen": seen,
    }


@scenario
def family(space: str) -> dict[str, Any]:
    """A provider for a family of template Spaces: model names mapped to a Space and options
    (``space`` is the replica of the Qwen2.5 demo's layout, with its model-size radio)."""
    from g4f import errors as g4f_errors

    from qwen_gradio.gpt4free import gpt4free_provider
    from qwen_gradio.provider import Qwen_Qwen_2_5_Max as Standalone

    class Qwen25(Standalone):
        label = "Qwen2.5 demo"
        default_model = "qwen-2.5-72b"
        models: ClassVar[list[str]] = ["qwen-2.5-72b", "qwen-2.5-7b"]
        model_aliases: ClassVar[dict[str, str]] = {"qwen-2.5": "qwen-2.5-72b"}
        model_spaces: ClassVar[dict[str, tuple[str | None, dict[str, Any]]]] = {
            "qwen-2.5-72b": (space, {"model_size": "72B"}),
            "qwen-2.5-7b": (space, {"model_size": "7B"}),
        }

    provider = gpt4free_provider(Qwen25)
    client = Client(provider=provider)
    replies = {
        model: client.chat.completions.create(model=model, messages="/options")
        for model in ("qwen-2.5-7b", "qwen-2.5", "")
    }
    try:
        client.chat.completions.create(model="qwen-2.5-1b", messages="/options")
        unknown = None
    except g4f_errors.ModelNotFoundError as error:
        unknown = str(error)
    return {
        "name": provider.__name__,
        "models": provider.get_models(),
        "contents": {m: r.choices[0].message.content for m, r in replies.items()},
        "reported_models": {m: r.model for m, r in replies.items()},
        "unknown_model": unknown,
    }


def run_example(path: str, space: str) -> dict[str, Any]:
    """Run a README example as written, against ``space``; return what it printed."""
    import contextlib
    import io
    import os
    import runpy

    os.environ["QWEN_GRADIO_SPACE"] = space
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        runpy.run_path(path, run_name="__main__")
    return {"stdout": out.getvalue()}


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@scenario
def tools(space: str) -> dict[str, Any]:
    """gpt4free 8.8 hands tools to the provider (supports_native_tools): whole and streamed."""
    messages = [{"role": "user", "content": "What's the weather in Paris?"}]
    client = Client(provider=P)
    whole = client.chat.completions.create(
        model="qwen-2.5-max", messages=messages, tools=[WEATHER], space=space
    )
    calls = whole.choices[0].message.tool_calls or []
    streamed = []
    for chunk in client.chat.completions.create(
        model="qwen-2.5-max", messages=messages, tools=[WEATHER], space=space, stream=True
    ):
        delta = chunk.choices[0].delta if chunk.choices else None
        for call in (getattr(delta, "tool_calls", None) or []) if delta else []:
            function = call["function"] if isinstance(call, dict) else call.function
            streamed.append(function["name"] if isinstance(function, dict) else function.name)
    stopped = client.chat.completions.create(
        model="qwen-2.5-max",
        messages=[{"role": "user", "content": "/long 3000"}],
        stop=["t3 "],
        space=space,
    )
    return {
        "whole": [
            (c["function"]["name"] if isinstance(c, dict) else c.function.name) for c in calls
        ],
        "finish_reason": whole.choices[0].finish_reason,
        "streamed": streamed,
        "stopped": stopped.choices[0].message.content,
    }


def main() -> None:
    if sys.argv[1] == "example":  # example FILE SPACE
        result = run_example(sys.argv[2], sys.argv[3])
        result["hosts"] = sorted(set(HOSTS))
        print(json.dumps(result))
        return
    name, space = sys.argv[1], sys.argv[2].rstrip("/")
    result = SCENARIOS[name](space)
    result["hosts"] = sorted(set(HOSTS))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
