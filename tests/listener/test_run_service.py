from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import orjson
import pytest

from ..http_receiver import HttpReceiver

pytestmark = pytest.mark.broker


def test_run_service_detects_notifies_then_shuts_down_cleanly_on_sigterm(tmp_path: Path,
                                                                         receiver: HttpReceiver) -> None:
    """The all-in-one service: simulator -> embedded broker -> listener -> alerts topic -> notify -> webhook."""
    history = tmp_path / "history" / "alerts.jsonl"
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[listener]
history_path = "{history}"

[outbox]
path = "{tmp_path / 'outbox.db'}"

[[receivers]]
type = "webhook"
name = "hook"
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"

[[sources]]
type = "simulator"
seed = 7
""")
    hook = receiver
    env = {**os.environ, "HOOK_URL": hook.url, "HOOK_SECRET": "s" * 32}
    proc = subprocess.Popen([sys.executable, "-m", "listener.cli", "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
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
        assert hook.wait_for(lambda r: any(e["status"] == "resolved" for e in r.json())), hook.json()
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
    sent = [e["id"] for e in hook.json()]
    assert sent[0] == events[0]["id"] and sent[-1] == events[-1]["id"] and len(set(sent)) == len(sent)
