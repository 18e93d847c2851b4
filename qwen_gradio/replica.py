"""An offline replica of the ``Qwen/Qwen2.5-Max-Demo`` Space, for tests, demos and offline use.

It has the public template's Blocks layout and wiring: the Markdown header, the System box and its
"set system prompt and clear history" button, the hidden system-state box, the Chatbot, the Input
box, the Clear and Send buttons, and ``queue(api_open=False)``. Under gradio 5.x the chat event is
fn_index 0 with trigger id 11, as on the real Space, and the Chatbot speaks the *tuples* history
format. Under gradio 6 it speaks *messages* with content parts.

The model is a deterministic responder that streams token by token (``delay`` seconds apart). A
query that starts with a directive scripts the reply::

    /echo TEXT            reply TEXT, split into word and whitespace tokens
    /tokens ["a", " b"]   reply exactly these tokens, one streamed step each
    /repeat TEXT          like /echo, but every snapshot is sent twice
    /rewrite              stream "Hello wor▌", then replace it with "Hello world"
    /system               reply the system prompt the app received
    /history              reply the history it received, as JSON pairs [[user, assistant], ...]
    /options              reply the extra inputs it received (the qwen2.5 variant's model size)
    /long N               N tokens ("t0 t1 ... ")
    /stamp N [SECONDS]    N tokens, each "<emit time in ns since the epoch> " (for latency),
                          the first after SECONDS (default 0)
    /slow SECONDS TEXT    wait SECONDS before the first token
    /lockstep TEXT        send token k+1 only after POST /replica/release
    /error MESSAGE        raise gr.Error(MESSAGE) before any token
    /fail N MESSAGE       send N tokens ("w1 w2 ... "), then raise gr.Error(MESSAGE)
    /calls CALLS [TEXT]   answer as Qwen2.5 calls tools: TEXT, then a <tool_call> block for each
                          of CALLS (JSON: [[name, arguments], ...]), streamed 3 characters at a
                          time (tags straddle deltas); only when the system prompt declares tools

With tools declared in the system prompt (Qwen2.5's "# Tools" section), a plain query that holds
the words of a tool's name (``get_weather``: "weather") calls that tool, as Qwen2.5 would, its
arguments made from its schema (each string the query's last capitalized word, "Paris"; each
integer the query's first number); so does a tool named by ``tool_choice``, and the first tool
when one is required. A query of ``<tool_response>`` blocks (a tool round's results) is answered
"The tools said: " and the results, joined by "; " (as a call of ``final_answer``, when an agent
declares one; smolagents' "Observation:" turn too). With a JSON answer asked
(``response_format``: the system prompt's "Answer with one JSON object"), a plain query is
answered with one: ``{"answer": QUERY}``, or with a schema an object that follows it (each
string the query's last capitalized word, each integer the query's first number, else 1); a
query that says "fenced" gets it in a code fence, one that says "broken" gets JSON that does not
follow the schema.

A directive may also begin a later line of the query (after an agent framework's own words,
such as smolagents' "New task:"). Anything else gets a friendly echo. Besides the Space's own
API the server answers
``GET /replica/runs`` (what each chat call received and how it ended), ``GET
/replica/started?run=K&timeout=S`` (blocks until run K has started), ``GET
/replica/wait?run=K&timeout=S`` (blocks until run K has ended), ``POST /replica/release`` and
``GET /replica/requests`` (method, path and auth header of each request to the Space).

Serve it with ``python -m qwen_gradio.replica --port 7860``. It imports gradio (whichever the
interpreter has: 4, 5 or 6) and uses, of qwen_gradio, only the I/O-free core.

Over 400 lines because it is a whole Space in one file: the layouts of two templates, the
scripted replies and test directives, the side API (``/replica/*``) and an in-thread server, so
that it runs under gradio 4, 5 and 6 from one path (``python -m qwen_gradio.replica``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import itertools
import json
import re
import socket
import sys
import threading
import time
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._core.messages import DEFAULT_SYSTEM
from ._core.space import decode_history

TITLE = "Qwen2.5-Max"
REPLICA = "replica"  # what ``--space replica`` names: this replica, served in-process
WAIT_LIMIT = 30.0  # seconds a lockstep token waits for its release before giving up


@dataclass
class Run:
    """What one chat call received and did."""

    index: int
    query: str
    system: str
    history: list[list[str | None]]
    options: dict[str, Any] = field(default_factory=dict)  # the variant's extra inputs
    tokens_sent: int = 0
    outcome: str = "running"  # running | completed | error | stopped
    ended_at: float | None = None  # time.time() when it ended
    ended: threading.Event = field(default_factory=threading.Event, repr=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in (
                "index",
                "query",
                "system",
                "history",
                "options",
                "tokens_sent",
                "outcome",
                "ended_at",
            )
        }


class RunLog:
    """A record of chat calls, and the lockstep gate (used from the server's event loop)."""

    def __init__(self) -> None:
        self.runs: list[Run] = []
        self.started = threading.Condition()  # notified as each run starts
        self.requests: list[dict[str, Any]] = []
        self._released = 0
        self._changed: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    def start(
        self,
        query: str,
        system: str,
        history: list[list[str | None]],
        options: dict[str, Any] | None = None,
    ) -> Run:
        with self.started:
            run = Run(len(self.runs), query, system, history, dict(options or {}))
            self.runs.append(run)
            self.started.notify_all()
        self._released = 0
        return run

    async def release(self) -> None:
        async with self._condition():
            self._released += 1
            self._condition().notify_all()

    async def wait_for_release(self, count: int) -> bool:
        async with self._condition():
            try:
                await asyncio.wait_for(
                    self._condition().wait_for(lambda: self._released >= count), WAIT_LIMIT
                )
            except TimeoutError:
                return False
            return True


def _app_error(message: str) -> Exception:
    """``gr.Error(message)``, as the Space's app raises it, without the traceback gradio would
    print for it (5.x and later can leave it out: an error asked for is not the replica's)."""
    import gradio as gr

    if "print_exception" in inspect.signature(gr.Error).parameters:
        return gr.Error(message, print_exception=False)
    return gr.Error(message)  # gradio 4: always printed


def _calls_reply(arg: str, system: str) -> str:
    """What ``/calls CALLS [TEXT]`` makes Qwen2.5 write (see the module's docstring)."""
    calls, end = json.JSONDecoder().raw_decode(arg)
    if "<tools>" not in system:
        return "No tools were declared, so I answer in words."
    text = arg[end:].strip()
    blocks = [
        f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"
        for name, arguments in calls
    ]
    return "\n".join([text, *blocks] if text else blocks)


def _called(query: str, system: str) -> str:
    """The tool call Qwen2.5 would make for ``query`` (see the module's docstring), if any."""
    declared = re.search(r"<tools>\n(.*?)\n</tools>", system, re.DOTALL)
    if not declared:
        return ""
    tools = []
    for line in declared.group(1).splitlines():
        spec = json.loads(line)
        tools.append(spec.get("function", spec))
    said = re.findall(r"<tool_response>\n(.*?)\n</tool_response>", query, re.DOTALL)
    if query.startswith("Observation:\n"):  # smolagents hands results back in these words
        said = [query.split("\n", 1)[1]]
    if said:  # a tool round's results: an agent's final answer, if it has a tool for one
        final = [tool for tool in tools if tool.get("name") == "final_answer"]
        answer = {"answer": "The tools said: " + "; ".join(said)}
        return _call_text(final[0]["name"], answer) if final else ""
    named = re.search(r"In this reply, call the function (\S+)\.", system)
    words = set(re.findall(r"[a-z0-9]+", query.lower()))

    def asked(tool: dict[str, Any]) -> bool:
        if named:
            return bool(tool.get("name") == named.group(1))
        wanted = [w for w in tool.get("name", "").lower().split("_") if w not in ("get", "the")]
        return bool(wanted) and all(w in words for w in wanted)

    chosen = [tool for tool in tools if asked(tool)]
    if not chosen and "call one or more of these functions" in system:
        chosen = tools[:1]
    if not chosen:
        return ""
    schema = chosen[0].get("parameters") or {"type": "object"}
    if isinstance(schema, list):  # Qwen-Agent's older form: a list of parameters
        schema = {"type": "object", "properties": {p["name"]: p for p in schema}}
    return _call_text(chosen[0]["name"], _example(schema, schema, query))


def _call_text(name: str, arguments: Any) -> str:
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': arguments})}\n</tool_call>"


def _json_answer(query: str, system: str) -> str:
    """The JSON a plain query gets when the system prompt asks for JSON (see the module)."""
    if "Answer with one JSON object" not in system:
        return ""
    asked = re.search(r"It must follow this JSON schema:\n(.*)$", system, re.DOTALL)
    if asked is None:
        value: Any = {"answer": query}
    else:
        schema = json.loads(asked.group(1))
        value = _example(schema, schema, query)
        if "broken" in query and isinstance(value, dict):
            value = {key: [item] for key, item in value.items()}  # every field the wrong type
    text = json.dumps(value, ensure_ascii=False)
    return f"```json\n{text}\n```" if "fenced" in query else text


def _example(schema: dict[str, Any], root: dict[str, Any], query: str) -> Any:
    """A value that follows ``schema`` (``$ref`` into ``root``'s ``$defs``), made from ``query``."""
    if "$ref" in schema:
        return _example(root["$defs"][schema["$ref"].rsplit("/", 1)[-1]], root, query)
    if "anyOf" in schema:
        return _example(schema["anyOf"][0], root, query)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type", "object")
    if kind == "object":
        properties = schema.get("properties", {})
        return {k: _example(v, root, query) for k, v in properties.items()}
    if kind == "array":
        return [_example(schema.get("items", {}), root, query)]
    if kind in ("integer", "number"):
        numbers = re.findall(r"\d+", query)
        return int(numbers[0]) if numbers else 1
    if kind == "boolean":
        return True
    names = re.findall(r"\b[A-Z][\w-]*", query)
    return names[-1] if names else query


def _pieces(text: str, size: int) -> list[str]:
    return [text[k : k + size] for k in range(0, len(text), size)]


def tokenize(text: str) -> list[str]:
    """Words and whitespace runs, each its own token."""
    return re.findall(r"\S+|\s+", text)


def history_pairs(history: Any) -> list[list[str | None]]:
    """The Chatbot value as [[user, assistant], ...], whichever format it came in."""
    return [[user, assistant] for user, assistant in decode_history(history)]


@dataclass
class Script:
    """How the responder answers one query."""

    snapshots: Iterable[str]  # the reply after each step, produced lazily
    first_delay: float = 0.0
    lockstep: bool = False
    error: str | None = None  # raised after the snapshots


def script_for(
    query: str,
    system: str,
    history: list[list[str | None]],
    options: dict[str, Any] | None = None,
) -> Script:
    if not query.startswith("/") and "\n/" in query:  # a directive after a framework's own words
        query = query[query.index("\n/") + 1 :]
    command, _, arg = query.partition(" ")

    def cumulative(tokens: Iterable[str]) -> Iterator[str]:
        text = ""
        for token in tokens:
            text += token
            yield text

    if command == "/echo":
        return Script(cumulative(tokenize(arg)))
    if command == "/tokens":
        return Script(cumulative([str(t) for t in json.loads(arg)]))
    if command == "/repeat":
        return Script([s for s in cumulative(tokenize(arg)) for _ in (0, 1)])
    if command == "/rewrite":
        return Script(["Hello", "Hello wor▌", "Hello world"])
    if command == "/system":
        return Script(cumulative(tokenize(system)))
    if command == "/options":
        return Script(cumulative(tokenize(json.dumps(options or {}, sort_keys=True))))
    if command == "/history":
        return Script(cumulative(tokenize(json.dumps(history, ensure_ascii=False))))
    if command == "/long":
        return Script(cumulative(f"t{k} " for k in range(int(arg))))
    if command == "/stamp":
        count, _, wait = arg.partition(" ")
        stamps = cumulative(f"{time.time_ns()} " for _ in range(int(count)))
        return Script(stamps, first_delay=float(wait or 0))
    if command == "/slow":
        seconds, _, text = arg.partition(" ")
        return Script(cumulative(tokenize(text or "slow reply")), first_delay=float(seconds))
    if command == "/lockstep":
        return Script(cumulative(tokenize(arg)), lockstep=True)
    if command == "/calls":
        return Script(cumulative(_pieces(_calls_reply(arg, system), 3)))
    called = _called(query, system)
    if called:
        return Script(cumulative(_pieces(called, 3)))
    if query.startswith("<tool_response>"):
        said = re.findall(r"<tool_response>\n(.*?)\n</tool_response>", query, re.DOTALL)
        return Script(cumulative(tokenize("The tools said: " + "; ".join(said))))
    if command == "/error":
        return Script([], error=arg or "Something went wrong")
    if command == "/fail":
        count, _, message = arg.partition(" ")
        tokens = [f"w{k} " for k in range(1, int(count) + 1)]
        return Script(cumulative(tokens), error=message or "Something went wrong")
    answer = _json_answer(query, system)
    if answer:
        return Script(cumulative(_pieces(answer, 3)))
    title = f"{TITLE} ({options['model_size']})" if options and "model_size" in options else TITLE
    reply = f"This is the offline replica of {title}. You said: {query}"
    return Script(cumulative(tokenize(reply)))


VARIANTS = ("max", "qwen2.5")
MODEL_SIZES = ("72B", "32B", "14B", "7B")


def build_demo(  # type: ignore[no-untyped-def]
    delay: float = 0.005,
    concurrency_limit: int | None = 5,
    max_queue: int | None = None,
    log: RunLog | None = None,
    variant: str = "max",
):
    """The replica's Blocks app, laid out and wired like the real Space.

    ``variant="qwen2.5"`` is the template as the Qwen2.5 demo uses it: a "Model size" radio as a
    fourth input of the chat event, which is registered after three other events (fn_index 3).
    """
    import gradio as gr

    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")

    log = log if log is not None else RunLog()
    messages_format = int(gr.__version__.split(".")[0]) >= 6

    def with_reply(history: Any, query: str, reply: str) -> Any:
        if messages_format:
            return [
                *(history or []),
                {"role": "user", "content": query},
                {"role": "assistant", "content": reply},
            ]
        return [*(history or []), [query, reply]]

    async def chat(
        query: str | None, history: Any, system: str, options: dict[str, Any]
    ) -> AsyncGenerator[tuple[str, Any, str], None]:
        # An async generator, so that a cancelled job stops at its next await at once (a sync
        # generator blocked in a worker thread cannot be closed by gradio's /cancel).
        query = query or ""
        pairs = history_pairs(history)
        run = log.start(query, system, pairs, options)
        script = script_for(query, system, pairs, options)
        finished = False
        try:
            if script.first_delay:
                await asyncio.sleep(script.first_delay)
            snapshots = iter(script.snapshots)
            for step in itertools.count():
                if step and script.lockstep and not await log.wait_for_release(step):
                    raise _app_error("lockstep: no release came")
                if step and not script.lockstep:
                    await asyncio.sleep(delay)
                snapshot = next(snapshots, None)  # after the wait, so /stamp times the emit
                if snapshot is None:
                    break
                run.tokens_sent = step + 1
                yield "", with_reply(history, query, snapshot), system
            if script.error is not None:
                run.outcome = "error"
                raise _app_error(script.error)
            finished = True
        finally:
            if run.outcome == "running":
                run.outcome = "completed" if finished else "stopped"
            run.ended_at = time.time()
            run.ended.set()

    # Each closes ``chat`` when it is closed itself (gradio 6 closes the iterator of a run whose
    # client went away): else ``chat`` would stay suspended, its run "running", until collected.
    async def model_chat(
        query: str | None, history: Any, system: str
    ) -> AsyncIterator[tuple[str, Any, str]]:
        async with contextlib.aclosing(chat(query, history, system, {})) as replies:
            async for outputs in replies:
                yield outputs

    async def model_chat_sized(  # the Qwen2.5 demo's: one more input
        query: str | None, history: Any, system: str, model_size: str
    ) -> AsyncIterator[tuple[str, Any, str]]:
        options = {"model_size": model_size}
        async with contextlib.aclosing(chat(query, history, system, options)) as replies:
            async for outputs in replies:
                yield outputs

    def clear_session() -> tuple[str, list[Any]]:
        return "", []

    def modify_system_session(system: str) -> tuple[str, str, list[Any]]:
        system = system or DEFAULT_SYSTEM
        return system, system, []

    with gr.Blocks(title=f"{TITLE} (offline replica)") as demo:
        gr.Markdown(f"<center><font size=8>{TITLE}</center>")
        with gr.Row():
            with gr.Column(scale=3):
                system_input = gr.Textbox(value=DEFAULT_SYSTEM, lines=1, label="System")
            with gr.Column(scale=1):
                modify_system = gr.Button("🛠️ Set system prompt and clear history", scale=2)
            system_state = gr.Textbox(value=DEFAULT_SYSTEM, visible=False)
        chatbot = gr.Chatbot(label=TITLE)
        textbox = gr.Textbox(lines=1, label="Input")
        with gr.Row():
            clear_history = gr.Button("🧹 Clear history")
            submit = gr.Button("🚀 Send")

        chat_outputs = [textbox, chatbot, system_input]
        system_events: tuple[tuple[Any, Any, list[Any], list[Any]], ...] = (
            (clear_history.click, clear_session, [], [textbox, chatbot]),
            (
                modify_system.click,
                modify_system_session,
                [system_input],
                [system_state, system_input, chatbot],
            ),
        )
        if variant == "max":
            # fn_index 0 (/model_chat), then its Send-button twin, fn_index 1 (/model_chat_1)
            chat_inputs = [textbox, chatbot, system_state]
            for trigger in (textbox.submit, submit.click):
                trigger(model_chat, chat_inputs, chat_outputs, concurrency_limit=concurrency_limit)
            for listen, fn, inputs, outputs in system_events:
                listen(fn=fn, inputs=inputs, outputs=outputs)
        else:
            # the other events first, then the chat event at fn_index 3 and its twin
            model_size = gr.Radio(list(MODEL_SIZES), value=MODEL_SIZES[0], label="Model size")
            for listen, fn, inputs, outputs in system_events:
                listen(fn=fn, inputs=inputs, outputs=outputs)
            model_size.change(fn=clear_session, inputs=[], outputs=[textbox, chatbot])
            chat_inputs = [textbox, chatbot, system_state, model_size]
            for trigger in (textbox.submit, submit.click):
                trigger(
                    model_chat_sized,
                    chat_inputs,
                    chat_outputs,
                    api_name="model_chat",
                    concurrency_limit=concurrency_limit,
                )
    if concurrency_limit is not None:  # the queue runs at most max_threads jobs (40) at once
        demo.max_threads = max(demo.max_threads, concurrency_limit)
    demo.queue(api_open=False, max_size=max_queue)
    demo.replica_log = log
    return demo


class RequestRecorder:
    """ASGI middleware that notes each request to the Space (not to ``/replica/*``)."""

    def __init__(self, app: Any, log: RunLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and not scope["path"].startswith("/replica/"):
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            self.log.requests.append(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "authorization": headers.get("x-hf-authorization")
                    or headers.get("authorization"),
                    "user_agent": headers.get("user-agent"),
                }
            )
            del self.log.requests[:-1000]
        await self.app(scope, receive, send)


def build_app(  # type: ignore[no-untyped-def]
    delay: float = 0.005,
    concurrency_limit: int | None = 5,
    max_queue: int | None = None,
    variant: str = "max",
):
    """A FastAPI app: the replica Space at ``/`` plus the ``/replica/*`` routes for tests."""
    import gradio as gr
    from fastapi import FastAPI, HTTPException

    log = RunLog()
    app = FastAPI()
    app.add_middleware(RequestRecorder, log=log)

    @app.get("/replica/requests")
    def requests() -> list[dict[str, Any]]:
        return list(log.requests)

    @app.get("/replica/runs")
    def runs() -> list[dict[str, Any]]:
        return [run.as_dict() for run in log.runs]

    @app.get("/replica/wait")
    def wait(run: int, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with log.started:
            if not log.started.wait_for(lambda: run < len(log.runs), timeout):
                raise HTTPException(404, f"run {run} did not start")
        if not log.runs[run].ended.wait(max(0.0, deadline - time.monotonic())):
            raise HTTPException(408, f"run {run} has not ended")
        return log.runs[run].as_dict()

    @app.get("/replica/started")
    def started(run: int, timeout: float = 10.0) -> dict[str, Any]:
        with log.started:
            if not log.started.wait_for(lambda: run < len(log.runs), timeout):
                raise HTTPException(404, f"run {run} did not start")
        return log.runs[run].as_dict()

    @app.post("/replica/release")
    async def release() -> dict[str, bool]:
        await log.release()
        return {"released": True}

    demo = build_demo(delay, concurrency_limit, max_queue, log, variant)
    return gr.mount_gradio_app(app, demo, path="")


class ReplicaServer:
    """A replica served by uvicorn on a loopback socket, in a background thread.

    >>> with ReplicaServer() as server:  # doctest: +SKIP
    ...     print(server.url)
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        delay: float = 0.005,
        concurrency_limit: int | None = 5,
        max_queue: int | None = None,
        variant: str = "max",
    ) -> None:
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host, self.port = self._socket.getsockname()[:2]
        app = build_app(delay, concurrency_limit, max_queue, variant)
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> ReplicaServer:
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the replica server failed to start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> ReplicaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m qwen_gradio.replica",
        description="Serve the offline replica of the Qwen2.5-Max Space.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7860, help="0 picks a free port")
    parser.add_argument("--delay", type=float, default=0.03, help="seconds between tokens")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=5,
        help="chat jobs run at once, like the Space (5); more wait in the queue",
    )
    parser.add_argument(
        "--max-queue",
        type=int,
        default=None,
        help="refuse jobs beyond this many waiting (default: no limit)",
    )
    parser.add_argument(
        "--variant",
        choices=VARIANTS,
        default="max",
        help="max: the Qwen2.5-Max demo; qwen2.5: the Qwen2.5 demo's layout (a model-size radio,"
        " the chat event at fn_index 3)",
    )
    args = parser.parse_args(argv)
    server = ReplicaServer(
        args.host, args.port, args.delay, args.concurrency, args.max_queue, args.variant
    )
    server.start()
    space = "Qwen/Qwen2.5-Max-Demo" if args.variant == "max" else "the Qwen2.5 demo"
    print(f"Replica of {space} serving at {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
