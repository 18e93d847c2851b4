"""``qwen-gradio serve --workers N``: N server processes on one socket, sharing one state.

The parent binds the socket, starts the workers (uvicorn's supervisor: a worker that dies is
started again) and, unless a state is named (``--state``), makes the embedded one: a SQLite file
in a private temporary folder, removed at exit. Each worker builds the app from the same
settings and options and drains on a signal as a single server does (``server.run``). The
workers leave the terminal's process group: Ctrl-C reaches the parent alone, which passes one
SIGTERM to each (a second Ctrl-C, a second SIGTERM: no more grace).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from socket import socket

import uvicorn
from starlette.applications import Starlette
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors.multiprocess import Multiprocess, Process

from ..settings import Settings
from .api import ServeOptions, create_app
from .deployment import log_to_stderr
from .server import DrainingServer, server_config

__all__ = ["embedded_state", "run_workers"]

logger = logging.getLogger("qwen_gradio")


def embedded_state() -> tuple[str, Path]:
    """A new SQLite state for the workers of this machine, and its folder (removed at exit)."""
    folder = Path(tempfile.mkdtemp(prefix="qwen-gradio-state-"))
    return f"sqlite:///{folder / 'state.db'}", folder


@dataclass(frozen=True)
class Served:
    """What each worker serves (pickled to it): the app's settings and options, and whether
    the access log is off."""

    settings: Settings
    options: ServeOptions
    quiet: bool


class Worker(Process):
    """One worker: the app made in the worker from what is ``served``."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket], served: Served) -> None:
        self.served = served
        self.app: Starlette | None = None
        self.parent = os.getpid()
        super().__init__(config, sockets)

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            if hasattr(os, "setpgrp"):
                os.setpgrp()  # out of the terminal's group: the parent says when to stop
            served = self.served
            log_to_stderr(access=not served.quiet)
            app = self.app = create_app(served.settings, served.options)
            grace = served.options.grace
            config = server_config(app, self.config.host, self.config.port, grace)
            self._server = DrainingServer(config, app.state.drain, grace)
        return self._server

    def orphaned(self) -> None:
        """Once the parent is gone (killed: it could not stop us), drain and exit."""
        while os.getppid() == self.parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    def target(self, sockets: list[socket] | None = None) -> None:
        _ = self.server  # made here first, not by the health check's thread
        threading.Thread(target=self.orphaned, name="qwen_gradio-parent", daemon=True).start()
        try:
            super().target(sockets)
        finally:  # also after a forced exit, which skips the app's shutdown
            if self.app is not None:
                self.app.state.client.close()


class Workers(Multiprocess):
    """uvicorn's supervisor, starting ``Worker``s; a second signal forces the exit."""

    def __init__(self, config: uvicorn.Config, sockets: list[socket], served: Served) -> None:
        self.served = served
        super().__init__(config, sockets)

    def init_processes(self) -> None:
        for _ in range(self.processes_num):
            process = Worker(self.config, self.sockets, self.served)
            process.start()
            self.processes.append(process)

    def keep_subprocess_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            if process.process.is_alive():
                continue
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # it would fail the same way again
                logger.error("worker %s could not start; stopping", process.pid)
                self.should_exit.set()
                return
            logger.warning("worker %s ended (%s); starting another", process.pid, process.exitcode)
            fresh = Worker(self.config, self.sockets, self.served)
            fresh.start()
            self.processes[index] = fresh

    def run(self) -> None:
        self.init_processes()
        while not self.should_exit.wait(0.5):
            self.handle_signals()
            self.keep_subprocess_alive()
        self.signal_queue.clear()
        self.terminate_all()
        for process in self.processes:
            while process.process.is_alive():
                process.process.join(0.2)
                if self.signal_queue:  # a second signal: end them now
                    self.signal_queue.clear()
                    for other in self.processes:
                        if other.process.is_alive() and other.pid is not None:
                            os.kill(other.pid, signal.SIGTERM)


def run_workers(
    settings: Settings,
    options: ServeOptions,
    *,
    host: str,
    port: int,
    workers: int,
    quiet: bool,
) -> None:
    """Serve with ``workers`` processes until a signal (``--workers``)."""
    folder = None
    if settings.state is None:
        url, folder = embedded_state()
        settings = settings.replace(state=url)
    config = uvicorn.Config("qwen_gradio.serve:app", host=host, port=port, workers=workers)
    said = logging.getLogger("uvicorn.error")
    said.info("%d workers share the state %s", workers, settings.state)
    sock = config.bind_socket()
    try:
        Workers(config, [sock], Served(settings, options, quiet)).run()
    finally:
        sock.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
