"""``qwen-gradio serve`` against a browser's tricks (issue 28): each as the raw request a page
would make a browser send, over a socket; none may start a job on the Space. And the access log:
a request cannot forge a line of it."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import Replica, shared_replica
from .helpers import ServerProcess
from .test_serve import serve

BODY = b'{"model": "qwen-2.5-max", "messages": "/echo from a web page"}'


@pytest.fixture(scope="module")
def space() -> Replica:
    return shared_replica("gradio6")


@pytest.fixture(scope="module")
def server(space: Replica, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    extra = ("--cors-origin", "https://app.example", "--allowed-host", "qwen.internal")
    with serve(space.url, tmp_path_factory.mktemp("guard"), *extra) as running:
        yield running


def raw(server: Any, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send one request as written; the status and the rest of the response."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < 12:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        sock.shutdown(socket.SHUT_WR)
        while chunk := sock.recv(65536):
            data += chunk
    return int(data.split(b" ", 2)[1]), data


def post(host: str, content_type: str, origin: str | None = None) -> str:
    lines = [
        "POST /v1/chat/completions HTTP/1.1",
        f"Host: {host}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(BODY)}",
        "Connection: close",
    ]
    if origin is not None:
        lines.append(f"Origin: {origin}")
    return "\r\n".join(lines) + "\r\n"


@pytest.mark.parametrize(
    ("head", "status", "code"),
    [
        (post("127.0.0.1:PORT", "text/plain", "https://evil.example"), 403, "origin_not_allowed"),
        (post("127.0.0.1:PORT", "text/plain"), 415, "unsupported_media_type"),
        (post("127.0.0.1:PORT", "application/x-www-form-urlencoded"), 415, "unsupported_media"),
        (post("attacker.example:PORT", "application/json"), 403, "host_not_allowed"),
        (post("localhost.attacker.example", "application/json"), 403, "host_not_allowed"),
        (post("127.0.0.1:PORT", "application/json", "null"), 403, "origin_not_allowed"),
    ],
    ids=["simple-cross-origin", "text-plain", "form", "rebinding", "look-alike", "null-origin"],
)
def test_a_browsers_tricks_are_refused_before_any_job(
    server: Any, space: Replica, head: str, status: int, code: str
) -> None:
    before = len(space.requests())
    got, data = raw(server, head.replace("PORT", str(server.port)), BODY)
    assert got == status and code.encode() in data
    assert len(space.requests()) == before  # not a request reached the Space


@pytest.mark.parametrize(
    ("path", "host"),
    [("/v1/models", "attacker.example"), ("/health", "attacker.example:80")],
)
def test_dns_rebinding_cannot_read_the_answers(server: Any, path: str, host: str) -> None:
    got, data = raw(server, f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n")
    assert got == 403 and b"qwen-2.5-max" not in data


def test_what_is_allowed_still_works(server: Any) -> None:
    port = server.port
    for host, origin in [
        (f"127.0.0.1:{port}", None),
        (f"localhost:{port}", "https://app.example"),  # --cors-origin
        (f"[::1]:{port}", None),
        ("qwen.internal", None),  # --allowed-host
        (f"127.0.0.1:{port}", f"http://127.0.0.1:{port}"),  # the server's own origin
    ]:
        got, data = raw(server, post(host, "application/json; charset=utf-8", origin), BODY)
        assert got == 200 and b"from a web page" in data, (host, origin, data[-300:])


def test_a_request_cannot_forge_a_line_of_the_access_log(server: Any) -> None:
    """0.4.0 logged the decoded path: ``%0D%0A`` began a line of the request's own."""
    forged = "/v1/models%0D%0AINJECTED-LINE%20200%1B[31m"
    got, _ = raw(server, f"GET {forged} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n")
    assert got == 404
    line = server.wait_for("INJECTED-LINE")
    assert f'"GET {forged}" 404' in line and line.count("\n") == 1  # as sent, on one line
    assert not any(logged.startswith("INJECTED-LINE") for logged in server.log)


def test_what_a_log_line_may_hold() -> None:
    from qwen_gradio.serve.deployment import printable

    assert printable('/a\r\nb"\x1b[31m\\é') == "/a\\x0d\\x0ab\\x22\\x1b[31m\\x5cé"


KEYS = {"alice": "sk-alice-1234", "ci": {"key": "sk-ci-123456", "rpm": 2}}


