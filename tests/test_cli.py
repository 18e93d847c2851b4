"""The qwen-gradio command line: one-shot, stdin, --json, exit codes, and the REPL in a real
pseudo-terminal (pexpect)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pexpect
import pytest
from click.testing import CliRunner

from qwen_gradio.cli import main
from qwen_gradio.replica import ReplicaServer
from qwen_gradio.settings import SETTING_NAMES

from .conftest import Replica
from .helpers import assert_stopped_early, replica_reply

REPLY = replica_reply("hello")


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), input=stdin)
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def test_one_shot_streams_the_reply(replica6: Replica) -> None:
    code, out, err = invoke("chat", "--space", replica6.url, "hello")
    assert (code, out, err) == (0, REPLY + "\n", "")


def test_the_prompt_can_come_from_stdin(replica6: Replica) -> None:
    code, out, _ = invoke("chat", "--space", replica6.url, stdin="/echo from a pipe")
    assert (code, out) == (0, "from a pipe\n")
    code, out, _ = invoke("chat", "--space", replica6.url, "-", stdin="/echo dash")
    assert (code, out) == (0, "dash\n")


def test_system_prompt_option(replica6: Replica) -> None:
    code, out, _ = invoke("chat", "--space", replica6.url, "--system", "Be brief.", "/system")
    assert (code, out) == (0, "Be brief.\n")


def test_json_lines(replica6: Replica) -> None:
    code, out, _ = invoke("chat", "--space", replica6.url, "--json", "/echo a b")
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [line["text"] for line in lines if line["type"] == "delta"] == ["a", " ", "b"]
    done = lines[-1]
    assert done["type"] == "done" and done["text"] == "a b" and done["deltas"] == 3
    assert done["seconds"] >= done["first_delta_seconds"] >= 0
    assert len(done["session_hash"]) == 12


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["  "], 2, "InvalidMessagesError: the last user message is empty"),
        (
            ["--space", "http://127.0.0.1:9", "--attempts", "1", "hi"],
            3,
            "SpaceUnavailableError: cannot reach",
        ),
        (["/fail 2 the model broke"], 4, "SpaceError: the model broke"),
        (["--timeout", "0.5", "/slow 3 late"], 7, "StreamTimeoutError: no reply text"),
    ],
)
def test_errors_are_one_line_with_distinct_exit_codes(
    replica6: Replica, args: list[str], code: int, message: str
) -> None:
    if "--space" not in args:
        args = ["--space", replica6.url, *args]
    exit_code, out, err = invoke("chat", *args)
    assert exit_code == code
    assert err.startswith("qwen-gradio: " + message) and err.count("\n") == 1
    if code == 4:
        assert out == "w1 w2 \n"  # the partial reply stays on stdout


def test_json_errors_are_json_too(replica6: Replica) -> None:
    code, out, err = invoke("chat", "--space", replica6.url, "--json", "/fail 1 nope")
    last = json.loads(out.splitlines()[-1])
    assert code == 4 and last == {
        "type": "error",
        "error": "SpaceError",
        "message": "nope",
        "partial_text": "w1 ",
    }
    assert err == "qwen-gradio: SpaceError: nope\n"


def test_a_full_queue_has_its_own_exit_code() -> None:
    with ReplicaServer(concurrency_limit=1, max_queue=1) as server:
        from qwen_gradio import QwenClient

        with QwenClient(server.url) as client:
            running = client.stream("/lockstep one two")
            assert next(running) == "one"
            waiting = client.stream("/echo waiting")
            waiting.next_event()
            code, _, err = invoke("chat", "--space", server.url, "refused")
            running.close()
            waiting.close()
    assert code == 5 and "QueueFullError" in err


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "qwen_gradio", *args]


def test_ctrl_c_cancels_the_job_and_exits_130(replica: Replica) -> None:
    run = replica.next_run()
    process = subprocess.Popen(
        cli("chat", "--space", replica.url, "/long 5000"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.read(3) == "t0 "  # the reply is streaming
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert "Traceback" not in err
    result = replica.wait(run)
    assert_stopped_early(result, 5000)


#: A flag per setting (``SETTING_NAMES``): --option for options, --no-cache for cache.
CLIENT_FLAGS = tuple(
    {"options": "--option", "cache": "--no-cache"}.get(name, "--" + name.replace("_", "-"))
    for name in SETTING_NAMES
)


@pytest.mark.parametrize("command", ["chat", "batch", "info", "serve", "ui"])
def test_every_command_takes_every_client_flag(command: str) -> None:
    """One decorator gives every command the client's settings (``ui`` too)."""
    code, out, _ = invoke(command, "--help")
    assert code == 0
    for flag in CLIENT_FLAGS:
        assert flag in out, (command, flag)
    assert ("-o, --option" in out) is (command != "batch")  # batch's -o is its output file


