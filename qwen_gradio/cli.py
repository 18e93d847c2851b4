"""The ``qwen-gradio`` command line (click): chat, batch, info, serve, ui, replica.

Longer than the package's other modules on purpose: every command's definition and help text
lives here, in one place, because the reference in docs/cli.md is generated from it. The logic
behind the commands is elsewhere (the client, ``batch.py``, ``serve/``, ``ui.py``); what is
here is flags, printing and exit codes. One decorator, ``client_options``, gives every command
the client's settings.
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import click

from ._client.streams import Stream
from ._core.messages import DEFAULT_SYSTEM
from ._core.reply import QueueStatus, Retrying, TextDelta
from ._core.shape import ReplyArguments
from ._core.space import DEFAULT_SPACE, SPACE_ENV, SpaceConnection
from ._state import STATE_ENV
from ._transports import TRANSPORTS
from ._transports.cache import NO_CACHE_ENV
from ._version import __version__
from .client import QwenClient
from .errors import (
    InvalidMessagesError,
    QueueFullError,
    QwenGradioError,
    RateLimitedError,
    SpaceError,
    SpaceUnavailableError,
    StreamTimeoutError,
)
from .replica import REPLICA  # --space replica (ui): the bundled replica, served in-process
from .routing import MAX_STATED_WAIT
from .settings import HF_TOKEN_ENV, SETTING_NAMES, Settings, Timeouts

#: What each exit code means, for --help; the codes are the error classes' own (``exit_code``).
EXIT_MEANINGS: list[tuple[type[QwenGradioError], str]] = [
    (InvalidMessagesError, "bad input (an empty prompt, a wrong --option)"),
    (SpaceUnavailableError, "the Space cannot be reached, or is sleeping, paused or building"),
    (SpaceError, "the Space's app failed; its own message is shown"),
    (QueueFullError, "the Space's queue is full"),
    (RateLimitedError, "rate limited, or out of (GPU) quota"),
    (StreamTimeoutError, "a timeout ran out"),
    (QwenGradioError, "any other error"),
]
INTERRUPTED = 130
EXIT_HELP = "\n".join(f"  {kind.exit_code:>3}  {text}" for kind, text in EXIT_MEANINGS) + (
    f"\n  {INTERRUPTED}  interrupted (Ctrl-C); the job on the Space is cancelled"
)
SPACE_HELP = f"Space id (owner/name) or URL [default: ${SPACE_ENV}, else {DEFAULT_SPACE}]"

FC = TypeVar("FC", bound=Callable[..., Any])


def parse_options(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    """``-o model_size=32B -o temperature=0.7`` -> {"model_size": "32B", "temperature": "0.7"}
    (the values are read as the Space's option types when checked)."""
    options: dict[str, str] = {}
    for value in values:
        name, sep, setting = value.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"{value!r} is not NAME=VALUE", ctx, param)
        options[name.strip()] = setting
    return options


#: The parameters ``client_options`` adds, which become one ``Settings``: a flag per setting
#: (``--no-cache`` for ``cache``).
SETTINGS_FLAGS = tuple("no_cache" if name == "cache" else name for name in SETTING_NAMES)


