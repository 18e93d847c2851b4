"""Real servers for tests: a forwarding HTTP proxy, and a scripted stand-in for HF's front end."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import socketserver
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def read_request_head(client: socket.socket) -> tuple[str, list[str], bytes] | None:
    """An HTTP request's line, its header lines, and what of its body came with them (None if
    the client closed first)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    return request_line, header_lines, rest


class _ProxyHandler(socketserver.BaseRequestHandler):
    server: RecordingProxy

    def handle(self) -> None:
        client = self.request
        request = read_request_head(client)
        if request is None:
            return
        request_line, header_lines, rest = request
        method, target, version = request_line.split(" ", 2)
        url = urlsplit(target)  # a proxy gets absolute URLs
        self.server.seen.append(f"{method} {target}")
        headers = [h for h in header_lines if not h.lower().startswith(("connection:", "proxy-"))]
        path = url.path + (f"?{url.query}" if url.query else "")
        upstream = socket.create_connection((url.hostname, url.port or 80))
        outgoing = "\r\n".join([f"{method} {path} {version}", *headers, "Connection: close"])
        upstream.sendall(outgoing.encode("latin-1") + b"\r\n\r\n" + rest)

        def pump(source: socket.socket, sink: socket.socket) -> None:
            try:
                while data := source.recv(65536):
                    sink.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    sink.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        uploader = threading.Thread(target=pump, args=(client, upstream), daemon=True)
        uploader.start()
        pump(upstream, client)
        upstream.close()


class RecordingProxy(socketserver.ThreadingTCPServer):
    """A plain-HTTP forwarding proxy on loopback that records every request line it forwards."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


Route = Callable[[str, str], tuple[int, str, str]]  # (method, path) -> (status, type, body)


class FrontEnd(http.server.ThreadingHTTPServer):
    """Stands in for what Hugging Face's front end answers when no Gradio app does (a sleeping
    Space's page, a 429): states this machine cannot reach for real."""

    daemon_threads = True

    def __init__(self, route: Route) -> None:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                self.rfile.read(length)
                status, kind, body = outer.route(self.command, self.path)
                data = body.encode()
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.route = route
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> FrontEnd:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


Rule = Callable[[str, str], str]  # (method, path) -> forward|hold|stall|cut|rewrite|429|queue_full


