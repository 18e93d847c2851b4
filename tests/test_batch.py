"""``qwen-gradio batch`` in a subprocess against the replica: answers, resume after SIGKILL,
retries on 429, Ctrl-C, bad input, progress on a terminal and off one."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from .conftest import ROOT, Replica
from .helpers import FaultyFrontEnd, replica_reply

REPLY = replica_reply("hello")


def command(space: str, input_file: Path, output: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "qwen_gradio",
        "batch",
        str(input_file),
        "-o",
        str(output),
        "--space",
        space,
        *extra,
    ]


def run(
    space: str, input_file: Path, output: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        command(space, input_file, output, *extra),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def write_lines(path: Path, values: list[Any]) -> Path:
    path.write_text("".join(json.dumps(v) + "\n" for v in values))
    return path


def records(output: Path) -> list[dict[str, Any]]:
    text = output.read_text()
    assert text == "" or text.endswith("\n")  # only whole lines
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def paths(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    yield tmp_path / "in.jsonl", tmp_path / "out.jsonl"


def test_every_prompt_is_answered_with_its_id_and_timings(
    replica6: Replica, paths: tuple[Path, Path]
) -> None:
    source, output = paths
    write_lines(
        source,
        [
            "hello",
            {"id": "sys", "messages": [{"role": "user", "content": "/system"}]},
            {"id": 42, "prompt": "/echo forty two"},
            {
                "messages": [
                    {"role": "user", "content": "u1"},
                    {"role": "assistant", "content": "a1"},
                    {"role": "user", "content": "/history"},
                ]
            },
        ],
    )
    done = run(replica6.url, source, output, "--system", "Be brief.", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    by_id = {r["id"]: r for r in records(output)}
    assert set(by_id) == {1, "sys", 42, 4}
    assert by_id[1]["text"] == REPLY and by_id[1]["index"] == 1
    assert by_id["sys"]["text"] == "Be brief."
    assert by_id[42]["text"] == "forty two"
    assert by_id[4]["text"] == '[["u1", "a1"]]'
    for record in by_id.values():
        assert record["error"] is None and record["attempts"] == 1
        assert record["queue_seconds"] >= 0 and record["generation_seconds"] >= 0
    # stderr is not a terminal: plain progress lines, no bar, and a summary last
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    lines = done.stderr.splitlines()
    assert lines[-2].startswith("batch: 4/4, 4 done, 0 failed, 0 in flight")
    assert lines[-1].startswith("batch done: 4 answered, 0 failed, 0 skipped")


def test_app_errors_are_kept_not_retried_and_retried_on_a_rerun(
    replica6: Replica, paths: tuple[Path, Path]
) -> None:
    source, output = paths
    write_lines(source, [{"id": "bad", "prompt": "/fail 2 the model broke"}, "/echo fine"])
    runs = replica6.next_run()
    done = run(replica6.url, source, output)
    assert done.returncode == 1
    failed = next(r for r in records(output) if r["id"] == "bad")
    assert failed["error"] == {"type": "SpaceError", "message": "the model broke"}
    assert (failed["text"], failed["attempts"]) == ("w1 w2 ", 1)
    assert replica6.next_run() == runs + 2  # one job each: the app error was not retried
    again = run(replica6.url, source, output)
    assert again.returncode == 1
    assert "1 skipped (answered before)" in again.stderr.splitlines()[-1]
    assert [r["id"] for r in records(output)].count("bad") == 2
    assert [r["id"] for r in records(output)].count(2) == 1


def test_bad_input_is_refused_before_any_request(
    replica6: Replica, paths: tuple[Path, Path]
) -> None:
    source, output = paths
    before = len(replica6.requests())
    for lines, message in [
        ('"fine"\n{"prompt": "ok"}\nnot json\n', "line 3: not JSON"),
        ('{"id": 1, "prompt": "a"}\n{"id": 1, "prompt": "b"}\n', "line 2: the id 1 is used twice"),
        ('{"messages": []}\n', "line 1: messages is empty"),
        ("[1, 2]\n", "line 1: a line is a JSON string or an object"),
    ]:
        source.write_text(lines)
        done = run(replica6.url, source, output)
        assert done.returncode == 2
        assert message in done.stderr and "Traceback" not in done.stderr
    assert not output.exists()
    assert len(replica6.requests()) == before


def test_a_killed_run_resumes_and_answers_each_id_once(
    replica6: Replica, paths: tuple[Path, Path]
) -> None:
    source, output = paths
    write_lines(source, [{"id": f"p{k}", "prompt": f"/long {40 + k}"} for k in range(30)])
    first_run = replica6.next_run()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command(replica6.url, source, output, "--concurrency", "3"),
        stderr=subprocess.DEVNULL,
        env=env,
    )
    replica6.wait(first_run + 6)  # some replies are written, others in flight
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    killed = records(output)  # every line whole, even though it was killed
    assert 0 < len(killed) < 30
    done = run(replica6.url, source, output, "--concurrency", "3")
    assert done.returncode == 0, done.stderr
    final = records(output)
    ids = [r["id"] for r in final]
    assert sorted(ids) == sorted(f"p{k}" for k in range(30))  # each exactly once
    for record in final:
        k = int(record["id"][1:])
        assert record["text"] == "".join(f"t{n} " for n in range(40 + k))
    assert f"{len(killed)} skipped (answered before)" in done.stderr


def test_a_space_that_refuses_with_429_is_retried_after_its_stated_wait(
    replica6: Replica, paths: tuple[Path, Path]
) -> None:
    source, output = paths
    refused: list[str] = []

    def rule(method: str, path: str) -> str:
        if path.endswith("/queue/join") and len(refused) < 2:
            refused.append(path)
            return "429"
        return "forward"

    write_lines(source, ["/echo got through"])
    with FaultyFrontEnd(replica6.url, rule) as front:
        done = run(front.url, source, output)
    assert done.returncode == 0, done.stderr
    (record,) = records(output)
    assert (record["text"], record["error"], record["attempts"]) == ("got through", None, 3)
    assert len(refused) == 2
    assert "2 retries" in done.stderr.splitlines()[-1]


def test_ctrl_c_cancels_the_jobs_in_flight(replica6: Replica, paths: tuple[Path, Path]) -> None:
    source, output = paths
    write_lines(source, ["/echo quick"] + ["/long 5000"] * 4)
    first_run = replica6.next_run()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        command(replica6.url, source, output, "--concurrency", "2"),
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    # A third job starts only once a slot is free, and only the quick one ends (after its line
    # is written): then two long jobs are in flight.
    replica6.started(first_run + 2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert err.splitlines()[-1].startswith("batch interrupted: 1 answered, 0 failed")
    assert "Traceback" not in err
    long_runs = [r["index"] for r in replica6.runs()[first_run:] if r["query"] == "/long 5000"]
    assert len(long_runs) >= 2
    for run_index in long_runs:
        assert replica6.wait(run_index)["outcome"] == "stopped"
    assert [r["text"] for r in records(output)] == ["quick"]


@pytest.mark.parametrize("columns", [120, 0])  # 0: a pty that reports no width
def test_a_progress_bar_on_a_terminal(
    replica6: Replica, paths: tuple[Path, Path], columns: int
) -> None:
    source, output = paths
    write_lines(source, ["/echo a", "/echo b", "/echo c"])
    argv = command(replica6.url, source, output)
    transcript = io.StringIO()
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    child = pexpect.spawn(
        argv[0],
        argv[1:],
        env={**env, "PYTHONPATH": str(ROOT)},
        encoding="utf-8",
        timeout=60,
        dimensions=(30, columns),
    )
    child.logfile_read = transcript
    child.expect(pexpect.EOF)
    child.close()
    seen = transcript.getvalue()
    assert child.exitstatus == 0
    assert len(records(output)) == 3
    assert "3/3" in seen and "\r" in seen  # tqdm's bar, redrawn in place
    drawn = re.findall(r"(\d)/3 \[[^]]*\]?[^\r]*?(\d) done", seen)
    assert drawn and all(bar == done for bar, done in drawn)  # the counts match the bar
    assert "3 done, 0 failed, 0 in flight" in seen
    assert "batch done: 3 answered" in seen