def client_options(*, short_option: bool = True, replica: bool = False) -> Callable[[FC], FC]:
    """The client's settings as flags, for every command: ``--space``, ``--hf-token``,
    ``--proxy``, ``--timeout``, ``-o/--option``, ``--transport``, ``--no-cache``, ``--state``,
    ... (``SETTINGS_FLAGS``). The command receives them as one ``settings``
    (``Settings.build``, so flags, then the environment, then defaults); a wrong one is a
    usage error (exit 2). ``short_option=False`` leaves ``-o`` to the command;
    ``replica=True`` lets ``--space replica`` mean the bundled replica (the command then gets
    ``replica=True``)."""
    flags = _client_flags(short_option=short_option, replica=replica)

    def decorator(command: FC) -> FC:
        @functools.wraps(command)
        def with_settings(*args: Any, **kwargs: Any) -> Any:
            flags = {name: kwargs.pop(name) for name in SETTINGS_FLAGS}
            spaces = list(flags["space"])
            if replica:
                kwargs["replica"] = REPLICA in spaces
                spaces = [space for space in spaces if space != REPLICA]
            flags["space"] = spaces or None
            flags["cache"] = False if flags.pop("no_cache") else None
            try:
                settings = Settings.build(**flags)
            except ValueError as error:
                raise click.BadParameter(str(error)) from None
            return command(*args, settings=settings, **kwargs)

        wrapped: Any = with_settings
        for flag in reversed(flags):
            wrapped = flag(wrapped)
        return wrapped  # type: ignore[no-any-return]

    return decorator


def _client_flags(*, short_option: bool, replica: bool) -> list[Callable[[FC], FC]]:
    """One click option per setting (``SETTINGS_FLAGS``), with its help."""
    space_help = (
        SPACE_HELP
        + (" ('replica': the offline replica, served here)" if replica else "")
        + "; repeat it for a pool of Spaces that stand in for one another."
    )
    return [
        click.option("--space", multiple=True, help=space_help),
        click.option(
            "--hf-token",
            envvar=HF_TOKEN_ENV,
            default=None,
            help=f"Hugging Face token for private or duplicated Spaces [env: {HF_TOKEN_ENV}].",
        ),
        click.option(
            "--proxy", default=None, help="http(s) proxy URL for every request to the Space."
        ),
        click.option(
            "--timeout",
            type=float,
            default=None,
            help=f"Seconds a whole reply may take [default: {Timeouts().total:g}].",
        ),
        click.option(
            *(("-o",) if short_option else ()),
            "--option",
            "options",
            multiple=True,
            callback=parse_options,
            metavar="NAME=VALUE",
            help="Set one of the Space's extra chat inputs (see 'qwen-gradio info'), e.g."
            " --option model_size=32B; repeatable.",
        ),
        click.option(
            "--transport",
            type=click.Choice(TRANSPORTS),
            default="auto",
            show_default=True,
            help="How jobs reach the Space: qwen_gradio's own protocol code, or gradio_client's"
            " Job.",
        ),
        click.option(
            "--attempts",
            type=click.IntRange(1, 100),
            default=None,
            help="Tries per reply before its first token, when a Space is busy, rate-limited,"
            " away or slow to answer, on another Space of the pool or later [default: 3].",
        ),
        click.option(
            "--max-input-tokens",
            type=click.IntRange(min=0),
            default=None,
            help="The longest prompt sent, in Qwen's tokens (longer: refused before any request;"
            " 0: no limit) [default: 30720, Qwen2.5-Max's; env: QWEN_GRADIO_MAX_INPUT_TOKENS].",
        ),
        click.option(
            "--no-cache",
            is_flag=True,
            help="Do not read or write the on-disk cache of what connecting learnt [env:"
            f" {NO_CACHE_ENV}=1].",
        ),
        click.option(
            "--state",
            default=None,
            metavar="URL",
            help="Share what is learnt of the Spaces (replies in flight, cooldowns, queue waits;"
            " serve: stored responses, key limits) with every process naming the same state:"
            " redis://host:port[/db] (Redis or Valkey), sqlite:///path (one machine), or"
            f" 'local' [default: local; env: {STATE_ENV}].",
        ),
    ]


def exit_code(error: BaseException) -> int:
    """The exit code an error means (its class's ``exit_code``)."""
    return error.exit_code if isinstance(error, QwenGradioError) else 1


def error_line(error: QwenGradioError) -> str:
    kind = type(error).__name__
    return f"qwen-gradio: {kind}: {error.message}"


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Exit codes:\n\n\b\n" + EXIT_HELP,
)
@click.version_option(__version__, prog_name="qwen-gradio")
def main() -> None:
    """Chat with Qwen2.5-Max (or a Space built like its demo) from the terminal or a web page."""


