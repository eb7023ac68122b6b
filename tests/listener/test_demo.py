from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.broker


def test_demo_command_detects_the_crisis_and_exits_0() -> None:
    """The README's "run it" command, as a new user runs it."""
    proc = subprocess.run([sys.executable, "-m", "listener.cli", "demo"], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "CRISIS TRIGGERED | acme" in out
    assert "data breach" in out
    assert "first steps:" in out
    assert "Crisis detected for acme" in out
    assert "alert events on topic 'alerts'" in out
    # nothing to act on, nothing said: no "ERROR kafka.cluster: Metadata refresh: failed Cancelled" (benign), no
    # warning that the topics of the broker the demo just started are missing (they always are)
    assert "ERROR" not in proc.stderr and "creating missing topics" not in proc.stderr, proc.stderr


def test_ctrl_c_during_the_demo_ends_quietly_with_one_line_and_status_130() -> None:
    """Ctrl-C mid-stream printed 77 lines: a KeyboardInterrupt traceback among the Kafka clients' errors."""
    import os
    import signal
    import threading

    # its own process group, signalled as a terminal's Ctrl-C signals the foreground group
    proc = subprocess.Popen([sys.executable, "-m", "listener.cli", "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    streaming = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("Streaming"):
                streaming.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert streaming.wait(60), "the demo did not start"
        threading.Event().wait(1.0)  # mid-stream: the listener and the ingest thread are busy
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    assert proc.stderr is not None
    err = proc.stderr.read()
    assert "Traceback" not in err and "ERROR" not in err, err
    assert err.splitlines() == ["crisiswatch demo: interrupted"], err
