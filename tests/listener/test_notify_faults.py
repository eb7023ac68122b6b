"""The notify role when its SQLite outbox cannot be written (another process holds the lock, the disk is full),
and when its thread dies under ``crisiswatch run``: it rides out a short outage without losing or repeating a
notice, says so on ``/healthz``, and exits non-zero — never half-alive — when it cannot go on."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.kafka import KafkaSettings, Producer
from listener.alerts import KafkaAlertSink
from listener.app import run_notify
from listener.notifiers.registry import build_notifiers
from listener.notify import build_oncall
from listener.outbox import DispatchSettings, Dispatcher, Outbox

from ..http_receiver import HttpReceiver
from ..waiting import wait_until
from .delivery_helpers import notices
from .test_notify import EVENTS, TOKEN, config_with_hook

EXPECTED = [e.id for e in EVENTS if e.status.value != "updated"]  # grouping: see test_notify.py


@contextmanager
def locked(path: str | Path) -> Iterator[None]:
    """Hold the database's write lock from another connection (as a second process would) for the block."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        db.execute("ROLLBACK")
        db.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(url: str) -> tuple[int, Any]:
    """(status, JSON body); status 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())
    except OSError:
        return 0, None


def emit(kafka: KafkaSettings) -> None:
    producer = Producer(kafka)
    sink = KafkaAlertSink(producer, kafka.alerts_topic)
    sink.emit(EVENTS)
    sink.flush()
    producer.close()


@pytest.mark.broker
def test_notify_rides_out_a_locked_outbox_and_then_delivers_every_alert_once(
        kafka: KafkaSettings, tmp_path: Path, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    config = config_with_hook(tmp_path, kafka, receiver.url + "/hook", monkeypatch)
    monkeypatch.setenv("ONCALL_TOKEN", TOKEN)
    port, metrics_port = free_port(), free_port()
    config = replace(config, outbox=replace(config.outbox, busy_timeout_s=0.2, max_unavailable_s=120.0),
                     oncall=replace(config.oncall, http_listen=f"127.0.0.1:{port}", token_env="ONCALL_TOKEN",
                                    metrics_listen=f"127.0.0.1:{metrics_port}"))
    healthz = f"http://127.0.0.1:{port}/healthz"
    metrics = f"http://127.0.0.1:{metrics_port}"
    stack = build_oncall(config)
    assert stack is not None
    stop = threading.Event()
    thread = threading.Thread(target=run_notify, args=(config, stack, stop), daemon=True)
    thread.start()
    caplog.set_level(logging.WARNING, logger="listener.notify")
    try:
        assert wait_until(lambda: get(healthz)[0] == 200, 30)
        with locked(stack.outbox.path):  # held far longer than the busy timeout, while the alerts arrive
            emit(kafka)
            assert wait_until(lambda: get(healthz)[0] == 503, 30), get(healthz)
            assert wait_until(lambda: (get(healthz)[1] or {}).get("failures", 0) >= 3, 30), get(healthz)
            status, doc = get(healthz)
            assert status == 503 and "database is locked" in doc["reason"], doc
            assert thread.is_alive() and receiver.requests == []
            # riding it out: live (no restart), not ready — on the API and on [oncall] metrics_listen alike
            for base in (f"http://127.0.0.1:{port}", metrics):
                assert get(base + "/livez")[0] == 200 and get(base + "/readyz")[0] == 503, base
            with urllib.request.urlopen(metrics + "/metrics", timeout=5) as resp:  # no token
                assert b"crisiswatch_outbox_unavailable 1.0" in resp.read()
        assert receiver.wait_for(lambda r: len(r.accepted) >= len(EXPECTED), 60), receiver.json()
        assert wait_until(lambda: get(healthz) == (200, {"status": "ok"}), 30), get(healthz)
        assert get(metrics + "/readyz")[0] == 200

        def scraped() -> str:
            with urllib.request.urlopen(metrics + "/metrics", timeout=5) as resp:
                return resp.read().decode()

        # counted once the outbox records the delivery, a moment after the receiver answered
        sent = f'crisiswatch_deliveries_sent_total{{receiver="hook"}} {len(EXPECTED)}.0'
        assert wait_until(lambda: sent in scraped(), 10), scraped()
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(30)
    assert [e["id"] for e in receiver.json()] == EXPECTED  # nothing lost, nothing sent twice
    # loud, but once per change of state, not once per retry
    lines = [r.getMessage() for r in caplog.records if r.name == "listener.notify"]
    assert len([m for m in lines if "cannot be written" in m]) == 1, lines
    assert len([m for m in lines if "can be written again" in m]) == 1, lines


def test_a_notice_sent_just_before_the_outbox_locked_is_not_sent_again(tmp_path: Path,
                                                                       receiver: HttpReceiver) -> None:
    """The receiver took the notice, then the row could not be marked delivered: it must not go out twice."""
    path = tmp_path / "outbox.db"
    box = Outbox(path, busy_timeout_s=0.1)
    box.enqueue(notices(EVENTS[:2], ["hook"]))
    hook = dict(build_notifiers([{"type": "webhook", "name": "hook", "url_env": "U", "secret_env": "S"}],
                                {"U": receiver.url, "S": "s" * 32}))["hook"]
    holder: list[Any] = []

    class LockAfterSend:
        name = "hook"

        def send(self, event: Mapping[str, Any]) -> None:
            hook.send(event)
            if not holder:  # another process takes the lock while the first request is answered
                holder.append(locked(path))
                holder[0].__enter__()

    dispatcher = Dispatcher(box, {"hook": LockAfterSend()}, DispatchSettings(rate_per_minute=6000))
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        dispatcher.run_once()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        dispatcher.run_once()  # still locked: nothing new goes out while it cannot be recorded
    assert len(receiver.accepted) == 1
    holder[0].__exit__(None, None, None)
    while dispatcher.run_once():
        pass
    assert [e["id"] for e in receiver.json()] == [e.id for e in EVENTS[:2]]
    assert box.counts() == {"delivered": 2}


def service_config(tmp_path: Path, kafka: KafkaSettings | None, extra: str = "") -> Path:
    """A config file for a subprocess: the test broker's topics (or the embedded broker when ``kafka`` is None),
    a webhook receiver, an outbox with small timeouts."""
    broker = "" if kafka is None else f"""
