from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

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