def test_a_wrong_client_flag_is_a_usage_error_before_any_request() -> None:
    code, _, err = invoke("info", "--space", "not a space")
    assert code == 2 and "space must be a Space id" in err
    code, _, err = invoke("ui", "--timeout", "-1")
    assert code == 2 and "timeout must be a positive number" in err


def test_help_documents_the_exit_codes() -> None:
    code, out, _ = invoke("chat", "--help")
    assert code == 0
    for line in (
        "2  bad input",
        "3  the Space cannot be reached",
        "4  the Space's app failed",
        "5  the Space's queue is full",
        "6  rate limited",
        "7  a timeout ran out",
        "130  interrupted",
    ):
        assert line in out


# -- in a real terminal --------------------------------------------------------------------


@pytest.fixture
def terminal(replica6: Replica) -> Iterator[pexpect.spawn]:
    env = {**os.environ, "TERM": "dumb", "PYTHONUNBUFFERED": "1"}
    child = pexpect.spawn(
        sys.executable,
        ["-m", "qwen_gradio", "chat", "--space", replica6.url],
        env=env,
        encoding="utf-8",
        timeout=20,
        dimensions=(40, 200),
    )
    yield child
    child.close(force=True)


def test_the_repl_keeps_the_conversation(terminal: pexpect.spawn, replica6: Replica) -> None:
    terminal.expect_exact("you> ")
    terminal.sendline("//echo hi there")  # "/echo ..." is a message to the replica
    terminal.expect_exact("qwen> hi there")
    terminal.expect_exact("you> ")

    terminal.sendline("/system Be a pirate.")
    terminal.expect_exact("(system prompt: 'Be a pirate.')")
    terminal.sendline("/system")  # shows it, changes nothing
    terminal.expect_exact("(system prompt: 'Be a pirate.')")
    run = replica6.next_run()
    terminal.sendline("//history")
    terminal.expect_exact('[["/echo hi there", "hi there"]]')
    assert replica6.wait(run)["system"] == "Be a pirate."

    terminal.expect_exact("you> ")
    terminal.sendline("/system --reset")
    terminal.expect_exact("(system prompt: 'You are a helpful assistant.')")
    terminal.sendline("/reset")
    terminal.expect_exact("(new conversation)")
    terminal.sendline("//history")
    terminal.expect_exact("qwen> []")
    terminal.expect_exact("you> ")
    terminal.sendline("/exit")
    terminal.expect(pexpect.EOF)
    terminal.close()
    assert terminal.exitstatus == 0


def test_the_repl_answers_help_and_refuses_unknown_commands(
    terminal: pexpect.spawn, replica6: Replica
) -> None:
    """/help lists the commands; an unknown /word is refused, not sent to the Space."""
    terminal.expect_exact("you> ")
    run = replica6.next_run()
    terminal.sendline("/help")
    terminal.expect_exact("/reset         start a new conversation")
    terminal.expect_exact("you> ")
    terminal.sendline("/frobnicate now")
    terminal.expect_exact("(unknown command /frobnicate: /help lists the commands")
    terminal.expect_exact("you> ")
    terminal.sendline("//echo sent")
    terminal.expect_exact("qwen> sent")
    assert replica6.wait(run)["query"] == "/echo sent"  # the first job the Space saw
    terminal.sendline("/exit")
    terminal.expect(pexpect.EOF)


