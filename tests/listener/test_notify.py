"""The notify role against the real broker and a real HTTP receiver; its HTTP API; the on-call CLI."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.kafka import KafkaSettings, Producer, read_all
from connectors.simulator import demo_simulation
from detectors.events import iso
from listener.alerts import KafkaAlertSink
from listener.api import serving
from listener.cli import main
from listener.config import Config, ConfigError, OnCallSettings, load
from listener.notify import Notify, build_oncall, open_store, single_instance
from listener.offline import run_items
from listener.outbox import DispatchSettings
from listener.pipeline import PipelineSettings

from ..http_receiver import HttpReceiver

EVENTS = run_items(demo_simulation().items(), PipelineSettings()).events
TOKEN = "k" * 32


def config_with_hook(tmp_path: Path, kafka: KafkaSettings, url: str, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("HOOK_URL", url)
    monkeypatch.setenv("HOOK_SECRET", "s" * 32)
    return Config(
        kafka=kafka,
        receivers=({"type": "webhook", "name": "hook", "url_env": "HOOK_URL", "secret_env": "HOOK_SECRET"},),
        outbox=DispatchSettings(path=str(tmp_path / "outbox.db"), rate_per_minute=6000),
        oncall=OnCallSettings(group_id=f"notify-{kafka.group_id}"),
    )


@pytest.mark.broker
def test_alert_events_on_the_topic_reach_the_receiver_once_even_after_a_restart(
        kafka: KafkaSettings, tmp_path: Path, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    config = config_with_hook(tmp_path, kafka, receiver.url + "/hook", monkeypatch)
    producer = Producer(kafka)
    sink = KafkaAlertSink(producer, kafka.alerts_topic)
    sink.emit(EVENTS)
    producer.send(kafka.alerts_topic, b'{"not": "an alert"}', key=b"acme")
    sink.emit(EVENTS[:2])  # a listener replaying its last batch after a crash
    sink.flush()

    def run_until(done: Any) -> Notify:
        stack = build_oncall(config)
        assert stack is not None
        notify = Notify(config, stack, producer)
        for _ in range(100):
            notify.step(timeout_ms=200)
            if done(notify):
                break
        notify.consumer.close()
        stack.outbox.close()
        return notify

    # grouping: an update right after the trigger is held back, then superseded by the resolution
    expected = [e.id for e in EVENTS if e.status.value != "updated"]
    assert len(expected) < len(EVENTS)
    first = run_until(lambda n: len(receiver.accepted) >= len(expected))
    got = receiver.json()
    assert [e["id"] for e in got] == expected
    assert first.dead_letters == {"bad_alert_event": 1}
    (dead,) = read_all(kafka, kafka.dlq_topic, timeout_s=10)
    assert dict(dead.headers)["crisiswatch-reason"] == b"bad_alert_event"
    assert got[0]["oncall"]["ack_command"] == f"crisiswatch ack {EVENTS[0].crisis_id} --by NAME"

    assert first.stack.engine.replays == 2  # the replayed batch changed nothing

    # restart with the offsets lost (a new group reads the whole topic again): nothing is sent twice
    config = replace(config, oncall=OnCallSettings(group_id=f"again-{kafka.group_id}"))
    second = run_until(lambda n: n.events >= len(EVENTS) + 2)
    assert second.events == len(EVENTS) + 2 and second.stack.engine.replays == len(EVENTS) + 2
    assert len(receiver.accepted) == len(expected)
    producer.close()


@pytest.mark.broker
def test_a_flood_of_bad_alert_events_is_dead_lettered_in_full_but_logged_in_a_few_lines(
        kafka: KafkaSettings, tmp_path: Path, receiver: HttpReceiver, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    config = config_with_hook(tmp_path, kafka, receiver.url + "/hook", monkeypatch)
    producer = Producer(kafka)
    for i in range(40):
        producer.send(kafka.alerts_topic, b'{"not": "an alert %d"}' % i, key=b"acme")
    producer.flush()
    stack = build_oncall(config)
    assert stack is not None
    notify = Notify(config, stack, producer)
    caplog.set_level(logging.INFO, logger="listener.notify")
    deadline = time.monotonic() + 60
    notify.run(threading.Event(), until=lambda: notify.dead_letters["bad_alert_event"] >= 40
               or time.monotonic() > deadline)
    producer.close()
    stack.outbox.close()
    assert notify.dead_letters == {"bad_alert_event": 40}
    assert len(read_all(kafka, kafka.dlq_topic, timeout_s=10)) == 40  # every one kept, with its reason
    said = [r.getMessage() for r in caplog.records if r.name == "listener.notify"]
    assert len([m for m in said if "cannot be read" in m]) == 10, said
    assert "... and 30 more bad alert events (bad_alert_event) in the last minute" in said  # at the stop


def test_a_second_notify_on_the_same_outbox_refuses_to_start(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox.db")
    with single_instance(path):
        with pytest.raises(ConfigError, match="exactly one notify process"):
            with single_instance(path):
                pass
    with single_instance(path):  # released
        pass


def test_notify_needs_an_outbox_and_known_receivers(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[outbox\] path"):
        build_oncall(Config(receivers=({"type": "webhook", "name": "h", "url_env": "U", "secret_env": "S"},)),
                     env={"U": "http://127.0.0.1:9/x", "S": "s" * 32})
    with pytest.raises(ConfigError, match="no \\[\\[receivers\\]\\]"):
        build_oncall(Config(routes=({"receivers": ["h"]},)))
    assert build_oncall(Config()) is None


# --- the HTTP API ----------------------------------------------------------------------------------------

def call(method: str, url: str, body: Any = None, token: str | None = TOKEN) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = orjson.dumps(body) if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, orjson.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, orjson.loads(err.read())


@pytest.fixture()
def stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    config = config_with_hook(tmp_path, KafkaSettings(), "http://127.0.0.1:9/hook", monkeypatch)
    s = build_oncall(config)
    assert s is not None
    s.engine.handle(EVENTS[:1])
    yield s
    s.outbox.close()


def test_the_api_acknowledges_and_silences_with_a_token(stack: Any) -> None:
    crisis = EVENTS[0].crisis_id
    with serving(stack.store, "127.0.0.1:0", TOKEN) as (host, port):
        base = f"http://{host}:{port}"
        assert call("GET", base + "/healthz", token=None) == (200, {"status": "ok"})
        status, doc = call("GET", base + "/crises", token=None)
        assert status == 401 and "Bearer" in doc["error"]
        assert call("GET", base + "/crises", token="wrong" * 8)[0] == 401
        status, doc = call("GET", base + "/crises?open=1")
        assert status == 200 and [c["crisis_id"] for c in doc["crises"]] == [crisis]
        status, doc = call("POST", base + f"/crises/{crisis}/ack", {"by": "Ana", "note": "on it"})
        assert status == 200 and doc["acked_by"] == "Ana" and doc["ack_within_target"] is True
        status, doc = call("POST", base + "/crises/acme:nope/ack", {"by": "Ana"})
        assert status == 404 and crisis in doc["error"]
        assert call("POST", base + f"/crises/{crisis}/ack", {})[0] == 400
        status, doc = call("POST", base + "/silences", {"brand": "acme", "minutes": 30, "by": "Ana",
                                                        "comment": "launch"})
        assert status == 201
        assert [s["id"] for s in call("GET", base + "/silences")[1]["silences"]] == [doc["id"]]
        assert call("DELETE", base + f"/silences/{doc['id']}")[0] == 200
        assert call("DELETE", base + f"/silences/{doc['id']}")[0] == 404
        assert call("POST", base + "/silences", {"brand": "acme", "minutes": 30, "by": "Ana"})[0] == 400



def test_the_api_bounds_silences_names_unknown_targets_and_refuses_a_resolved_crisis(stack: Any) -> None:
    crisis, resolution = EVENTS[0].crisis_id, EVENTS[-1]
    with serving(stack.store, "127.0.0.1:0", TOKEN) as (host, port):
        base = f"http://{host}:{port}"

        def silence(**body: Any) -> tuple[int, Any]:
            return call("POST", base + "/silences", {"minutes": 30, "by": "Ana", "comment": "launch", **body})

        for minutes in (1e308, 43201, 0, -5):
            status, doc = silence(brand="acme", minutes=minutes)
            assert status == 400 and doc["error"].startswith("minutes must be") and "43200 minutes (30 days)" in doc[
                "error"]
        status, doc = silence(brand="acmee")
        assert status == 400 and "unknown brand 'acmee', did you mean 'acme'" in doc["error"]
        status, doc = silence(route="nope")
        assert status == 400 and "unknown route 'nope'" in doc["error"] and "default" in doc["error"]
        assert silence(brand="acme", minutes=43200)[0] == 201
        (made,) = call("GET", base + "/silences")[1]["silences"]
        assert made["ends"] - made["starts"] == pytest.approx(43200 * 60)

        stack.engine.handle(EVENTS)  # the crisis resolves before anyone took it
        status, doc = call("POST", base + f"/crises/{crisis}/ack", {"by": "Ana"})
        assert status == 409 and f"{crisis} was resolved at {iso(resolution.at)}" in doc["error"]
        assert call("GET", base + "/crises")[1]["summary"]["acknowledged"] == 0


def test_the_api_answers_503_when_the_database_is_locked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    connections_run(monkeypatch, "PRAGMA busy_timeout = 100")
    stack = build_oncall(config_with_hook(tmp_path, KafkaSettings(), "http://127.0.0.1:9/hook", monkeypatch))
    assert stack is not None
    stack.engine.handle(EVENTS[:1])
    with serving(stack.store, "127.0.0.1:0", TOKEN) as (host, port), locked(stack.outbox.path):
        base = f"http://{host}:{port}"
        status, doc = call("POST", base + f"/crises/{EVENTS[0].crisis_id}/ack", {"by": "Ana"})
        assert status == 503 and "database is locked" in doc["error"]
        status, doc = call("POST", base + "/silences", {"brand": "acme", "minutes": 30, "by": "Ana", "comment": "x"})
        assert status == 503 and "database is locked" in doc["error"]
    assert stack.store.crisis(EVENTS[0].crisis_id)["acked_by"] is None
    stack.outbox.close()


def connections_run(monkeypatch: pytest.MonkeyPatch, *pragmas: str) -> None:
    """Every SQLite connection opened from now on runs ``pragmas`` first: a short busy timeout (a lock fails
    at once instead of after 30 s), a page limit (the file cannot grow: what a full disk does to SQLite)."""
    connect = sqlite3.connect

    def patched(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db = connect(*args, **kwargs)
        for pragma in pragmas:
            db.execute(pragma)
        return db

    monkeypatch.setattr(sqlite3, "connect", patched)


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Another process holds the database's write lock for the block (a backup, a stuck writer)."""
    with closing(sqlite3.connect(path, isolation_level=None)) as holder:
        holder.execute("BEGIN EXCLUSIVE")
        yield
        holder.execute("ROLLBACK")


