"""The floor: a minimal direct client of the Space's queue protocol over httpx.

Join the queue, read the session's event stream, apply the output diffs, and yield the growth of
the assistant's text. No validation, no timeouts, no cancellation: just the protocol.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx

PREFIX = "gradio_api/"


def _payload(prompt: str, session: str) -> dict[str, Any]:
    return {
        "data": [prompt, [], "You are a helpful assistant."],
        "event_data": None,
        "fn_index": 0,
        "trigger_id": 11,
        "session_hash": session,
    }


def _apply(value: Any, diff: list[Any]) -> Any:
    for action, path, new in diff:
        if not path:
            value = new if action == "replace" else value + new
            continue
        target = value
        for key in path[:-1]:
            target = target[key]
        if action == "append":
            target[path[-1]] += new
        elif action == "add" and isinstance(target, list):
            target.insert(path[-1], new)
        else:
            target[path[-1]] = new
    return value


def _text(history: list[Any]) -> str:
    last = history[-1] if history else None
    if isinstance(last, list):
        return last[1] or ""
    if isinstance(last, dict) and last.get("role") == "assistant":
        content = last["content"]
        return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)
    return ""


class _Reply:
    def __init__(self) -> None:
        self.outputs: list[Any] | None = None
        self.text = ""
        self.done = False

    def feed(self, line: str) -> str:
        if not line.startswith("data:"):
            return ""
        message = json.loads(line[5:])
        kind = message["msg"]
        if kind == "process_generating":
            data = message["output"]["data"]
            if self.outputs is None:
                self.outputs = data
            else:
                self.outputs = [_apply(o, d) for o, d in zip(self.outputs, data, strict=False)]
        elif kind == "process_completed":
            self.done = True
            if not message.get("success", True):
                raise RuntimeError(message["output"].get("error"))
            self.outputs = message["output"]["data"]
        else:
            return ""
        new = _text(self.outputs[1])
        delta, self.text = new[len(self.text) :], new
        return delta


def stream(http: httpx.Client, url: str, prompt: str) -> Iterator[str]:
    url, session = url.rstrip("/") + "/", uuid.uuid4().hex[:12]
    http.post(f"{url}{PREFIX}queue/join", json=_payload(prompt, session)).raise_for_status()
    reply = _Reply()
    with http.stream("GET", f"{url}{PREFIX}queue/data", params={"session_hash": session}) as r:
        for line in r.iter_lines():
            delta = reply.feed(line)
            if delta:
                yield delta
            if reply.done:
                return


async def astream(http: httpx.AsyncClient, url: str, prompt: str) -> AsyncIterator[str]:
    url, session = url.rstrip("/") + "/", uuid.uuid4().hex[:12]
    (await http.post(f"{url}{PREFIX}queue/join", json=_payload(prompt, session))).raise_for_status()
    reply = _Reply()
    async with http.stream(
        "GET", f"{url}{PREFIX}queue/data", params={"session_hash": session}
    ) as r:
        async for line in r.aiter_lines():
            delta = reply.feed(line)
            if delta:
                yield delta
            if reply.done:
                return