# -- chat -----------------------------------------------------------------------------------


class StatusLine:
    """The queue position on stderr, erased when text starts; silent when stderr is no tty."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.shown = False

    def show(self, status: QueueStatus) -> None:
        if not self.enabled:
            return
        self.stream.write("\r\033[K" + status.describe())
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self.shown = False


@dataclass
class PrintedReply:
    """What the CLI printed of one reply, and when its first text came."""

    text: str = ""
    deltas: int = 0
    first_delta_seconds: float | None = None
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def stream_reply(stream: Stream, as_json: bool, prefix: str = "") -> PrintedReply:
    """Print one reply as it streams (``prefix`` before its first text); raises what the stream
    raises, once the job is cancelled."""
    out = sys.stdout
    status_line = StatusLine(sys.stderr)
    reply, started = PrintedReply(), time.monotonic()
    try:
        for event in stream.events():
            if isinstance(event, QueueStatus):
                if not reply.deltas:
                    status_line.show(event)
                continue
            if isinstance(event, Retrying):  # one line per retry, on stderr
                status_line.clear()
                click.echo(f"qwen-gradio: {event.describe()}", err=True)
                continue
            if not isinstance(event, TextDelta):
                continue
            status_line.clear()
            if reply.first_delta_seconds is None:
                reply.first_delta_seconds = time.monotonic() - started
                out.write(prefix)
            reply.deltas += 1
            if as_json:
                delta = {"type": "delta", "text": event.delta}
                out.write(json.dumps(delta, ensure_ascii=False) + "\n")
            else:
                out.write(event.delta)
            out.flush()
    finally:
        status_line.clear()
        stream.close()
    reply.text, reply.seconds = stream.text, time.monotonic() - started
    return reply


def done_object(reply: PrintedReply, stream: Stream) -> dict[str, Any]:
    return {
        "type": "done",
        "text": reply.text,
        "deltas": reply.deltas,
        "first_delta_seconds": round(reply.first_delta_seconds or 0.0, 4),
        "seconds": round(reply.seconds, 4),
        "rewrites": stream.rewrites,
        "finish_reason": stream.finish_reason,
        "session_hash": stream.session_hash,
    }


def one_shot(
    client: QwenClient, prompt: str, system: str | None, as_json: bool, asked: ReplyArguments
) -> int:
    stream = client.stream(prompt, system=system, **asked)
    try:
        reply = stream_reply(stream, as_json)
    except KeyboardInterrupt:
        click.echo("", err=True)
        return INTERRUPTED
    except QwenGradioError as error:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "type": "error",
                        "error": type(error).__name__,
                        "message": error.message,
                        "partial_text": error.partial_text,
                    },
                    ensure_ascii=False,
                )
            )
        elif error.partial_text:
            click.echo("")
        click.echo(error_line(error), err=True)
        return exit_code(error)
    if as_json:
        click.echo(json.dumps(done_object(reply, stream), ensure_ascii=False))
    elif not reply.text.endswith("\n"):
        click.echo("")
    return 0


REPL_COMMANDS = """Commands:
  /system TEXT   set the system prompt (now: {system!r}); /system shows it,
                 /system --reset restores the default
  /reset         start a new conversation
  /help          show this
  /exit          leave (or Ctrl-D); Ctrl-C stops a reply
  //TEXT         send "/TEXT" as a message (a line starting with one "/" is a command)