[kafka]
bootstrap_servers = ["{kafka.bootstrap_servers[0]}"]
mentions_topic = "{kafka.mentions_topic}"
alerts_topic = "{kafka.alerts_topic}"
dlq_topic = "{kafka.dlq_topic}"
state_topic = "{kafka.state_topic}"
group_id = "{kafka.group_id}"
enable_idempotence = false
session_timeout_ms = 3000
heartbeat_interval_ms = 1000
"""
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""{broker}
[outbox]
path = "{tmp_path / 'outbox.db'}"
busy_timeout_s = 0.2
max_unavailable_s = 3.0

[[receivers]]
type = "webhook"
name = "hook"
url_env = "HOOK_URL"
secret_env = "HOOK_SECRET"
{extra}""")
    return cfg


def started(tmp_path: Path, proc: subprocess.Popen[str]) -> bool:
    """The notify loop runs once it holds the outbox's instance lock (its pid in ``outbox.db.lock``)."""
    lock = tmp_path / "outbox.db.lock"
    return wait_until(lambda: proc.poll() is not None or (lock.exists() and lock.read_text().strip() != ""), 60)


def last_line(err: str) -> str:
    return err.strip().splitlines()[-1] if err.strip() else ""


def stop(proc: subprocess.Popen[str]) -> tuple[int | None, str]:
    """Its exit code (None if it had to be killed) and standard error."""
    code: int | None = None
    try:
        code = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    assert proc.stderr is not None
    return code, proc.stderr.read()


