from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from connectors.mention import Mention, encode
from connectors.replay import FileReplay
from connectors.simulator import BrandProfile, InjectedCrisis, Simulation, demo_simulation
from connectors.source import Rejected, paced

START = datetime(2026, 11, 23, tzinfo=timezone.utc)


def test_jsonl_replay_yields_mentions_and_rejects_with_line_numbers(tmp_path: Path) -> None:
    good = Mention(id="1", source="x", brand="acme", text="hi", created_at=START)
    path = tmp_path / "m.jsonl"
    path.write_bytes(encode(good) + b"\n\n{broken\n" + b'{"id": "2"}\n')
    items = list(FileReplay(path).items())
    assert items[0] == good
    assert [(i.reason, i.origin) for i in items[1:]] == [
        ("invalid_json", "file:m.jsonl:3"), ("missing_field", "file:m.jsonl:4")]
    assert all(isinstance(i, Rejected) for i in items[1:])


def test_csv_replay_maps_columns_and_keeps_created_at(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text(
        "tweet_id,text,tweet_created,name,retweet_count\n"
        "570306133677760513,@united why is my bag lost,2015-02-24 11:35:52 -0800,cairdin,3\n"
        "570306133677760514,ok,not a date,x,0\n", encoding="utf-8")
    replay = FileReplay(path, columns={"id": "tweet_id", "text": "text", "created_at": "tweet_created",
                                       "author": "name", "reach": "retweet_count"},
                        constants={"brand": "united", "source": "twitter"}, time_format="%Y-%m-%d %H:%M:%S %z")
    first, second = list(replay.items())
    assert isinstance(first, Mention)
    assert (first.id, first.brand, first.source, first.author, first.reach) == (
        "570306133677760513", "united", "twitter", "cairdin", 3)
    assert first.created_at == datetime(2015, 2, 24, 19, 35, 52, tzinfo=timezone.utc)
    assert isinstance(second, Rejected) and second.reason == "bad_timestamp" and second.origin.endswith(":3")


def test_paced_replay_spaces_items_by_event_time_over_speed() -> None:
    items = [Mention(id=str(i), source="x", brand="b", text="t", created_at=START + timedelta(seconds=60 * i))
             for i in range(3)]
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    out = list(paced(items, speed=60.0, sleep=sleep, clock=lambda: now[0]))
    assert out == items
    assert slept == [1.0, 1.0]
    assert list(paced(items, speed=None)) == items


def test_simulator_is_deterministic_and_ordered() -> None:
    sim = Simulation(brands=(BrandProfile("a", 2.0), BrandProfile("b", 1.0)), start=START, minutes=120, seed=3)
    first = list(sim.items())
    assert first == list(sim.items())
    assert first != list(Simulation(brands=sim.brands, start=START, minutes=120, seed=4).items())
    times = [m.created_at for m in first]
    assert times == sorted(times)
    assert {m.brand for m in first} == {"a", "b"}
    assert len({m.id for m in first}) == len(first)


def test_injected_crisis_adds_themed_negative_mentions() -> None:
    crisis = InjectedCrisis("a", START + timedelta(minutes=60), "outage", duration_minutes=30, peak_per_minute=20)
    base = Simulation(brands=(BrandProfile("a", 2.0),), start=START, minutes=120, seed=3)
    with_crisis = Simulation(brands=base.brands, start=START, minutes=120, seed=3, crises=(crisis,))
    extra = [m for m in with_crisis.items() if "outage" in m.text.lower()]
    assert len(extra) > 200
    assert all(START + timedelta(minutes=60) <= m.created_at < START + timedelta(minutes=90) for m in extra)
    assert not [m for m in base.items() if "outage" in m.text.lower()]


def test_demo_simulation_round_trips_through_the_wire_format() -> None:
    from connectors.mention import decode

    for m in list(demo_simulation().items())[:500]:
        assert decode(orjson.dumps(m.to_dict())) == m


def test_a_file_source_with_a_missing_file_fails_at_start_up_naming_the_key(tmp_path: Path) -> None:
    import pytest

    from connectors.registry import SourceConfigError, build_source

    with pytest.raises(SourceConfigError, match=r"sources\[2\]\.path"):
        build_source({"type": "file", "path": str(tmp_path / "nope.jsonl")}, 2)
    with pytest.raises(SourceConfigError, match=r"sources\[0\]\.type must be one of"):
        build_source({"type": "telepathy"})
    with pytest.raises(SourceConfigError, match=r"unknown key sources\[0\]\.pth"):
        build_source({"type": "file", "pth": "x", "path": __file__})


NAIVE_CSV = "tweet_id,text,tweet_created\n1,flight delayed again,2015-02-24 11:35:52\n2,lost my bag,2015-02-24 11:36:10\n"


def test_naive_timestamps_are_rejected_with_the_fix_unless_a_timezone_is_given(tmp_path: Path) -> None:
    """A CSV written without a timezone sent every row to the dead-letter topic as bad_timestamp, with no way to
    say which zone it was written in; ``timezone`` names it (any IANA zone), for CSV and JSON lines alike."""
    path = tmp_path / "naive.csv"
    path.write_text(NAIVE_CSV)
    columns = {"id": "tweet_id", "text": "text", "created_at": "tweet_created"}
    constants = {"brand": "united", "source": "twitter"}
    rejected = list(FileReplay(path, columns=columns, constants=constants).items())
    assert all(isinstance(r, Rejected) and r.reason == "bad_timestamp" for r in rejected)
    assert rejected[0].origin == "file:naive.csv:2" and "timezone" in rejected[0].fix
    new_york = list(FileReplay(path, columns=columns, constants=constants, timezone="America/New_York").items())
    assert [m.created_at for m in new_york] == [datetime(2015, 2, 24, 16, 35, 52, tzinfo=timezone.utc),
                                               datetime(2015, 2, 24, 16, 36, 10, tzinfo=timezone.utc)]
    # with a time_format too, and a timestamp that carries its own zone keeps it
    (m,) = FileReplay(_csv(tmp_path, "2015-02-24 11:35:52"), columns=columns, constants=constants,
                      time_format="%Y-%m-%d %H:%M:%S", timezone="Europe/Paris").items()
    assert m.created_at == datetime(2015, 2, 24, 10, 35, 52, tzinfo=timezone.utc)
    (m,) = FileReplay(_csv(tmp_path, "2015-02-24T11:35:52+00:00"), columns=columns, constants=constants,
                      timezone="America/New_York").items()
    assert m.created_at == datetime(2015, 2, 24, 11, 35, 52, tzinfo=timezone.utc)
    jsonl = tmp_path / "naive.jsonl"
    jsonl.write_bytes(orjson.dumps({"id": "1", "brand": "acme", "source": "x", "text": "down again",
                                    "created_at": "2026-11-23T10:00:00"}) + b"\n")
    (bad,) = FileReplay(jsonl).items()
    assert isinstance(bad, Rejected) and bad.reason == "bad_timestamp" and "timezone" in bad.fix
    (m,) = FileReplay(jsonl, timezone="UTC").items()
    assert m.created_at == datetime(2026, 11, 23, 10, tzinfo=timezone.utc)


def _csv(tmp_path: Path, stamp: str) -> Path:
    path = tmp_path / "one.csv"
    path.write_text(f"tweet_id,text,tweet_created\n1,flight delayed again,{stamp}\n")
    return path


def test_the_file_source_timezone_option_is_checked_at_start_up(tmp_path: Path) -> None:
    import pytest

    from connectors.registry import SourceConfigError, build_source

    path = tmp_path / "naive.csv"
    path.write_text(NAIVE_CSV)
    source = build_source({"type": "file", "path": str(path), "timezone": "America/New_York",
                           "columns": {"id": "tweet_id", "text": "text", "created_at": "tweet_created"},
                           "constants": {"brand": "united", "source": "twitter"}})
    assert len([m for m in source.items() if not isinstance(m, Rejected)]) == 2
    with pytest.raises(SourceConfigError, match=r"sources\[1\]\.timezone.*'Mars/Olympus'.*America/New_York"):
        build_source({"type": "file", "path": str(path), "timezone": "Mars/Olympus"}, 1)