"""
REPL_HELP = "Chatting with {space}. " + REPL_COMMANDS
_COMMAND = re.compile(r"/([A-Za-z][\w-]*)(?:\s|$)")


def repl(client: QwenClient, system: str | None, asked: ReplyArguments | None = None) -> int:
    """An interactive chat that keeps the conversation as real history."""
    try:
        import readline  # noqa: F401 - line editing and history for input()
    except ImportError:  # pragma: no cover - not on every platform
        pass
    chat = ReplChat(client, system or DEFAULT_SYSTEM, asked or ReplyArguments())
    click.echo(REPL_HELP.format(space=client.space_url, system=chat.system), err=True)
    while True:
        try:
            line = input("you> ")
        except EOFError:
            click.echo("", err=True)
            return 0
        except KeyboardInterrupt:
            click.echo("", err=True)
            continue
        text = line.strip()
        if not text:
            continue
        if text.startswith("//"):  # a message that starts with "/"
            chat.send(text[1:])
        elif text.startswith("/"):
            if not chat.command(text):
                return 0
        else:
            chat.send(line)


@dataclass
class ReplChat:
    """The REPL's conversation: its system prompt and history, its commands."""

    client: QwenClient
    system: str
    asked: ReplyArguments = field(default_factory=lambda: ReplyArguments())
    history: list[dict[str, str]] = field(default_factory=list)

    def command(self, text: str) -> bool:
        """Carry out a /command; False for /exit and /quit."""
        command = _COMMAND.match(text)
        name = command.group(1) if command else text.split()[0][1:]
        if name in ("exit", "quit"):
            return False
        if name == "help":
            click.echo(REPL_COMMANDS.format(system=self.system), err=True, nl=False)
        elif name == "reset":
            self.history.clear()
            click.echo("(new conversation)", err=True)
        elif name == "system":
            given = text[len("/system") :].strip()
            if given == "--reset":
                self.system = DEFAULT_SYSTEM
            elif given:
                self.system = given
            click.echo(f"(system prompt: {self.system!r})", err=True)  # no text: show it
        else:
            click.echo(
                f"(unknown command /{name}: /help lists the commands; start a message"
                " with // to send it as it is)",
                err=True,
            )
        return True

    def send(self, line: str) -> None:
        """Stream the reply to ``line``; the turn joins the history, a cut reply's text too."""
        stream = self.client.stream(
            [*self.history, {"role": "user", "content": line}], system=self.system, **self.asked
        )
        try:
            reply = stream_reply(stream, as_json=False, prefix="qwen> ")
        except KeyboardInterrupt:
            click.echo("\n(stopped)", err=True)
            reply = PrintedReply(text=stream.text)
        except QwenGradioError as error:
            if error.partial_text:
                click.echo("")
            click.echo(error_line(error), err=True)
            reply = PrintedReply(text=error.partial_text)
        else:
            if not reply.text.endswith("\n"):
                click.echo("")
        self.history.append({"role": "user", "content": line})
        self.history.append({"role": "assistant", "content": reply.text})


@main.command(epilog="Exit codes:\n\n\b\n" + EXIT_HELP)
@click.argument("prompt", required=False)
@click.option("--system", default=None, help="System prompt [default: the Space's].")
@click.option(
    "--stop",
    multiple=True,
    help="End the reply before this text (repeatable, up to 4); the job stops on the Space.",
)
@click.option(
    "--max-tokens",
    type=int,
    default=None,
    help="Cut the reply at this many of Qwen's tokens (needs the tokens extra).",
)
@client_options()
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Write JSON lines: each delta, then the whole text and timing.",
)
def chat(
    prompt: str | None,
    system: str | None,
    stop: tuple[str, ...],
    max_tokens: int | None,
    settings: Settings,
    as_json: bool,
) -> None:
    """Send PROMPT and stream the reply to stdout.

    Without PROMPT, the prompt is read from stdin when stdin is not a terminal; on a terminal an
    interactive chat starts, which keeps the conversation.
    """
    stdin = sys.stdin
    asked = ReplyArguments(stop=list(stop) or None, max_tokens=max_tokens)
    if prompt is None or prompt == "-":
        if prompt is None and stdin.isatty() and not as_json:
            with QwenClient(settings=settings) as client:
                sys.exit(repl(client, system, asked))
        prompt = stdin.read()
    with QwenClient(settings=settings) as client:
        try:
            code = one_shot(client, prompt, system, as_json, asked)
        except QwenGradioError as error:  # bad input, refused before any request
            click.echo(error_line(error), err=True)
            code = exit_code(error)
    sys.exit(code)