@pytest.fixture(scope="module")
def team(space: Replica, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    import json

    folder = tmp_path_factory.mktemp("team")
    keys = folder / "keys.json"
    keys.write_text(json.dumps(KEYS))
    with serve(space.url, folder, "--api-keys", str(keys)) as running:
        yield running


def test_named_keys_and_a_limit_per_key(team: Any) -> None:
    import httpx

    url = f"{team.url}/v1/models"

    def get(key: str | None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.get(url, headers=headers, timeout=10)

    assert get(None).status_code == 401 and get("sk-nobody-123").status_code == 401
    assert [get("sk-ci-123456").status_code for _ in range(2)] == [200, 200]
    over = get("sk-ci-123456")
    assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(over.headers["retry-after"]) <= 60
    assert get("sk-alice-1234").status_code == 200  # another key, its own limit (none)
    line = team.wait_for("key=alice")
    assert "sk-alice" not in "".join(team.log) and '"GET /v1/models" 200' in line
    # (the request line's status: "429" alone matched a port number once, 127.0.0.1:44293)
    assert team.wait_for('"GET /v1/models" 429').rstrip().endswith("key=ci")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("[]", "object of names"),
        ('{"a": "short"}', "8 characters"),
        ('{"a": {"key": "sk-12345678", "rpm": 0}}', "rpm"),
        ('{"a": "sk-12345678", "b": "sk-12345678"}', "share one key"),
    ],
)
def test_bad_keys_are_refused(text: str, why: str) -> None:
    from qwen_gradio.serve.keys import load_keys

    with pytest.raises(ValueError, match=why):
        load_keys(text)


def test_a_bad_key_file_stops_serve_at_startup(tmp_path: Any) -> None:
    import subprocess
    import sys

    bad = tmp_path / "keys.json"
    bad.write_text('{"a": "short"}')
    command = [sys.executable, "-m", "qwen_gradio", "serve", "--api-keys", str(bad)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "8 characters" in done.stderr, done.stderr


def test_metrics_in_prometheus_format(space: Replica, tmp_path: Any) -> None:
    """``/metrics``, read with the Prometheus client's own parser: requests by route and
    status, tokens, the first token's histogram, replies not as asked, and each Space of a pool
    (the first one down: a retry and a failover counted against it)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    dead = "http://127.0.0.1:9"  # nothing listens there
    with serve(dead, tmp_path, "--space", space.url, "--quiet") as running:
        body = {"model": "qwen-2.5-max", "messages": "/echo counted"}
        reply = httpx.post(f"{running.url}/v1/chat/completions", json=body, timeout=30)
        assert reply.status_code == 200
        httpx.get(f"{running.url}/v1/nothing", timeout=10)
        page = httpx.get(f"{running.url}/metrics", timeout=10)
        weather = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
        words = {**body, "messages": "/calls [] Words.", "tools": [weather]}
        for asked in (
            {**words, "tool_choice": "required"},  # two tries, each without the call
            {**words, "response_format": {"type": "json_object"}},  # two tries, not JSON
        ):
            httpx.post(f"{running.url}/v1/chat/completions", json=asked, timeout=30)
        later = httpx.get(f"{running.url}/metrics", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page.text)
        for s in family.samples
    }
    route = (("route", "/v1/chat/completions"), ("status", "200"))
    assert samples[("qwen_gradio_requests_total", route)] == 1
    assert samples[("qwen_gradio_requests_total", (("route", "other"), ("status", "404")))] == 1
    assert samples[("qwen_gradio_tokens_total", (("kind", "completion"),))] > 0
    assert samples[("qwen_gradio_first_token_seconds_count", ())] == 1
    assert samples[("qwen_gradio_replies_in_flight", ())] == 0
    assert samples[("qwen_gradio_space_retries_total", (("space", dead),))] == 1
    assert samples[("qwen_gradio_space_failovers_total", (("space", dead),))] == 1
    # (the dead Space's cooldown is a random part of a second: whether it is still down when
    # scraped is chance; the live one is up)
    assert samples[("qwen_gradio_space_up", (("space", space.url),))] == 1
    not_as_asked = {
        s.labels["reason"]: s.value
        for family in text_string_to_metric_families(later.text)
        for s in family.samples
        if s.name == "qwen_gradio_replies_not_as_asked_total"
    }
    assert not_as_asked == {"tool_choice": 2, "json": 2}  # each try counted


def test_metrics_are_behind_the_key(team: Any) -> None:
    import httpx

    assert httpx.get(f"{team.url}/metrics", timeout=10).status_code == 401
    authorized = {"Authorization": "Bearer sk-alice-1234"}
    assert httpx.get(f"{team.url}/metrics", headers=authorized, timeout=10).status_code == 200
