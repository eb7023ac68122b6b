from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.broker


def test_run_service_detects_then_shuts_down_cleanly_on_sigterm(tmp_path: Path) -> None:
    history = tmp_path / "history" / "alerts.jsonl"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[listener]
history_path = "{history}"

[[sources]]
type = "simulator"
seed = 7
""")
    proc = subprocess.Popen([sys.executable, "-m", "listener.cli", "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "CRISIS RESOLVED" in line:
                seen.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert seen.wait(120), "".join(lines)[-2000:]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0, proc.stderr.read()[-2000:] if proc.stderr else ""
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    events = [orjson.loads(line) for line in history.read_bytes().splitlines()]
    statuses = [e["status"] for e in events]
    assert statuses[0] == "triggered" and statuses[-1] == "resolved"
    assert len({e["id"] for e in events}) == len(events)
    assert "CRISIS TRIGGERED | acme" in "".join(lines)