# -- batch -----------------------------------------------------------------------------------


@main.command(epilog="Exit codes: 0 every prompt answered, 1 some failed, 2 bad input, 130 Ctrl-C.")
@click.argument("input_file", metavar="INPUT.jsonl", type=click.File("r", encoding="utf-8"))
@click.option(
    "-o",
    "--output",
    "output",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="JSON Lines to append answers to; prompts it already answers are skipped.",
)
@click.option(
    "--concurrency",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Jobs at once (a public Space runs a few at a time; more just wait in its queue).",
)
@click.option("--system", default=None, help="System prompt for every prompt.")
@click.option(
    "--usage",
    is_flag=True,
    help="Count each reply's tokens with Qwen's tokenizer (the tokens extra) into its line.",
)
@client_options(short_option=False)  # -o is the output here
def batch(
    input_file: TextIO,
    output: Path,
    concurrency: int,
    system: str | None,
    usage: bool,
    settings: Settings,
) -> None:
    """Answer every prompt of INPUT.jsonl into --output, resumably.

    Each input line is a JSON string (a prompt) or an object with "messages" (OpenAI style) or
    "prompt", and an optional "id" (default: the line number). Each output line, written as its
    reply completes, holds the id, the input line number ("index"), the text, the error if it
    failed, the Space that answered, the attempts, the token counts ("usage", with --usage and
    Qwen's tokenizer installed; else null), and the queue and generation seconds. A
    prompt is tried again (--attempts) as any reply is, before its first token. Rerun with the
    same --output to resume: answered ids are skipped, failed ones tried again. Progress goes to
    stderr.
    """
    import asyncio

    from .batch import BatchInputError, Summary, read_items, run_batch

    try:
        items = read_items(list(input_file))
    except BatchInputError as error:
        click.echo(error_line(error), err=True)
        sys.exit(2)
    summary = Summary()

    async def run() -> None:
        # unattended: a Space that asks for a long wait (a GPU quota) is waited for
        async with QwenClient(settings=settings.replace(max_wait=MAX_STATED_WAIT)) as client:
            if settings.options:  # a wrong --option is refused before any prompt is sent
                await client.aconnect()
            await run_batch(
                client,
                items,
                output,
                concurrency=concurrency,
                system=system,
                summary=summary,
                usage=usage,
            )

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        summary.interrupted = True
    except QwenGradioError as error:  # a wrong --option, found once the Space is known
        click.echo(error_line(error), err=True)
        sys.exit(exit_code(error))
    click.echo(summary.line(), err=True)
    if summary.interrupted:
        sys.exit(INTERRUPTED)
    sys.exit(1 if summary.failed else 0)


# -- info ------------------------------------------------------------------------------------


@main.command()
@client_options()
@click.option("--json", "as_json", is_flag=True, help="Write one JSON object.")
def info(settings: Settings, as_json: bool) -> None:
    """Show what the Space is (each Space of a pool): its gradio, protocol, chat event and the
    options it takes."""
    with QwenClient(settings=settings) as client:
        if len(client.members) == 1:
            try:
                results: list[SpaceConnection | QwenGradioError] = [client.connect()]
            except QwenGradioError as error:
                click.echo(error_line(error), err=True)
                sys.exit(exit_code(error))
        else:
            results = client.connect_all()
    names = [member.name for member in client.members]
    if as_json:
        described = [
            {"space": name, "error": {"type": type(r).__name__, "message": r.message}}
            if isinstance(r, QwenGradioError)
            else space_facts(r)
            for name, r in zip(names, results, strict=True)
        ]
        body = described[0] if len(described) == 1 else {"pool": described}
        click.echo(json.dumps(body, ensure_ascii=False))
    else:
        for k, (name, result) in enumerate(zip(names, results, strict=True)):
            if k:
                click.echo("")
            if isinstance(result, QwenGradioError):
                click.echo(f"Space:      {name}")
                click.echo(f"error:      {type(result).__name__}: {result.message}")
            else:
                show_space(result)
    failed = [r for r in results if isinstance(r, QwenGradioError)]
    if len(failed) == len(results):
        sys.exit(exit_code(failed[0]))