class _FaultHandler(socketserver.BaseRequestHandler):
    """One request per connection (``Connection: close``), so that each is seen and ruled on."""

    server: FaultyFrontEnd

    def handle(self) -> None:
        client = self.request
        request = read_request_head(client)
        if request is None:
            return
        request_line, header_lines, body = request
        method, path, _ = request_line.split(" ", 2)
        length = next(
            (
                int(h.split(":", 1)[1])
                for h in header_lines
                if h.lower().startswith("content-length:")
            ),
            0,
        )
        while len(body) < length:
            chunk = client.recv(65536)
            if not chunk:
                return
            body += chunk
        action = self.server.rule(method, path)
        with self.server.arrived:
            self.server.seen.append((method, path, action))
            self.server.bodies.append((path, body))
            self.server.arrived.notify_all()
        if action == "hold":  # forwarded only once the test opens the gate
            self.server.gate.wait(timeout=30)
        if self.server.delay:  # a far-away Space: every request waits before it is forwarded
            self.server.stop.wait(self.server.delay)
        if action == "stall":  # take the request, never answer, until the test ends
            self.server.stop.wait()
            return
        if action == "queue_full":  # refuse the job, as gradio's queue does when it is full
            body = json.dumps({"detail": "Queue is full."}).encode()
            head = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
            head += f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            client.sendall(head.encode() + body)
            return
        if action == "429":  # refuse, as Hugging Face's front end does, naming a wait
            wait = self.server.retry_in
            body = json.dumps({"detail": f"Too many requests: retry in {wait} seconds"}).encode()
            head = "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\n"
            head += f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            client.sendall(head.encode() + body)
            return
        headers = [h for h in header_lines if not h.lower().startswith("connection:")]
        outgoing = "\r\n".join([request_line, *headers, "Connection: close"]).encode("latin-1")
        upstream = socket.create_connection(self.server.upstream)
        budget = self.server.cut_after if action == "cut" else None
        sent = 0
        try:
            upstream.sendall(outgoing + b"\r\n\r\n" + body)
            if action == "rewrite":  # the whole response, its body rewritten
                response = b""
                while data := upstream.recv(65536):
                    response += data
                head, _, content = response.partition(b"\r\n\r\n")
                content = self.server.rewrite(path, content)
                lines = [
                    h for h in head.split(b"\r\n") if not h.lower().startswith(b"content-length")
                ]
                lines.append(b"content-length: %d" % len(content))
                client.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + content)
                return
            # A client that hangs up is passed on at once, as a real front end does (else the
            # Space would learn it only when it next sends something).
            threading.Thread(target=_close_when_gone, args=(client, upstream), daemon=True).start()
            while data := upstream.recv(65536):
                if budget is not None and sent + len(data) >= budget:
                    client.sendall(data[: budget - sent])
                    break  # cut the connection mid-response
                client.sendall(data)
                sent += len(data)
        except OSError:
            pass
        finally:
            upstream.close()
            try:
                client.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _close_when_gone(client: socket.socket, upstream: socket.socket) -> None:
    """Shut ``upstream`` once ``client`` has hung up (it sends nothing after its request)."""
    try:
        client.recv(1)
    except OSError:
        pass
    try:
        upstream.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class FaultyFrontEnd(socketserver.ThreadingTCPServer):
    """A front end on loopback before a real Space: each request is forwarded, held until the
    test opens ``gate`` ("hold"), taken and never answered ("stall": a stuck load balancer),
    forwarded and cut after ``cut_after`` bytes of its response ("cut": a dropped connection),
    or forwarded with its response body passed through ``rewrite(path, body)`` ("rewrite"), as
    ``rule(method, path)`` says. With ``delay``, every
    request is held that many seconds before anything else (a Space far away)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        upstream_url: str,
        rule: Rule,
        cut_after: int = 4096,
        rewrite: Callable[[str, bytes], bytes] | None = None,
        delay: float = 0.0,
        retry_in: int = 1,
    ) -> None:
        super().__init__(("127.0.0.1", 0), _FaultHandler)
        self.retry_in = retry_in  # the wait a "429" names
        self.rewrite = rewrite or (lambda path, body: body)
        self.delay = delay
        parts = urlsplit(upstream_url)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.rule = rule
        self.cut_after = cut_after
        self.seen: list[tuple[str, str, str]] = []
        self.bodies: list[tuple[str, bytes]] = []  # (path, request body), as they came
        self.stop = threading.Event()
        self.gate = threading.Event()  # opens the requests held by "hold"
        self.arrived = threading.Condition()  # notified as each request arrives
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def wait_for_request(self, suffix: str, count: int = 1, timeout: float = 30) -> None:
        """Block until ``count`` requests whose path ends with ``suffix`` have arrived, or
        fail."""

        def arrived() -> bool:
            return sum(p.split("?")[0].endswith(suffix) for _, p, _ in self.seen) >= count

        with self.arrived:
            found = self.arrived.wait_for(arrived, timeout)
        assert found, f"no {count} requests for {suffix} came: {self.seen}"

    def __enter__(self) -> FaultyFrontEnd:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.gate.set()
        self.shutdown()
        self.server_close()


class ServerProcess:
    """A server in a subprocess, ready once a line of its output holds ``ready``; its output is
    drained on a thread (so the pipe never fills) and kept in ``log``."""

    def __init__(
        self, command: list[str], env: dict[str, str], cwd: str, ready: str = "Uvicorn running on"
    ) -> None:
        self.command, self.env, self.cwd, self.ready_marker = command, env, cwd, ready
        self.log: list[str] = []
        self._ready = threading.Event()
        self._said = threading.Condition()
        self._ended = False

    def _drain(self, lines: Any) -> None:
        for line in lines:
            with self._said:
                self.log.append(line)
                self._said.notify_all()
            if self.ready_marker in line:
                self._ready.set()
        self._ready.set()  # the process ended
        with self._said:
            self._ended = True
            self._said.notify_all()

    def wait_for(self, text: str, timeout: float = 30) -> str:
        """Block until the server prints a line holding ``text`` (that line), or fail."""
        with self._said:
            self._said.wait_for(
                lambda: self._ended or any(text in line for line in self.log), timeout
            )
            found = [line for line in self.log if text in line]
        assert found, f"the server never printed {text!r}:\n" + "".join(self.log)
        return found[0]

    def __enter__(self) -> ServerProcess:
        self.process = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=self.env,
            cwd=self.cwd,
        )
        self._reader = threading.Thread(
            target=self._drain, args=(self.process.stdout,), daemon=True
        )
        self._reader.start()
        self._ready.wait(timeout=60)
        if self.process.poll() is not None or not self.started:
            self.__exit__()
            raise RuntimeError("the server did not start:\n" + "".join(self.log))
        return self

    @property
    def started(self) -> bool:
        return any(self.ready_marker in line for line in self.log)

    @property
    def startup(self) -> str:
        """What the server printed up to and including its ready line."""
        text = "".join(self.log)
        return text[: text.index(self.ready_marker)]

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._reader.join(timeout=10)


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def replica_reply(query: str, model: str = "Qwen2.5-Max") -> str:
    """What the replica answers ``query`` with (its friendly echo)."""
    return f"This is the offline replica of {model}. You said: {query}"


def assert_stopped_early(run: dict[str, Any], total: int) -> None:
    """The replica's record of ``run``: cancelled ("stopped") before all ``total`` tokens."""
    assert run["outcome"] == "stopped", run
    assert run["tokens_sent"] < total, run


async def open_streams(url: str, count: int, prompt: str) -> tuple[Any, list[Any]]:
    """``count`` streamed chat requests to the server at ``url``, each read until its first
    text ("t0 ", the replica's ``/long``): its client, and (response, line iterator) pairs,
    the iterators kept (dropping one would close its stream)."""
    import asyncio

    import httpx

    http = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=count + 4))
    body = {"model": "qwen-2.5-max", "messages": prompt, "stream": True}

    async def one() -> Any:
        request = http.build_request("POST", f"{url}/v1/chat/completions", json=body)
        response = await http.send(request, stream=True)
        lines = response.aiter_lines()
        async for line in lines:
            if '"content": "t0 "' in line:
                return response, lines
        raise AssertionError("the stream ended before its first text")

    return http, list(await asyncio.gather(*(one() for _ in range(count))))


REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """A real Redis on a free loopback port, in a folder of the test's (no persistence)."""

    def __init__(self, folder: Path) -> None:
        self.port, self.folder = free_port(), folder
        self.process: subprocess.Popen[str] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = [str(REDIS_SERVER), "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        for line in self.process.stdout:  # until it says it is ready (or ends)
            if "Ready to accept connections" in line:
                threading.Thread(target=self.process.stdout.read, daemon=True).start()
                return
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def client(self) -> Any:
        import redis

        return redis.Redis(port=self.port, decode_responses=True)