@pytest.mark.broker
@pytest.mark.parametrize("role", ["run", "notify"])
def test_an_outbox_locked_past_the_bound_ends_the_process_non_zero(
        role: str, kafka: KafkaSettings, tmp_path: Path, receiver: HttpReceiver) -> None:
    port = free_port()
    health = (f'[listener]\nconsole = false\nmetrics_listen = "127.0.0.1:{port}"\n' if role == "run"
              else f'[oncall]\nhttp_listen = "127.0.0.1:{port}"\ntoken_env = "ONCALL_TOKEN"\n')
    cfg = service_config(tmp_path, kafka, health)
    env = {**os.environ, "HOOK_URL": receiver.url, "HOOK_SECRET": "s" * 32, "ONCALL_TOKEN": TOKEN,
           "CRISISWATCH__ONCALL__GROUP_ID": f"notify-{kafka.group_id}"}
    proc = subprocess.Popen([sys.executable, "-m", "listener.cli", role, "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert started(tmp_path, proc) and proc.poll() is None, stop(proc)
        with locked(tmp_path / "outbox.db"):
            emit(kafka)

            def says_so() -> bool:
                status, doc = get(f"http://127.0.0.1:{port}/healthz")
                return status == 503 and "database is locked" in orjson.dumps(doc).decode()

            assert wait_until(says_so, 30)
            code, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    last = last_line(err)
    assert code == 1, err[-3000:]
    assert last.startswith("crisiswatch: ") and "database is locked" in last and "max_unavailable_s" in last, last
    assert receiver.requests == []


@pytest.mark.broker
def test_a_notify_thread_that_dies_under_run_ends_the_process_non_zero(tmp_path: Path,
                                                                       receiver: HttpReceiver) -> None:
    """With the embedded broker, listen and notify in one process: a bug in notify must not leave a
    listener that detects crises nobody is told about."""
    cfg = service_config(tmp_path, None, "[listener]\nconsole = false\n")
    env = {**os.environ, "HOOK_URL": receiver.url, "HOOK_SECRET": "s" * 32}
    inject = ("import sys\n"
              "from listener import oncall\n"
              "def tick(self):\n"
              "    raise RuntimeError('injected bug in the on-call clock')\n"
              "oncall.OnCall.tick = tick\n"
              "from listener.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.Popen([sys.executable, "-c", inject, "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        code, err = stop(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    last = last_line(err)
    assert code == 1, err[-3000:]
    assert last == "crisiswatch: the notify role failed (RuntimeError: injected bug in the on-call clock): " \
                   "stopping the service so that its supervisor restarts it", last


@pytest.mark.broker
def test_a_second_notify_with_the_api_on_fails_in_one_line_on_the_lock_not_on_the_port(
        kafka: KafkaSettings, tmp_path: Path, receiver: HttpReceiver) -> None:
    """Both would bind the same ``[oncall] http_listen``: the second must say another notify holds the outbox
    (it crashed with a traceback on "address already in use" before), and leave the first alone."""
    port = free_port()
    cfg = service_config(tmp_path, kafka, f'[oncall]\nhttp_listen = "127.0.0.1:{port}"\ntoken_env = "ONCALL_TOKEN"\n')
    env = {**os.environ, "HOOK_URL": receiver.url, "HOOK_SECRET": "s" * 32, "ONCALL_TOKEN": TOKEN,
           "CRISISWATCH__ONCALL__GROUP_ID": f"notify-{kafka.group_id}"}
    command = [sys.executable, "-m", "listener.cli", "notify", "--config", str(cfg)]
    healthz = f"http://127.0.0.1:{port}/healthz"
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert started(tmp_path, first) and first.poll() is None, stop(first)
        assert wait_until(lambda: get(healthz)[0] == 200, 30), stop(first)
        second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 2, second.stderr[-3000:]
        assert "Traceback" not in second.stderr, second.stderr[-3000:]
        assert last_line(second.stderr) == (
            f"crisiswatch: configuration error: another crisiswatch notify (pid {first.pid}) is using the outbox "
            f"{tmp_path / 'outbox.db'}: run exactly one notify process per outbox"), second.stderr[-3000:]
        assert first.poll() is None and get(healthz)[0] == 200  # the first one goes on
        first.terminate()
        code, err = stop(first)
        assert code == 0, err[-3000:]
    finally:
        if first.poll() is None:
            first.kill()