def space_facts(conn: SpaceConnection) -> dict[str, Any]:
    """What ``info --json`` says of one Space."""
    endpoint = conn.endpoint
    options = [
        {
            "name": o.name,
            "label": o.label,
            "component": o.component,
            "choices": None if o.choices is None else [value for _, value in o.choices],
            "minimum": o.minimum,
            "maximum": o.maximum,
            "default": o.default,
        }
        for o in endpoint.options
    ]
    return {
        "space": conn.url,
        "gradio": endpoint.gradio_version,
        "protocol": endpoint.protocol,
        "transport": conn.transport,
        "chat_event": {"fn_index": endpoint.fn_index, "api_name": endpoint.api_name},
        "history_format": endpoint.chat_format.value,
        "system_prompt": endpoint.system_input is not None,
        "options": options,
    }


def show_space(conn: SpaceConnection) -> None:
    """What ``info`` says of one Space, for people."""
    endpoint = conn.endpoint
    click.echo(f"Space:      {conn.url}")
    click.echo(f"gradio:     {endpoint.gradio_version} (protocol {endpoint.protocol})")
    click.echo(f"transport:  {conn.transport}")
    click.echo(f"chat event: fn_index {endpoint.fn_index} (/{endpoint.api_name})")
    click.echo(f"history:    {endpoint.chat_format.value}")
    click.echo(f"system:     {'yes' if endpoint.system_input is not None else 'no'}")
    if not endpoint.options:
        click.echo("options:    none")
    for k, option in enumerate(endpoint.options):
        click.echo(("options:    " if k == 0 else " " * 12) + option.describe())