def test_ctrl_c_in_the_repl_stops_the_reply_and_returns_to_the_prompt(
    terminal: pexpect.spawn, replica6: Replica
) -> None:
    terminal.expect_exact("you> ")
    run = replica6.next_run()
    terminal.sendline("//long 5000")
    terminal.expect_exact("t3 ")
    terminal.sendintr()
    terminal.expect_exact("(stopped)")
    terminal.expect_exact("you> ")
    result = replica6.wait(run)
    assert_stopped_early(result, 5000)
    terminal.sendline("//echo still here")
    terminal.expect_exact("qwen> still here")
    terminal.expect_exact("you> ")
    terminal.sendeof()  # Ctrl-D leaves
    terminal.expect(pexpect.EOF)


def test_the_queue_position_shows_on_a_terminal_and_then_goes() -> None:
    from qwen_gradio import QwenClient

    with ReplicaServer(concurrency_limit=1) as server, QwenClient(server.url) as blocker:
        holding = blocker.stream("/lockstep hold on")
        assert next(holding) == "hold"
        child = pexpect.spawn(
            sys.executable,
            ["-m", "qwen_gradio", "chat", "--space", server.url, "/echo served"],
            encoding="utf-8",
            timeout=20,
        )
        child.expect_exact("Waiting in the Space's queue: you are next")
        holding.close()
        child.expect_exact("served")
        assert child.before.endswith("\r\x1b[K")  # the status line was erased before the text
        child.expect(pexpect.EOF)
        child.close()
        assert child.exitstatus == 0


@pytest.mark.parametrize("command", ["ui", "replica", "serve"])
def test_a_busy_port_is_a_one_line_error(command: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-m", "qwen_gradio", command, "--port", port],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1] == (
        f"Error: cannot serve on 127.0.0.1:{port}: Address already in use; pick another --port"
    )
    assert "Traceback" not in done.stderr and "GRADIO_SERVER_PORT" not in done.stderr


def test_info_shows_the_chat_event_and_its_options(sized_replica: Replica) -> None:
    code, out, _ = invoke("info", "--space", sized_replica.url)
    assert code == 0
    assert "chat event: fn_index 3 (/model_chat)" in out
    assert (
        """options:    model_size (radio "Model size"): 72B, 32B, 14B, 7B; default '72B'""" in out
    )
    code, out, _ = invoke(
        "info", "--space", sized_replica.url, "--json", "--transport", "gradio_client"
    )
    facts = json.loads(out)
    assert code == 0 and facts["transport"] == "gradio_client"
    assert facts["options"][0]["choices"] == ["72B", "32B", "14B", "7B"]


def test_options_on_the_command_line(sized_replica: Replica) -> None:
    code, out, _ = invoke("chat", "--space", sized_replica.url, "-o", "model_size=14B", "/options")
    assert (code, out) == (0, '{"model_size": "14B"}\n')
    code, out, _ = invoke("chat", "--space", sized_replica.url, "--option", "Model size=7B", "hi")
    assert (code, out.endswith("(7B). You said: hi\n")) == (0, True)
    runs = sized_replica.next_run()
    code, out, err = invoke("chat", "--space", sized_replica.url, "-o", "model_size=1B", "hi")
    assert (code, out) == (2, "")
    assert err == (
        "qwen-gradio: InvalidOptionError: '1B' is not a value of the Space's option"
        " 'model_size' (radio); allowed: 72B, 32B, 14B, 7B\n"
    )
    code, _, err = invoke("chat", "--space", sized_replica.url, "-o", "model_size", "hi")
    assert code == 2 and "'model_size' is not NAME=VALUE" in err
    assert sized_replica.next_run() == runs
