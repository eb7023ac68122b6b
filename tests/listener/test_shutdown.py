"""A shutdown always ends (issue #14): a process stuck after SIGTERM exits within the grace period, and a
second signal ends it at once — never a service that ignores its supervisor."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

STUCK = """
import logging, sys, threading, time
from listener.app import stop_on_signals
logging.basicConfig(level=logging.INFO, stream=sys.stderr)
stop = threading.Event()
stop_on_signals(stop, grace_s={grace})
print("ready", flush=True)
while True:  # a loop that never looks at `stop`, like a client spinning inside a call
    time.sleep(0.05)
"""


def stuck(grace_s: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", STUCK.format(grace=grace_s)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_a_shutdown_that_hangs_ends_after_the_grace_period_with_status_1() -> None:
    proc = stuck(grace_s=1.0)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(15)
    finally:
        proc.kill()
    took = time.monotonic() - started
    assert code == 1 and 0.9 <= took < 15
    assert "shutdown did not finish within 1 s" in proc.stderr.read()  # type: ignore[union-attr]


@pytest.mark.parametrize("second", [signal.SIGTERM, signal.SIGINT])
def test_a_second_signal_ends_it_at_once(second: signal.Signals) -> None:
    proc = stuck(grace_s=60.0)
    proc.send_signal(signal.SIGTERM)
    assert "shutting down cleanly" in proc.stderr.readline()  # type: ignore[union-attr]  # the first signal's line
    assert proc.poll() is None  # still shutting down cleanly
    proc.send_signal(second)
    try:
        code = proc.wait(10)
    finally:
        proc.kill()
    assert code == 1
    assert "again: exiting now" in proc.stderr.read()  # type: ignore[union-attr]