# -- serve -----------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """Whether serving on ``host`` answers this machine only."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=int, default=8000, show_default=True, help="Port (0: a free one).")
@click.option(
    "--api-key",
    envvar="QWEN_GRADIO_API_KEY",
    default=None,
    help="Require 'Authorization: Bearer KEY' on every route [env: QWEN_GRADIO_API_KEY].",
)
@click.option(
    "--api-keys",
    "keys_file",
    type=click.File("r", encoding="utf-8"),
    default=None,
    help='A JSON file of named keys, each with an optional limit: {"alice": "sk-...",'
    ' "ci": {"key": "sk-...", "rpm": 30}} [env: QWEN_GRADIO_API_KEYS, the JSON itself].',
)
@client_options()
@click.option(
    "--keepalive",
    type=float,
    default=10.0,
    show_default=True,
    help="Seconds a streamed request may wait in the Space's queue before its headers go out,"
    " and between the comment lines that keep it alive.",
)
@click.option(
    "--max-body",
    type=click.IntRange(min=1),
    default=4 * 1024 * 1024,
    show_default=True,
    help="The largest request body accepted, in bytes (413 beyond it).",
)
@click.option(
    "--max-replies",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Replies in flight at once; one more request gets a 503 with Retry-After.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    metavar="ORIGIN",
    help="A browser origin allowed to call the API (repeatable; none by default: CORS off).",
)
@click.option(
    "--allowed-host",
    "hosts",
    multiple=True,
    metavar="NAME",
    help="A Host name answered besides localhost, 127.0.0.1 and [::1] (repeatable; e.g. behind"
    " a reverse proxy; '*': any). Bound elsewhere than loopback, without one: any.",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=10.0,
    show_default=True,
    help="Seconds the replies in flight may go on after SIGTERM or Ctrl-C (a second one: now).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Server processes on the one port, sharing one state (--state; without it, a SQLite"
    " file of their own); --max-replies is per process.",
)
@click.option("--quiet", is_flag=True, help="No access log (one line per request on stderr).")
def serve(
    host: str,
    port: int,
    api_key: str | None,
    keys_file: TextIO | None,
    settings: Settings,
    keepalive: float,
    max_body: int,
    max_replies: int,
    cors_origins: tuple[str, ...],
    hosts: tuple[str, ...],
    grace: float,
    workers: int,
    quiet: bool,
) -> None:
    """Serve an OpenAI-compatible API for the Space (needs the 'serve' extra)."""
    try:
        from .serve import ServeOptions, create_app
        from .serve.api import allowed_hosts, environment_keys
        from .serve.deployment import log_to_stderr
        from .serve.keys import load_keys
        from .serve.server import run
    except ImportError as exc:
        raise click.ClickException(
            "the API server needs starlette, uvicorn and pydantic:"
            f" pip install 'qwen-gradio[serve]' ({exc})"
        ) from None
    try:
        keys = (
            environment_keys() if keys_file is None else load_keys(keys_file.read(), keys_file.name)
        )
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--api-keys") from None
    options = ServeOptions(
        api_key=api_key,
        api_keys=keys,
        keepalive=keepalive,
        max_body=max_body,
        max_replies=max_replies,
        cors_origins=cors_origins,
        grace=grace,
        allowed_hosts=allowed_hosts(hosts, loopback=is_loopback(host)),
    )
    check_port_free(host, port)
    log_to_stderr(access=not quiet)
    if workers > 1:
        from .serve.workers import run_workers

        run_workers(settings, options, host=host, port=port, workers=workers, quiet=quiet)
        return
    app = create_app(settings, options)
    try:
        run(app, app.state.drain, host=host, port=port, grace=grace)
    finally:
        app.state.client.close()  # also after a forced exit, which skips the app's shutdown


def check_port_free(host: str, port: int) -> None:
    """A one-line error for a busy port, rather than the server's traceback."""
    import socket

    if port == 0:
        return
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise click.ClickException(
                f"cannot serve on {host}:{port}: {error.strerror}; pick another --port"
            ) from None


# -- ui and replica --------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to serve on.")
@click.option("--port", type=int, default=None, help="Port [default: 7860, or the next free one].")
@client_options(replica=True)
def ui(host: str, port: int | None, settings: Settings, replica: bool) -> None:
    """Serve a local web chat page for the Space (needs the 'ui' extra)."""
    try:
        from .ui import serve
    except ImportError as exc:
        raise click.ClickException(
            f"the web UI needs gradio: pip install 'qwen-gradio[ui]' ({exc})"
        ) from None
    if port is not None:
        check_port_free(host, port)
    serve(settings, replica=replica, host=host, port=port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=7860, show_default=True, help="0 picks a free port.")
@click.option(
    "--delay", type=float, default=0.03, show_default=True, help="Seconds between tokens."
)
@click.option(
    "--variant",
    type=click.Choice(["max", "qwen2.5"]),
    default="max",
    show_default=True,
    help="qwen2.5: the Qwen2.5 demo's layout, with a model-size radio.",
)
def replica(host: str, port: int, delay: float, variant: str) -> None:
    """Serve the offline replica of the Qwen2.5-Max Space (needs the 'ui' extra)."""
    check_port_free(host, port)
    click.echo("Starting the replica (gradio takes a few seconds to load)…", err=True)
    from .replica import main as replica_main

    argv = ["--host", host, "--port", str(port), "--delay", str(delay), "--variant", variant]
    sys.exit(replica_main(argv))
