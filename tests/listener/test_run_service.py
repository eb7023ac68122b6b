from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import orjson
import pytest

from ..http_receiver import HttpReceiver
from ..waiting import wait_until
from .test_notify_faults import free_port

pytestmark = pytest.mark.broker


def test_run_service_detects_notifies_then_shuts_down_cleanly_on_sigterm(tmp_path: Path,
                                                                         receiver: HttpReceiver) -> None:
    """The all-in-one service: simulator -> embedded broker -> listener -> alerts topic -> notify -> webhook."""
    history = tmp_path / "history" / "alerts.jsonl"
    cfg = tmp_path / "c.toml"
    metrics = free_port()
    cfg.write_text(f"""
[listener]
history_path = "{history}"
metrics_listen = "127.0.0.1:{metrics}"

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
        def scraped() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=10) as resp:
                return resp.read().decode()

        def sent() -> int:  # counted once the outbox records a delivery, a moment after the receiver answered
            found = re.search(r'^crisiswatch_deliveries_sent_total\{receiver="hook"\} (\d+)', scraped(), re.M)
            return int(found[1]) if found else -1

        # one process, both roles: the listener's /metrics covers notify too, with no name declared twice
        assert wait_until(lambda: sent() == len(hook.json()), 10), (sent(), len(hook.json()))
        text = scraped()
        families = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
        assert len(families) == len(set(families)), text
        assert "crisiswatch_mentions_consumed_total" in families and "crisiswatch_held_back_seconds" in families
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/livez", timeout=10) as resp:
            assert resp.status == 200 and orjson.loads(resp.read())["notify"]["live"] is True
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


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie — dead, not yet reaped by its parent — counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_sigkill_of_run_takes_the_embedded_broker_with_it(tmp_path: Path) -> None:
    """``kill -9`` of the service (an OOM kill, a supervisor giving up on a stuck stop) used to leave the embedded
    broker running, holding its port and its memory, with nobody left to stop it."""
    cfg = tmp_path / "c.toml"
    cfg.write_text("[listener]\nconsole = false\n")
    err = tmp_path / "stderr.txt"
    with open(err, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "listener.cli", "--log-level", "INFO", "run", "--config",
                                 str(cfg)], stdout=subprocess.DEVNULL, stderr=out, text=True)
    found: list[tuple[int, int]] = []

    def broker_started() -> bool:
        m = re.search(r"embedded broker ready on 127\.0\.0\.1:(\d+) \(pid (\d+)\)", err.read_text())
        if m:
            found.append((int(m[1]), int(m[2])))
        return bool(m) or proc.poll() is not None

    broker_pid = 0
    try:
        assert wait_until(broker_started, 60) and found, err.read_text()[-3000:]
        port, broker_pid = found[0]
        assert _alive(broker_pid) and not _port_free(port)
        assert proc.poll() is None, err.read_text()[-3000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        assert wait_until(lambda: not _alive(broker_pid), 5), "the embedded broker outlived its parent"
        assert wait_until(lambda: _port_free(port), 5), f"port {port} is still taken"
    finally:
        if proc.poll() is None:
            proc.kill()
        if broker_pid and _alive(broker_pid):
            os.kill(broker_pid, signal.SIGKILL)  # the process this test started, by its pid
