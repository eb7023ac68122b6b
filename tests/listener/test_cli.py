from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from listener.cli import main


def test_detect_cli_writes_alerts_series_and_rejects(tmp_path: Path) -> None:
    mentions = tmp_path / "m.jsonl"
    assert main(["simulate", "--output", str(mentions)]) == 0
    with open(mentions, "ab") as f:
        f.write(b"{oops\n")
    out, series, rejects = tmp_path / "a.jsonl", tmp_path / "s.csv", tmp_path / "r.jsonl"
    assert main(["detect", "--input", str(mentions), "--output", str(out), "--series", str(series),
                 "--rejects", str(rejects)]) == 0
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [e["status"] for e in events][0] == "triggered"
    for key in ("id", "brand", "status", "severity", "at", "started_at", "summary", "stats", "evidence", "playbook"):
        assert key in events[0]
    assert {"terms", "mentions"} <= set(events[0]["evidence"])
    assert series.read_text().splitlines()[0].startswith("brand,minute,mentions,negative")
    (reject,) = [orjson.loads(line) for line in rejects.read_bytes().splitlines()]
    assert reject["reason"] == "invalid_json" and reject["raw"] == "{oops"


def test_bad_config_exits_2_with_the_key_named(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[detector]\nwindow_minuts = 3\n")
    proc = subprocess.run([sys.executable, "-m", "listener.cli", "detect", "--input", "x", "--output", "y",
                           "--config", str(cfg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "detector.window_minuts" in proc.stderr and "window_minutes" in proc.stderr


def test_sources_lists_each_source_with_its_status(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    good = tmp_path / "m.jsonl"
    good.write_text("")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"""
[ingest]
checkpoint_dir = "{tmp_path / 'cp'}"

[[sources]]
type = "file"
path = "{good}"

[[sources]]
type = "file"
path = "{tmp_path / 'missing.jsonl'}"
""")
    assert main(["sources", "--config", str(cfg)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:4] == ["0", "file", "file:m.jsonl", "ok"]
    assert out[2].split()[:2] == ["1", "file"] and "ERROR" in out[2]
    assert "sources[1].path" in out[3]


def test_sentiment_command_scores_each_stdin_line_even_with_bad_bytes() -> None:
    import subprocess
    import sys

    import orjson

    out = subprocess.run([sys.executable, "-m", "listener.cli", "sentiment"], check=True, capture_output=True,
                         input=b"still waiting on hold for 2 hours @united\nlove it\n\n\xff outage again\n").stdout
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert [r["label"] for r in rows] == ["negative", "positive", "neutral", "negative"]
    stock = subprocess.run([sys.executable, "-m", "listener.cli", "sentiment", "--stock"], check=True,
                           capture_output=True, input=b"still waiting on hold for 2 hours @united\n").stdout
    assert orjson.loads(stock)["label"] == "positive"  # what stock VADER makes of it


def test_nab_command_writes_one_alert_file_per_series_and_refuses_a_wrong_folder(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    from listener.cli import main

    series = tmp_path / "nab" / "realTweets"
    series.mkdir(parents=True)
    rows = ["timestamp,value"] + [f"2015-03-0{1 + i // 288} {(i % 288) // 12:02d}:{(i % 12) * 5:02d}:53,{5 + i % 3}"
                                  for i in range(288 * 3)]
    (series / "Twitter_volume_X.csv").write_text("\n".join(rows) + "\n")
    assert main(["nab", "--data", str(tmp_path / "nab"), "--out", str(tmp_path / "out")]) == 0
    out = (tmp_path / "out" / "Twitter_volume_X.csv").read_text().splitlines()
    assert out[0] == "timestamp,alert" and len(out) == len(rows)
    assert {line.rsplit(",", 1)[1] for line in out[1:]} <= {"0", "1"}
    assert main(["nab", "--data", str(tmp_path), "--out", str(tmp_path / "o2")]) == 2
    assert "realTweets" in capsys.readouterr().err


def _cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """The real command line, as a person runs it."""
    import os

    return subprocess.run([sys.executable, "-m", "listener.cli", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def test_a_missing_input_is_one_line_and_missing_output_folders_are_created(tmp_path: Path) -> None:
    """``detect --input nope.jsonl`` printed a 20-line traceback (and so did an output in a folder not yet made)."""
    proc = _cli("detect", "--input", "nope.jsonl", "--output", "a.jsonl", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr == "crisiswatch detect: no such file: nope.jsonl\n"
    proc = _cli("simulate", "--output", "out/x.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    proc = _cli("detect", "--input", "out/x.jsonl", "--output", "alerts/a.jsonl", "--series", "series/s.csv",
                "--rejects", "rejects/r.jsonl", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert all((tmp_path / p).is_file() for p in ("alerts/a.jsonl", "series/s.csv", "rejects/r.jsonl"))
    (tmp_path / "file.txt").write_text("")
    for args, message in (
        (("nab", "--data", "nab", "--out", "o"), "crisiswatch nab: no such folder: nab"),
        (("nab", "--data", "file.txt", "--out", "o"), "crisiswatch nab: not a folder: file.txt"),
        (("nab", "--data", "out", "--out", "file.txt"), "crisiswatch nab: not a folder: file.txt"),
        (("sources", "--config", "nope.toml"), "crisiswatch sources: no such file: nope.toml"),
        (("ack", "x:1", "--by", "me", "--config", "nope.toml"), "crisiswatch ack: no such file: nope.toml"),
        (("detect", "--input", "out", "--output", "a.jsonl"), "crisiswatch detect: not a file: out (a folder)"),
        (("detect", "--input", "out/x.jsonl", "--output", "out"), "crisiswatch detect: not a file: out (a folder)"),
        (("simulate", "--output", "file.txt/x.jsonl"),
         "crisiswatch simulate: cannot create the folder file.txt: a file has that name"),
    ):
        proc = _cli(*args, cwd=tmp_path)
        assert (proc.returncode, proc.stderr) == (2, message + "\n"), args


def test_every_path_option_goes_through_the_one_path_check() -> None:
    """One helper checks every path the command line takes: a new command's --input cannot forget it."""
    import argparse

    from listener import cli

    kinds = {"--input": "file", "--config": "file", "--data": "folder",
             "--output": "file", "--series": "file", "--rejects": "file", "--out": "folder"}
    seen = set()
    sub = next(a for a in cli.parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, p in sub.choices.items():
        for action in p._actions:
            for option in action.option_strings:
                if option in kinds:
                    assert isinstance(action.type, cli.PathOption), (command, option)
                    assert action.type.kind == kinds[option], (command, option)
                    seen.add(option)
    assert seen == set(kinds)


NAIVE_CSV = "tweet_id,text,tweet_created\n1,flight delayed again,2015-02-24 11:35:52\n2,lost my bag,2015-02-24 11:36:10\n"


def _naive_source(path: Path, extra: str = "") -> str:
    return f"""
[[sources]]
type = "file"
path = "{path}"
columns = {{ id = "tweet_id", text = "text", created_at = "tweet_created" }}
constants = {{ brand = "united", source = "twitter" }}
{extra}
"""


def _topics(tag: str) -> str:
    return f"""
[kafka]
mentions_topic = "mentions-{tag}"
alerts_topic = "alerts-{tag}"
dlq_topic = "dlq-{tag}"
state_topic = "state-{tag}"
group_id = "g-{tag}"
"""


@pytest.mark.broker
def test_an_ingest_that_rejects_everything_exits_non_zero_with_the_reasons_and_the_fix(tmp_path: Path,
                                                                                       broker) -> None:  # type: ignore[no-untyped-def]
    """A CSV without timezones: 'published 0 mentions, 7948 rejected' without a reason, and exit 0."""
    import uuid

    tweets = tmp_path / "tweets.csv"
    tweets.write_text(NAIVE_CSV)
    env = {"CRISISWATCH__KAFKA__BOOTSTRAP_SERVERS": broker.bootstrap}
    cfg = tmp_path / "c.toml"
    cfg.write_text(_topics(uuid.uuid4().hex[:8]) + _naive_source(tweets))
    proc = _cli("ingest", "--config", str(cfg), env=env)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr
    assert "published 0 mentions, 2 rejected" in err and "Traceback" not in err
    assert "bad_timestamp 2" in err and "file:tweets.csv:2" in err and "'2015-02-24 11:35:52'" in err
    assert 'timezone = "UTC"' in err  # the fix
    assert len(err.splitlines()) <= 6, err

    cfg.write_text(_topics(uuid.uuid4().hex[:8]) + _naive_source(tweets, 'timezone = "America/New_York"'))
    proc = _cli("ingest", "--config", str(cfg), env=env)
    assert proc.returncode == 0, proc.stderr
    assert "published 2 mentions, 0 rejected" in proc.stderr and "bad_timestamp" not in proc.stderr


@pytest.mark.broker
def test_run_warns_with_the_rejection_summary_when_a_file_source_finishes(tmp_path: Path) -> None:
    import os
    import signal
    import threading

    tweets = tmp_path / "tweets.csv"
    tweets.write_text(NAIVE_CSV)
    cfg = tmp_path / "c.toml"
    cfg.write_text("[listener]\nconsole = false\n" + _naive_source(tweets))
    proc = subprocess.Popen([sys.executable, "-m", "listener.cli", "run", "--config", str(cfg)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    warned = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            if "bad_timestamp" in line:
                warned.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert warned.wait(90), "".join(lines)[-3000:]
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    text = "".join(lines)
    assert "WARNING" in text and "file:tweets.csv" in text and "2 of 2" in text and 'timezone = "UTC"' in text


def test_sources_shows_a_file_source_whose_rows_are_all_rejected(tmp_path: Path) -> None:
    tweets = tmp_path / "tweets.csv"
    tweets.write_text(NAIVE_CSV)
    cfg = tmp_path / "c.toml"
    cfg.write_text(_naive_source(tweets))
    proc = _cli("sources", "--config", str(cfg))
    assert proc.returncode == 1, proc.stdout
    row = proc.stdout.splitlines()[1].split()
    assert row[:4] == ["0", "file", "file:tweets.csv", "ERROR"]
    assert "bad_timestamp" in proc.stdout and 'timezone = "UTC"' in proc.stdout
    cfg.write_text(_naive_source(tweets, 'timezone = "UTC"'))
    proc = _cli("sources", "--config", str(cfg))
    assert proc.returncode == 0 and proc.stdout.splitlines()[1].split()[3] == "ok", proc.stdout


BRAND_TYPO = """
[[brands]]
name = "acme"
keyword = ["acme"]
"""

RSS_WITHOUT_BRANDS = """
[[sources]]
type = "rss"
urls = ["https://example.com/feed.xml"]
"""


@pytest.mark.parametrize("body, key, fix", [
    (BRAND_TYPO, "brands[0].keyword", "did you mean 'keywords'?"),
    (RSS_WITHOUT_BRANDS, "rss", "[[brands]]"),
], ids=["brand-typo", "rss-without-brands"])
def test_every_command_refuses_the_config_run_refuses_with_the_same_message(tmp_path: Path, body: str, key: str,
                                                                           fix: str) -> None:
    """``sources`` said ok (and ``listen``/``notify`` started) with a config ``run`` refuses."""
    good = tmp_path / "m.jsonl"
    good.write_text("")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[ingest]\ncheckpoint_dir = "{tmp_path / "cp"}"\n\n[[sources]]\ntype = "file"\npath = "{good}"\n'
                   + body)
    env = {"CRISISWATCH__KAFKA__BOOTSTRAP_SERVERS": "127.0.0.1:9"}  # refused before any connection
    messages = {}
    for command in ("run", "ingest", "listen", "notify", "sources"):
        proc = _cli(command, "--config", str(cfg), env=env, timeout=30)
        assert proc.returncode == 2, (command, proc.stdout, proc.stderr[-2000:])
        messages[command] = proc.stderr
    assert len(set(messages.values())) == 1, messages
    (message,) = set(messages.values())
    assert message.startswith("crisiswatch: configuration error:") and key in message and fix in message
    assert len(message.splitlines()) == 1


def test_the_benign_kafka_metadata_cancel_is_demoted_and_real_kafka_errors_stay() -> None:
    """Every start logged ``ERROR kafka.cluster: Metadata refresh: failed Cancelled`` (a request cancelled by the
    client closing its bootstrap connection): at DEBUG now; a refresh that really failed stays an ERROR."""
    code = """
import logging
from kafka.errors import Cancelled, KafkaConnectionError
from listener.cli import setup_logging
setup_logging("DEBUG", "text")
log = logging.getLogger("kafka.cluster")
log.error("Metadata refresh: failed %s", Cancelled())
log.error("Metadata refresh: failed %s", KafkaConnectionError("111 ECONNREFUSED"))
log.error("something else: %s", Cancelled())
selector = logging.getLogger("kafka.net.selector")
for error in (ValueError("generator already executing"), RuntimeError("boom")):
    try:
        raise error
    except Exception:
        selector.exception("Error closing coroutine for cancelled task")
transport = logging.getLogger("kafka.net.transport")
for error in (AttributeError("'NoneType' object has no attribute 'recv'"), OSError("Connection reset")):
    try:
        raise error
    except Exception:
        transport.exception("%s: Error receiving network data closing socket", "<KafkaTCPTransport>")
"""
    err = [line for line in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           timeout=60, check=True).stderr.splitlines() if " ERROR " in line
           or "Error:" in line]
    assert len(err) == 6, err
    assert "ERROR kafka.cluster: Metadata refresh: failed KafkaConnectionError: 111 ECONNREFUSED" in err[0]
    assert "ERROR kafka.cluster: something else: Cancelled" in err[1]
    assert "ERROR kafka.net.selector: Error closing coroutine for cancelled task" in err[2]
    assert err[3] == "RuntimeError: boom" and "generator already executing" not in "".join(err)
    assert "ERROR kafka.net.transport: <KafkaTCPTransport>: Error receiving network data" in err[4]
    assert err[5] == "OSError: Connection reset" and "NoneType" not in "".join(err)
