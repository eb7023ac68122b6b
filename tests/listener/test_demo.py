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
