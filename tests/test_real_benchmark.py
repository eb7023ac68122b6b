"""The real-tweet benchmark (``benchmarks/real.py``): its loaders, event-hour rule, oracle scorer and scoring.

Nothing here needs ``../shared/data``: tiny invented CSVs in the real files' formats are written to ``tmp_path``,
and the scoring is checked on hand-made windows and pages.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from listener.sentiment import label
from tests.benchmark_module import load

bench = load("real")

PST = timezone(timedelta(hours=-8))
AIRLINE_HEADER = ["tweet_id", "airline_sentiment", "airline_sentiment_confidence", "negativereason",
                  "negativereason_confidence", "airline", "airline_sentiment_gold", "name", "negativereason_gold",
                  "retweet_count", "text", "tweet_coord", "tweet_created", "tweet_location", "user_timezone"]
APPLE_HEADER = ["_unit_id", "_golden", "_unit_state", "_trusted_judgments", "_last_judgment_at", "sentiment",
                "sentiment:confidence", "date", "id", "query", "sentiment_gold", "text"]
DAY0 = datetime(2015, 2, 17, tzinfo=PST)
EVENT_AT = DAY0 + timedelta(days=2, hours=10)
CALM_AT = DAY0 + timedelta(days=3, hours=15)
ORDINARY_AT = DAY0 + timedelta(days=1, hours=9)


def _airline_row(n: int, when: datetime, sentiment: str, text: str, airline: str = "Southwest") -> list[str]:
    return [str(570000000000000000 + n), sentiment, "1.0", "", "", airline, "", f"user{n % 37}", "", "0", text, "",
            when.strftime("%Y-%m-%d %H:%M:%S -0800"), "", ""]


def write_airline_csv(path: Path, planted: bool = True) -> Path:
    """Five days of a steady Southwest (2 tweets an hour: one negative), a negative hour and a neutral burst."""
    rows: list[list[str]] = []
    n = 0
    for day in range(5):
        for hour in range(24):
            for k, sentiment in enumerate(("negative", "neutral")):
                n += 1
                when = DAY0 + timedelta(days=day, hours=hour, minutes=10 + 20 * k)
                rows.append(_airline_row(n, when, sentiment, f"@SouthwestAir ordinary {sentiment} {n}"))
    if planted:
        for k in range(30):
            n += 1
            rows.append(_airline_row(n, EVENT_AT + timedelta(minutes=k), "negative", f"@SouthwestAir stuck {k}"))
        for k in range(40):
            n += 1
            rows.append(_airline_row(n, CALM_AT + timedelta(minutes=k), "positive" if k % 2 else "neutral",
                                     f"RT @fan: @SouthwestAir #RedCarpet {k % 3}"))
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(AIRLINE_HEADER)
        w.writerows(rows)
    return path


def test_the_rule_finds_a_planted_negative_hour_and_a_calm_burst_but_not_an_ordinary_hour(tmp_path: Path) -> None:
    tweets = bench.load_airlines(write_airline_csv(tmp_path / "Tweets.csv"))
    assert {t.brand for t in tweets} == {"southwest"}
    table = bench.HourTable(tweets, bench.AIRLINE_OFFSET_S)
    stats = table.hours()
    events = bench.merge_hours(stats, "event", bench.AIRLINE_OFFSET_S)
    calm = bench.merge_hours(stats, "calm-burst", bench.AIRLINE_OFFSET_S)
    assert [(w.start, w.end) for w in events] == [(int(EVENT_AT.timestamp()), int(EVENT_AT.timestamp()) + 3600)]
    assert events[0].negatives == 31 and events[0].tweets == 32
    assert [w.start for w in calm] == [int(CALM_AT.timestamp())]
    ordinary = table.stat("southwest", ORDINARY_AT.timestamp())
    assert (ordinary.kind, ordinary.total, ordinary.negative, ordinary.base_negative) == ("normal", 2, 1, 1.0)
    # the planted burst's retweets are reposts
    assert sum(t.repost for t in tweets) == 40


def test_without_the_planted_hours_the_rule_finds_nothing(tmp_path: Path) -> None:
    tweets = bench.load_airlines(write_airline_csv(tmp_path / "Tweets.csv", planted=False))
    stats = bench.HourTable(tweets, bench.AIRLINE_OFFSET_S).hours()
    assert {s.kind for s in stats} == {"normal"}


def test_a_brand_without_three_other_covered_days_has_no_baseline(tmp_path: Path) -> None:
    path = write_airline_csv(tmp_path / "Tweets.csv")
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        for k in range(60):  # American: nothing for three days, then 30 tweets on each of the last two days
            when = DAY0 + timedelta(days=3 + k // 30, hours=10, minutes=k % 30)
            w.writerow(_airline_row(900 + k, when, "negative", "@AmericanAir help", "American"))
    tweets = bench.load_airlines(path)
    table = bench.HourTable(tweets, bench.AIRLINE_OFFSET_S)
    s = table.stat("american", (DAY0 + timedelta(days=4, hours=10)).timestamp())
    assert s.negative == 30 and s.kind == "no-baseline"
    assert not [w for w in bench.merge_hours(table.hours(), "event", table.offset_s) if w.brand == "american"]


def test_classify_thresholds() -> None:
    assert bench.classify(25, 20, 5.0, 6.0) == "event"  # 20 >= N_MIN and >= 3 x 6
    assert bench.classify(25, 19, 5.0, 6.0) == "raised"  # one short of N_MIN
    assert bench.classify(25, 20, 5.0, 7.0) == "raised"  # 20 < 3 x 7
    assert bench.classify(60, 10, 10.0, 8.0) == "calm-burst"
    assert bench.classify(60, 25, 10.0, 9.0) == "raised"  # 58% calm: not calm enough; 25 < 3 x 9
    assert bench.classify(80, 30, 10.0, 5.0) == "mixed"
    assert bench.classify(10, 7, 10.0, 5.0) == "normal"  # 7 <= 1.5 x 5
    assert bench.classify(10, 8, 10.0, 5.0) == "raised"
    assert bench.classify(100, 90, None, None) == "no-baseline"


def test_tweet_id_timestamps() -> None:
    # a row of the airline file: id 570306133677760513, created 2015-02-24 11:35:52 -0800
    created = datetime(2015, 2, 24, 11, 35, 52, tzinfo=PST).timestamp()
    assert abs(bench.snowflake_seconds(570306133677760513) - created) < 1.0
    assert bench.snowflake_seconds("'570306133677760513'") == bench.snowflake_seconds('"570306133677760513"')
    assert bench.snowflake_seconds(0) == bench.SNOWFLAKE_EPOCH_MS / 1000


def _tid(when: datetime) -> int:
    return (int(when.timestamp() * 1000) - bench.SNOWFLAKE_EPOCH_MS) << 22


def test_crisislex_t6_and_t26_formats(tmp_path: Path) -> None:
    when = datetime(2013, 4, 18, 0, 55, tzinfo=timezone.utc)
    t6 = tmp_path / "CrisisLexT6" / "X_Event"
    t6.mkdir(parents=True)
    (t6 / "X_Event-ontopic_offtopic.csv").write_text(
        "tweet id, tweet, label\n"
        f"'{_tid(when)}',\"Explosion at the plant, pray for West\",on-topic\n"
        f"'{_tid(when) + 5}',\"lunch, then nap\",off-topic\n", encoding="utf-8")
    got = bench.load_crisislex(tmp_path, bench.Onset("T6", "X_Event", None, True, ""))
    assert [(t.label, t.created, t.brand) for t in got] == [("negative", int(when.timestamp()), "X_Event"),
                                                             ("neutral", int(when.timestamp()), "X_Event")]
    t26 = tmp_path / "CrisisLexT26" / "Y_Event"
    t26.mkdir(parents=True)
    (t26 / "Y_Event-tweets_labeled.csv").write_text(
        "Tweet ID, Tweet Text, Information Source, Information Type, Informativeness\n"
        f"\"{_tid(when)}\",\"quake!\",Eyewitness,Affected individuals,Related and informative\n"
        f"\"{_tid(when) + 1}\",\"RT @a: felt it\",Outsiders,Not applicable,Related - but not informative\n"
        f"\"{_tid(when) + 2}\",\"#earthquake M 3.3 elsewhere\",Not labeled,Not labeled,Not related\n",
        encoding="utf-8")
    got = bench.load_crisislex(tmp_path, bench.Onset("T26", "Y_Event", None, True, ""))
    assert [t.label for t in got] == ["negative", "negative", "neutral"]
    assert [t.repost for t in got] == [False, True, False]


def test_apple_format_labels_and_no_invented_author(tmp_path: Path) -> None:
    path = tmp_path / "apple.csv"
    rows = [["1", "TRUE", "golden", "10", "", "3", "0.6", "Mon Dec 01 19:30:03 +0000 2014", "5.40E+17",
             "#AAPL OR @Apple", "3\nnot_relevant", "#AAPL: the 10 best \u201cemails\u201d"],
            ["2", "FALSE", "finalized", "3", "", "1", "1", "Tue Dec 09 01:10:00 +0000 2014", "5.42E+17",
             "#AAPL OR @Apple", "", "RT @x: protest at @Apple"],
            ["3", "FALSE", "finalized", "3", "", "not_relevant", "1", "Tue Dec 09 01:11:00 +0000 2014", "5.42E+17",
             "#AAPL OR @Apple", "", "apple pie"],
            ["4", "FALSE", "finalized", "3", "", "5", "1", "Tue Dec 09 01:12:00 +0000 2014", "5.42E+17",
             "#AAPL OR @Apple", "", "love my @Apple watch"]]
    with open(path, "w", newline="", encoding="cp1252") as f:
        w = csv.writer(f, lineterminator="\r\n")
        w.writerow(APPLE_HEADER)
        w.writerows(rows)
    got = bench.load_apple(path)
    assert [t.label for t in got] == ["neutral", "negative", "neutral", "positive"]
    assert got[0].created == int(datetime(2014, 12, 1, 19, 30, 3, tzinfo=timezone.utc).timestamp())
    assert got[0].text == "#AAPL: the 10 best \u201cemails\u201d"
    assert all(t.author is None for t in got) and [t.repost for t in got] == [False, True, False, False]


def test_oracle_scorer_returns_the_human_labels() -> None:
    T = bench.Tweet
    tweets = [T("1", "b", "awful delay", 0, None, False, "negative"),
              T("2", "b", "ok", 0, None, False, "neutral"),
              T("3", "b", "great crew", 0, None, False, "positive"),
              T("4", "b", "same text", 0, None, False, "positive"),
              T("5", "b", "same text", 0, None, False, "negative"),
              T("6", "b", "same text", 0, None, False, "negative"),
              T("7", "b", "tie", 0, None, False, "positive"),
              T("8", "b", "tie", 0, None, False, "negative")]
    scores = bench.OracleScorer(tweets).score_many(["awful delay", "ok", "great crew", "same text", "tie", "new"])
    assert [label(s) for s in scores] == ["negative", "neutral", "positive", "negative", "negative", "neutral"]
    assert all(isinstance(s, float) for s in scores)


def _table_with_hours() -> bench.HourTable:
    """Brand 'b', five days in UTC: 2 tweets an hour (1 negative); day 3 hour 12 has 12 negatives (raised)."""
    T = bench.Tweet
    tweets = []
    for day in range(5):
        for hour in range(24):
            t0 = day * 86400 + hour * 3600 + 600
            tweets += [T(f"{t0}n", "b", "x", t0, None, False, "negative"),
                       T(f"{t0}o", "b", "y", t0 + 60, None, False, "neutral")]
    tweets += [T(f"r{k}", "b", "z", 3 * 86400 + 12 * 3600 + 60 * k, None, False, "negative") for k in range(11)]
    return bench.HourTable(tweets, 0)


def _page(started: int, at: int, severity: str = "warning", top: str = "warning") -> bench.Page:
    return bench.Page("b", f"c{started}", started, at, severity, top, ("delay", "gate"), "")


def test_scoring_caught_delay_repeat_false_and_unsettled() -> None:
    table = _table_with_hours()
    H = 3600
    event = bench.Window("event", "b", "b event", 2 * 86400 + 10 * H, 2 * 86400 + 12 * H,
                         2 * 86400 + 9 * H, 2 * 86400 + 12 * H)
    missed = bench.Window("event", "b", "b missed", 4 * 86400 + 10 * H, 4 * 86400 + 11 * H,
                          4 * 86400 + 9 * H, 4 * 86400 + 11 * H)
    calm = bench.Window("calm-burst", "b", "b calm", 1 * 86400 + 5 * H, 1 * 86400 + 6 * H,
                        1 * 86400 + 4 * H, 1 * 86400 + 6 * H)
    critical = bench.Window("named-not-critical", "b", "b named", 86400 * 4 + 20 * H, 86400 * 4 + 22 * H,
                            86400 * 4 + 19 * H, 86400 * 4 + 22 * H)
    pages = [_page(2 * 86400 + 9 * H + 1800, 2 * 86400 + 10 * H + 900),   # 30 min before the event: caught
             _page(2 * 86400 + 11 * H, 2 * 86400 + 11 * H + 180),          # same event again: repeat
             _page(1 * 86400 + 5 * H + 600, 1 * 86400 + 5 * H + 780),      # in the calm burst
             _page(0 * 86400 + 3 * H, 0 * 86400 + 3 * H + 180),            # ordinary hour: false
             _page(3 * 86400 + 12 * H + 300, 3 * 86400 + 12 * H + 480),    # raised hour: unsettled
             _page(4 * 86400 + 20 * H, 4 * 86400 + 20 * H + 60, "warning", "critical")]
    verdicts = bench.score([event, missed, calm, critical], pages, {"b": table})
    assert [v.verdict for v in verdicts] == ["false", "calm-burst", "event", "repeat", "unsettled", "named"]
    assert event.paged and event.passed and event.delay_min == 15.0 and event.pages == 2
    assert event.terms == ["delay", "gate"] and event.severity == "warning"
    assert not missed.paged and missed.passed is False and missed.delay_min is None
    assert calm.paged and calm.passed is False
    assert critical.passed is False and critical.max_severity == "critical"
    summary = bench.summarise([bench.StreamRun("x", 0, windows=[event, missed, calm, critical], pages=verdicts)])
    assert summary["events_paged"] == "1/2" and summary["calm_bursts_paged"] == "1/1"
    assert (summary["false_pages"], summary["unsettled_pages"], summary["repeat_pages"]) == (1, 1, 1)


def test_an_event_inside_a_crisis_still_open_is_reported_apart_not_as_paged() -> None:
    table = _table_with_hours()
    H = 3600
    day = 2 * 86400

    def event() -> bench.Window:
        return bench.Window("event", "b", "b later", day + 14 * H, day + 15 * H, day + 13 * H, day + 15 * H)

    early = bench.Page("b", "c1", day + 8 * H, day + 8 * H + 180, "warning", "warning", (), "", day + 16 * H)
    inside = event()
    bench.score([inside], [early], {"b": table})
    assert not inside.paged and inside.passed is False and inside.in_open_crisis
    resolved = bench.Page("b", "c1", day + 8 * H, day + 8 * H + 180, "warning", "warning", (), "", day + 12 * H)
    after = event()
    bench.score([after], [resolved], {"b": table})
    assert not after.in_open_crisis
    summary = bench.summarise([bench.StreamRun("x", 0, windows=[inside, after])])
    assert summary["events_paged"] == "0/2" and summary["events_in_an_open_crisis"] == "1/2"


def test_disaster_burst_and_delays() -> None:
    onset = 1_000_000_020 // 600 * 600
    created = [onset - 86400 + 300 * k for k in range(288)]  # one tweet every 5 minutes for a day: 2 per window
    created += [onset + 600 + k for k in range(5)]  # 5 tweets: < 10
    created += [onset + 1800 + k for k in range(12)]  # 12 >= max(10, 3 x 2)
    assert bench.first_visible_burst(created, onset) == onset + 1800
    assert bench.first_visible_burst(created[:288], onset) is None
    T = bench.Tweet
    tweets = [T(str(c), "quake", "t", c, None, False, "negative") for c in created]
    o = bench.Onset("T26", "quake", datetime.fromtimestamp(onset, timezone.utc).strftime("%Y-%m-%dT%H:%M"), True, "")
    assert bench.qualifies(tweets, onset)[0]
    w = bench.disaster_window(o, tweets)
    assert (w.lo, w.hi, w.burst_at) == (onset - 1800, onset + 6 * 3600, onset + 1800)
    page = bench.Page("quake", "c", onset + 1500, onset + 2400, "critical", "critical", (), "")
    bench.score([w], [page], {"quake": bench.HourTable(tweets, 0)})
    assert w.paged and w.delay_min == 40.0 and w.burst_delay_min == 10.0
    assert not bench.qualifies(tweets[-17:], onset)[0]


def test_missing_data_is_one_clear_line_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert bench.main(["--data", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data missing" in err and "Tweets.csv" in err


def test_end_to_end_on_a_tiny_airline_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "twitter_us_airline_sentiment"
    folder.mkdir()
    write_airline_csv(folder / "Tweets.csv")
    out = tmp_path / "out.json"
    assert bench.main(["--data", str(tmp_path), "--only", "airline", "--oracle", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "summary" in text and "southwest 2015-02-19 10:00" in text
    assert '"events_paged": "' in out.read_text()