# --- the CLI -------------------------------------------------------------------------------------------

def test_ack_silence_and_crises_from_the_command_line(stack: Any, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    crisis = EVENTS[0].crisis_id
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[outbox]\npath = "{stack.outbox.path}"\n[oncall]\nack_target_minutes = 20\n')
    assert main(["ack", "acme:nope", "--by", "Ana", "--config", str(cfg)]) == 1
    assert crisis in capsys.readouterr().err
    assert main(["ack", crisis, "--by", "Ana", "--note", "holding statement", "--config", str(cfg)]) == 0
    assert "acknowledged by Ana" in capsys.readouterr().out and "20-minute target" not in ""
    assert main(["ack", crisis, "--by", "Bob", "--config", str(cfg)]) == 0
    assert "already acknowledged by Ana" in capsys.readouterr().out
    assert main(["silence", "add", "--brand", "acme", "--for", "2h", "--by", "Ana", "--comment", "launch",
                 "--config", str(cfg)]) == 0
    assert "until" in capsys.readouterr().out
    assert main(["silence", "list", "--config", str(cfg)]) == 0
    assert "by Ana (cli): launch" in capsys.readouterr().out
    assert main(["silence", "add", "--brand", "acme", "--by", "Ana", "--config", str(cfg)]) == 1
    assert main(["crises", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert crisis in out and "1 crises, 1 acknowledged, 1 within the 20-minute target" in out
    assert main(["crises", "--json", "--config", str(cfg)]) == 0
    lines = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines[0]["acked_by"] == "Ana" and lines[-1]["summary"]["crises"] == 1
    assert load(cfg).oncall.ack_target_minutes == 20
    assert open_store(load(cfg)).crisis(crisis)["ack_note"] == "holding statement"



def oncall_config(tmp_path: Path, stack: Any, extra: str = "") -> str:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[outbox]\npath = "{stack.outbox.path}"\n{extra}')
    return str(cfg)


def test_silences_from_the_command_line_are_bounded_and_name_what_exists(
        stack: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = oncall_config(tmp_path, stack, '[[brands]]\nname = "globex"\nkeywords = ["globex"]\n')

    def silence(*args: str) -> int:
        return main(["silence", "add", *args, "--by", "Ana", "--comment", "launch", "--config", cfg])

    for duration in ("999999999h", "inf", "nan", "31d", "0", "-5m"):
        assert silence("--brand", "acme", f"--for={duration}") == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--for must be" in err and "43200 minutes (30 days)" in err
    assert silence("--brand", "acmee") == 1
    err = capsys.readouterr().err
    assert "unknown brand 'acmee', did you mean 'acme'" in err and "acme, globex" in err
    assert silence("--route", "defualt") == 1
    assert "unknown route 'defualt', did you mean 'default'" in capsys.readouterr().err
    assert silence("--brand", "globex", "--for", "30d") == 0  # configured, no crisis yet; 30 days is the limit
    assert silence("--brand", "acme", "--route", "default") == 0  # a crisis on record, not configured
    capsys.readouterr()
    assert main(["silence", "list", "--config", cfg]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_silence_list_shows_a_silence_stored_with_an_absurd_end(stack: Any, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Older versions stored any length (``--for 999999999h``, ``"minutes": 1e308``): such a row is listed, not
    a crash that hides every silence."""
    now = time.time()
    stack.store.add_silence("acme", "", now, now + 3600, "Ana", "launch", "cli")
    with closing(sqlite3.connect(stack.outbox.path)) as db, db:
        db.executemany("INSERT INTO silences (brand, route, starts, ends, created_by, comment, created, origin) "
                       "VALUES ('acme', '', ?, ?, 'Bob', ?, ?, 'cli')",
                       [(now, now + 999999999 * 3600, "for 999999999h", now), (now, 1e308 * 60, "1e308 min", now)])
    assert main(["silence", "list", "--config", oncall_config(tmp_path, stack)]) == 0
    ends = [line.split(" -> ")[1] for line in capsys.readouterr().out.splitlines()]
    assert ends[0].endswith("UTC  by Ana (cli): launch")
    assert ends[1:] == ["far future  by Bob (cli): for 999999999h", "far future  by Bob (cli): 1e308 min"]


def test_acknowledging_a_resolved_crisis_fails_on_the_command_line_and_counts_nothing(
        stack: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    crisis, resolution = EVENTS[0].crisis_id, EVENTS[-1]
    cfg = oncall_config(tmp_path, stack)
    stack.engine.handle(EVENTS)
    assert main(["ack", crisis, "--by", "Ana", "--config", cfg]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{crisis} was resolved at {iso(resolution.at)}" in err
    assert main(["crises", "--json", "--config", cfg]) == 0
    *_, summary = [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (summary["summary"]["acknowledged"], summary["summary"]["ack_within_target"]) == (0, 0)


@pytest.mark.parametrize("pragma, words", [
    ("PRAGMA busy_timeout = 100", "database is locked"),
    ("PRAGMA max_page_count = {pages}", "database or disk is full"),
])
def test_a_locked_or_full_database_fails_ack_and_silence_in_one_line(
        stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        pragma: str, words: str) -> None:
    """Another process holding the lock, or a disk with no room for the new rows (the file may not grow past
    its pages; the long note and comment need new ones): one line that says so, nothing saved."""
    crisis, cfg = EVENTS[0].crisis_id, oncall_config(tmp_path, stack)
    pages = stack.outbox.read("PRAGMA page_count")[0]["page_count"]
    connections_run(monkeypatch, pragma.format(pages=pages))
    commands = (["ack", crisis, "--by", "Ana", "--note", "n" * 20_000, "--config", cfg],
                ["silence", "add", "--brand", "acme", "--by", "Ana", "--comment", "c" * 20_000, "--config", cfg])
    with locked(stack.outbox.path) if "busy" in pragma else nullcontext():
        for argv in commands:
            assert main(argv) == 1
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and words in err and "nothing was saved" in err and "rollback" not in err
    assert stack.store.crisis(crisis)["acked_by"] is None and stack.store.silences() == []


@pytest.mark.broker
def test_notify_rides_through_a_failing_kafka_commit(kafka: KafkaSettings, tmp_path: Path, receiver: HttpReceiver,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from connectors.kafka import BrokerError, Consumer

    config = config_with_hook(tmp_path, kafka, receiver.url + "/hook", monkeypatch)
    producer = Producer(kafka)
    sink = KafkaAlertSink(producer, kafka.alerts_topic)
    sink.emit(EVENTS[:1])
    sink.flush()
    failures = [1]

    class Flaky(Consumer):
        def commit(self, next_offsets):  # type: ignore[no-untyped-def]
            if next_offsets and failures[0]:
                failures[0] -= 1
                raise BrokerError("commit failed: the coordinator is not available")
            super().commit(next_offsets)

    stack = build_oncall(config)
    assert stack is not None
    notify = Notify(config, stack, producer, consumer_factory=Flaky)
    stop = threading.Event()
    thread = threading.Thread(target=notify.run, args=(stop,), daemon=True)
    thread.start()
    try:
        assert receiver.wait_for(lambda r: len(r.accepted) >= 1, timeout_s=60)
        assert thread.is_alive() and notify.broker_errors == 1
    finally:
        stop.set()
        thread.join(30)
        producer.close()
    assert [e["id"] for e in receiver.json()] == [EVENTS[0].id]  # delivered once, despite the events read again
