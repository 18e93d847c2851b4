"""A fleet of ``serve`` processes sharing one state, as a team runs it: three servers on a real
Redis (Debian's ``redis-server`` on a free port), and ``serve --workers 3`` on the embedded
SQLite state. Everything goes through real sockets; nothing is mocked.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import select
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from qwen_gradio.serve import SPACE_HEADER

from .conftest import ROOT, Replica
from .helpers import FaultyFrontEnd, RedisServer, ServerProcess, free_port, replica_reply

MODEL = "qwen-2.5-max"
FAILED = "failed ("  # the one line a server logs when its shared state goes away
BACK = "answers again (away"


def serve_command(spaces: list[str], *extra: str) -> tuple[list[str], int]:
    port = free_port()
    command = [sys.executable, "-m", "qwen_gradio", "serve", "--port", str(port), "--quiet"]
    for space in spaces:
        command += ["--space", space]
    return [*command, *extra], port


@contextmanager
def servers(
    count: int, spaces: list[str], tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[list[ServerProcess]]:
    """``count`` serve processes, started at once, each with its ``url``."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    made = []
    for _ in range(count):
        command, port = serve_command(spaces, *extra)
        server = ServerProcess(command, environment, str(tmp_path))
        server.url = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
        made.append(server)
    with ExitStack() as stack, concurrent.futures.ThreadPoolExecutor(count) as pool:
        for entered in pool.map(stack.enter_context, made):
            assert "Traceback" not in entered.startup
        yield made


def respond(url: str, text: str, previous: str | None = None, **headers: str) -> httpx.Response:
    """One Responses API request on a connection of its own."""
    body: dict[str, Any] = {"model": MODEL, "input": text}
    if previous is not None:
        body["previous_response_id"] = previous
    return httpx.post(f"{url}/v1/responses", json=body, headers=headers, timeout=60)


def chat(url: str, text: str) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=60)


def health(url: str) -> dict[str, Any]:
    return httpx.get(f"{url}/health", timeout=10).json()  # type: ignore[no-any-return]


def until(condition: Callable[[], Any], what: str, timeout: float = 20) -> Any:
    """Ask ``condition()`` again until it holds (each ask is a request: no sleeping), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
    raise AssertionError(f"never: {what}")


def state_shared(url: str) -> float:
    """The server's ``qwen_gradio_state_shared``, read with Prometheus' own parser."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    (family,) = [
        f for f in text_string_to_metric_families(text) if f.name == "qwen_gradio_state_shared"
    ]
    return float(family.samples[0].value)


def member(url: str, space: str) -> dict[str, Any]:
    (found,) = [m for m in health(url)["members"] if m["space"] == space]
    return found  # type: ignore[no-any-return]


