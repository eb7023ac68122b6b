from __future__ import annotations

from pathlib import Path

import pytest

from listener.config import Config, ConfigError, load


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_defaults_without_file() -> None:
    c = load(None, env={})
    assert c == Config()
    assert c.kafka.embedded
    assert (c.outbox.busy_timeout_s, c.outbox.max_unavailable_s) == (30.0, 300.0)


def test_full_file_maps_to_typed_settings(tmp_path: Path) -> None:
    c = load(write(tmp_path, """
[kafka]
bootstrap_servers = ["k1:9092", "k2:9092"]
group_id = "g"
[kafka.extra]
ssl_check_hostname = false
[listener]
allowed_lateness_s = 30
history_path = "/tmp/h.jsonl"
[detector]
window_minutes = 15
severity_ratios = [2.0, 4.0, 8.0]
[detector.baseline]
mature_minutes = 60
[[sources]]
type = "file"
path = "m.jsonl"
"""), env={})
    assert c.kafka.bootstrap_servers == ("k1:9092", "k2:9092") and c.kafka.extra == {"ssl_check_hostname": False}
    assert c.detector.window_minutes == 15 and c.detector.severity_ratios == (2.0, 4.0, 8.0)
    assert c.detector.baseline.mature_minutes == 60
    assert c.pipeline.buckets.allowed_lateness_s == 30
    assert c.sources[0]["path"] == "m.jsonl"


def test_environment_overrides_single_keys(tmp_path: Path) -> None:
    c = load(write(tmp_path, "[kafka]\ngroup_id = 'file'\n"), env={
        "CRISISWATCH__KAFKA__BOOTSTRAP_SERVERS": "kafka:9092,kafka2:9092",
        "CRISISWATCH__KAFKA__GROUP_ID": "env",
        "CRISISWATCH__DETECTOR__WINDOW_MINUTES": "20",
        "UNRELATED": "x",
    })
    assert c.kafka.bootstrap_servers == ("kafka:9092", "kafka2:9092")
    assert c.kafka.group_id == "env" and c.detector.window_minutes == 20


@pytest.mark.parametrize("text, words", [
    ("[detector]\nwindow_minuts = 10\n", ["detector.window_minuts", "did you mean 'window_minutes'"]),
    ("[detector]\nwindow_minutes = 'ten'\n", ["detector.window_minutes", "whole number"]),
    ("[detector]\nwindow_minutes = 0\n", ["detector.window_minutes", "greater than 0"]),
    ("[detector]\np_value = 2.0\n", ["detector.p_value", "between 0 and 1"]),
    ("[detector]\nresolve_ratio = 5.0\n", ["resolve_ratio", "lower than"]),
    ("[detector]\nstrong_p_value = 0.01\n", ["detector.strong_p_value", "below detector.p_value"]),
    ("[detector]\nnotice_delay_minutes = -1\n", ["detector.notice_delay_minutes", ">= 0"]),
    ("[detector]\nvolume_notices = 1\n", ["detector.volume_notices", "true or false"]),
    ("[kafka]\nheartbeat_interval_ms = 9000\n", ["heartbeat_interval_ms", "session_timeout_ms"]),
    ("[kafka]\ncompression_type = 'brotli'\n", ["kafka.compression_type"]),
    ("[outbox]\nmax_unavailable_s = 0\n", ["outbox.max_unavailable_s", "greater than 0"]),
    ("[outbox]\nbusy_timeout_s = 60\nmax_unavailable_s = 30\n",
     ["outbox.max_unavailable_s (30)", "longer than outbox.busy_timeout_s (60)", "max_unavailable_s = 300"]),
    ("[listner]\n", ["unknown config key 'listner'", "did you mean 'listener'"]),
    ("[listener]\nconsole = 'yes'\n", ["listener.console", "true or false"]),
    ("kafka = 3\n", ["[kafka] must be a table"]),
    ("[kafka\n", ["not valid TOML"]),
])
def test_bad_config_names_key_and_fix(tmp_path: Path, text: str, words: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, text), env={})
    for w in words:
        assert w in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "nope.toml", env={})


def test_environment_values_take_the_type_of_the_option_they_fill() -> None:
    c = load(None, env={
        "CRISISWATCH__KAFKA__EXTRA__SASL_PLAIN_PASSWORD": "123456",
        "CRISISWATCH__KAFKA__CLIENT_ID": "true",
        "CRISISWATCH__KAFKA__CREATE_TOPICS": "false",
        "CRISISWATCH__DETECTOR__P_VALUE": "0.01",
        "CRISISWATCH__DETECTOR__SEVERITY_RATIOS": "[2.0, 5.0, 9.0]",
        "CRISISWATCH__KAFKA__BOOTSTRAP_SERVERS": "k:9092",
    })
    assert c.kafka.extra == {"sasl_plain_password": "123456"}
    assert c.kafka.client_id == "true" and c.kafka.create_topics is False
    assert c.detector.p_value == 0.01 and c.detector.severity_ratios == (2.0, 5.0, 9.0)
    assert c.kafka.bootstrap_servers == ("k:9092",)
    assert "123456" not in repr(c)


def test_bad_env_name_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="CRISISWATCH__KAFKA__GROUP_ID"):
        load(None, env={"CRISISWATCH__KAFKA": "x"})