def text_of(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    (message,) = [item for item in response.json()["output"] if item["type"] == "message"]
    return message["content"][0]["text"]  # type: ignore[no-any-return]


def chain(urls: list[str], turns: int) -> list[str]:
    """A conversation of ``turns`` responses, turn k on ``urls[k % len(urls)]``, each continuing
    the one before; the last asks the replica for the history it was sent."""
    previous = None
    for k in range(turns - 1):
        response = respond(urls[k % len(urls)], f"turn {k}", previous)
        assert text_of(response) == replica_reply(f"turn {k}")
        previous = response.json()["id"]
    last = text_of(respond(urls[(turns - 1) % len(urls)], "/history", previous))
    return [user for user, _ in json.loads(last)]


def test_three_servers_share_one_redis(
    replica6: Replica, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Three servers, a pool of two Spaces (the replica behind two front ends, each of which
    holds, refuses with a stated wait, or forwards the jobs it is sent), one Redis. A response
    made on one server is continued on the others; a reply in flight through one is seen by
    all and routed around; a Space rate-limited through one is avoided by the others for the
    wait it stated; Redis killed mid-run fails no request (each server says so once), and once
    it is back the servers share again by themselves."""
    modes = {"a": "hold", "b": "hold"}

    def rule(name: str) -> Callable[[str, str], str]:
        return lambda method, path: modes[name] if path.endswith("queue/join") else "forward"

    with (
        FaultyFrontEnd(replica6.url, rule("a"), retry_in=30) as a,
        FaultyFrontEnd(replica6.url, rule("b"), retry_in=30) as b,
        servers(3, [a.url, b.url], tmp_path, "--state", redis_server.url) as fleet,
    ):
        fronts, name = {a.url: a, b.url: b}, {a.url: "a", b.url: "b"}

        def joins() -> dict[str, int]:
            return {
                url: sum(p.endswith("queue/join") for _, p, _ in f.seen)
                for url, f in fronts.items()
            }

        urls = [s.url for s in fleet]  # type: ignore[attr-defined]
        assert {health(u)["state"]["url"] for u in urls} == {redis_server.url}

        # a reply in flight through the first server: the others see it and go elsewhere
        held = concurrent.futures.ThreadPoolExecutor(1)
        holding = held.submit(chat, urls[0], "held")
        (x,) = until(lambda: [u for u, n in joins().items() if n], "the held job at a front")
        (y,) = set(fronts) - {x}
        modes[name[x]] = modes[name[y]] = "forward"  # (the held job waits for its gate)
        for url in urls[1:]:
            until(lambda u=url: member(u, x)["fleet_in_flight"] == 1, "seen in flight")
        assert chat(urls[1], "routed").headers[SPACE_HEADER] == y  # nothing in flight there

        # rate-limited through the first server: the others avoid it until its wait ends
        modes[name[y]] = "429"
        before = joins()
        first = chat(urls[0], "one")  # to y (the first server's own reply is on x): refused
        assert first.status_code == 200 and first.headers[SPACE_HEADER] == x
        assert joins()[y] == before[y] + 1
        for k, url in enumerate(urls[1:] * 2):
            until(lambda u=url: member(u, y)["cooling_down"], "cooling everywhere")
            assert chat(url, f"other {k}").headers[SPACE_HEADER] == x
        assert joins()[y] == before[y] + 1  # no other server tried it
        left = redis_server.client().pttl(f"qwen_gradio:cool:{y}/")
        assert 0 < left <= 30_000  # it ends with the wait the Space stated
        modes[name[y]] = "forward"
        fronts[x].gate.set()
        assert holding.result(timeout=30).json()["choices"][0]["message"]["content"] == (
            replica_reply("held")
        )
        held.shutdown()
        for url in urls:
            until(lambda u=url: member(u, x)["fleet_in_flight"] == 0, "nothing in flight")

        # a response made on one server, continued on the others
        assert chain(urls, 6) == [f"turn {k}" for k in range(5)]

        # Redis killed mid-run (replies in flight on each server): no request fails; a
        # response is still continued where it was made
        runs = replica6.next_run()
        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            flying = [pool.submit(chat, urls[k % 3], "/long 300") for k in range(6)]
            until(lambda: replica6.next_run() >= runs + 6, "six replies running")
            redis_server.stop()
            for reply in flying:
                assert reply.result(timeout=60).status_code == 200
                content = reply.result().json()["choices"][0]["message"]["content"]
                assert content == "".join(f"t{k} " for k in range(300))
        for url in urls:
            made = respond(url, "while away")
            assert text_of(made) == replica_reply("while away")
            again = respond(url, "/history", made.json()["id"])
            assert json.loads(text_of(again)) == [["while away", replica_reply("while away")]]
        for server in fleet:
            assert sum(FAILED in line for line in server.log) == 1, server.log
            assert "Traceback" not in "".join(server.log)
        assert [state_shared(url) for url in urls] == [0.0, 0.0, 0.0]

        # Redis back (empty, as a restarted one is): the servers share again, by themselves
        redis_server.start()
        for url in urls:
            until(lambda u=url: health(u)["state"]["shared"], "shared again")
        assert [state_shared(url) for url in urls] == [1.0, 1.0, 1.0]
        assert chain(urls[::-1], 4) == ["turn 0", "turn 1", "turn 2"]
        for server in fleet:
            assert sum(BACK in line for line in server.log) == 1, server.log
            assert "Traceback" not in "".join(server.log)


def pinned(
    url: str, pids: int, headers: dict[str, str], limit: int = 200
) -> dict[int, httpx.Client]:
    """A kept-alive connection to each of ``pids`` different workers: connections are opened
    until that many workers have answered (each tells its pid at /health)."""
    found: dict[int, httpx.Client] = {}
    for _ in range(limit):
        client = httpx.Client(base_url=url, headers=headers, timeout=60)
        pid = client.get("/health").json()["pid"]
        if pid in found:
            client.close()
        else:
            found[pid] = client
        if len(found) == pids:
            return found
    raise AssertionError(f"only {len(found)} workers answered {limit} connections")


def test_workers_share_the_embedded_state(replica6: Replica, tmp_path: Path) -> None:
    """``serve --workers 3`` with no --state: a SQLite file of the workers' own. A response
    made on one worker is continued on the others, a key's limit holds across them; the file
    is gone after the server stops."""
    keys = {"team": "sk-team-key", "ci": {"key": "sk-ci-key-0", "rpm": 3}}
    env = {"QWEN_GRADIO_API_KEYS": json.dumps(keys), "TMPDIR": str(tmp_path)}
    command, port = serve_command([replica6.url], "--workers", "3")
    url = f"http://127.0.0.1:{port}"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    with ServerProcess(command, environment, str(tmp_path)) as server:
        server.wait_for("Application startup complete")
        (folder,) = tmp_path.glob("qwen-gradio-state-*")
        team = {"authorization": "Bearer sk-team-key"}
        ci = {"authorization": "Bearer sk-ci-key-0"}
        workers = pinned(url, 3, team)
        clients = list(workers.values())
        previous = None
        for k in range(6):  # turn k on worker k % 3
            body: dict[str, Any] = {"model": MODEL, "input": f"turn {k}"}
            if previous:
                body["previous_response_id"] = previous
            made = clients[k % 3].post("/v1/responses", json=body)
            assert text_of(made) == replica_reply(f"turn {k}")
            previous = made.json()["id"]
        body = {"model": MODEL, "input": "/history", "previous_response_id": previous}
        history = json.loads(text_of(clients[0].post("/v1/responses", json=body)))
        assert [user for user, _ in history] == [f"turn {k}" for k in range(6)]
        statuses = [
            clients[k % 3].get("/v1/models", headers=ci).status_code for k in range(5)
        ]  # 3 a minute for "ci", whichever worker counts
        assert statuses == [200, 200, 200, 429, 429]
        for client in clients:
            client.close()
        assert "Traceback" not in "".join(server.log)
    assert not folder.exists()


def test_workers_end_when_their_parent_is_killed(replica6: Replica, tmp_path: Path) -> None:
    """The parent killed (SIGKILL: it cannot stop them): each worker notices and drains."""
    command, port = serve_command([replica6.url], "--workers", "2")
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    with ServerProcess(command, environment, str(tmp_path)) as server:
        server.wait_for("Application startup complete")  # a worker listens
        workers = pinned(f"http://127.0.0.1:{port}", 2, {})
        for client in workers.values():
            client.close()
        ends = [os.pidfd_open(pid) for pid in workers]  # readable once the process ended
        server.process.send_signal(signal.SIGKILL)
        for end in ends:
            assert select.select([end], [], [], 30)[0], "a worker outlived its parent"
            os.close(end)
        assert "Traceback" not in "".join(server.log)
