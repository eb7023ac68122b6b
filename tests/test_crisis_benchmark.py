"""The crisis benchmark's generator and scoring (``benchmarks/crisis.py``), on its built-in text sample.

Nothing here needs ``../shared/data``: the generator runs on the tiny invented sample the module carries, and the
matcher is checked on hand-made events and alerts.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from connectors.mention import decode, encode
from detectors import DetectorConfig
from detectors.signals import window_signal

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "crisis.py"
_spec = importlib.util.spec_from_file_location("crisis_benchmark", _PATH)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["crisis_benchmark"] = bench
_spec.loader.exec_module(bench)

MENU = ("sudden", "bot-burst", "gap", "share-shift", "positive-viral", "neutral-news", "slow-burn")
CONFIG = bench.BenchConfig(
    brands=(bench.BrandSpec("acme", 2.0, rhythm="builtin", swing=True, menu=MENU),
            bench.BrandSpec("tiny", 0.08, rhythm="builtin", menu=bench.SMALL_MENU)),
    weeks=1.0, warmup_days=1.0, events_per_week=1.2)
H = 3600


@pytest.fixture(scope="module")
def pools():  # type: ignore[no-untyped-def]
    return bench.builtin_pools()


@pytest.fixture(scope="module")
def stream(pools):  # type: ignore[no-untyped-def]
    return bench.build_stream(11, pools, CONFIG)


def test_same_seed_same_stream_other_seed_other_stream(pools, stream) -> None:  # type: ignore[no-untyped-def]
    again = bench.build_stream(11, pools, CONFIG)
    assert again.events == stream.events
    assert np.array_equal(again.ids, stream.ids)
    for k in stream.cols:
        assert np.array_equal(again.cols[k], stream.cols[k]), k
    assert [m for m in again.mentions()][:500] == [m for m in stream.mentions()][:500]
    other = bench.build_stream(12, pools, CONFIG)
    assert other.events != stream.events


def test_every_kind_is_scheduled_after_the_warm_up_without_overlap(stream) -> None:  # type: ignore[no-untyped-def]
    kinds = Counter(e.kind for e in stream.events if e.category != "noise")
    assert set(MENU) | {"small-brand"} <= set(kinds)
    for brand in ("acme", "tiny"):
        evs = sorted((e for e in stream.events if e.brand == brand and e.category != "noise"), key=lambda e: e.start)
        assert all(e.start >= stream.scored_from for e in evs)
        assert all(a.until <= b.start for a, b in itertools.pairwise(evs))
    assert {e.kind for e in stream.events if e.category == "noise"} == {"chatter-burst", "morning-swing"}
    assert all(e.theme in bench.THEME_ALIASES for e in stream.events if e.category == "crisis")


def test_labels_line_up_with_the_mentions(stream) -> None:  # type: ignore[no-untyped-def]
    c = stream.cols
    names = [b.name for b in stream.brands]
    labels = stream.labels
    assert len(labels) == len(stream) and (labels == -1).sum() > 0.5 * len(labels)
    for i, e in enumerate(stream.events):
        mine = labels == i
        if e.kind in ("gap", "chatter-burst", "morning-swing"):
            assert not mine.any(), e  # these change ordinary mentions, they add none
            continue
        assert mine.any(), e
        assert {names[b] for b in c["brand"][mine]} == {e.brand}
        assert c["created"][mine].min() >= e.start and c["created"][mine].max() < e.until + 60
    # a crisis's own mentions are mostly about its theme or negative; a bot burst is few authors, few texts
    bot = next(i for i, e in enumerate(stream.events) if e.kind == "bot-burst" and e.brand == "acme")
    sel = labels == bot
    assert len(set(c["author"][sel].tolist())) <= 12
    texts = {bench._RT.sub("", stream.texts[t].lower()).strip()[:60] for t in c["text"][sel].tolist()}
    assert len(texts) <= 2
    assert sel.sum() >= 40


def test_mentions_are_valid_wire_mentions_in_arrival_order(stream) -> None:  # type: ignore[no-untyped-def]
    mentions = list(stream.mentions())
    assert len(mentions) == len(stream)
    assert np.all(np.diff(stream.cols["arrival"]) >= 0)
    for m in mentions[::97]:
        assert decode(encode(m)) == m
        assert bench.B not in m.text and bench.H not in m.text
        assert m.brand in m.text.lower()
    # ids are unique except the gap's re-sent duplicates, which repeat an earlier mention exactly
    seen: dict[tuple[str, str], object] = {}
    dups = 0
    for m in mentions:
        key = (m.source, m.id)
        if key in seen:
            assert seen[key] == m
            dups += 1
        seen[key] = m
    assert dups > 0


def test_a_gap_delivers_its_mentions_after_it_ends(stream) -> None:  # type: ignore[no-untyped-def]
    c = stream.cols
    names = [b.name for b in stream.brands]
    gaps = [e for e in stream.events if e.kind == "gap"]
    assert gaps
    for e in gaps:
        bi = names.index(e.brand)
        held = (c["brand"] == bi) & (c["created"] >= e.start) & (c["created"] < e.start + 30 * 60) & \
            (c["arrival"] > c["created"] + 120)
        assert held.any(), e
        assert c["arrival"][held].min() >= e.start + 30 * 60


def test_matcher_counts_a_hit_a_miss_a_repeat_and_attributes_false_alarms() -> None:
    t = 1_795_392_000  # Monday 2026-11-23 00:00Z
    E, A = bench.Event, bench.Alert
    events = [
        E("acme", "sudden", "crisis", t + 10 * H, t + 11 * H, t + 12 * H, "data breach"),
        E("acme", "bot-burst", "decoy", t + 14 * H, t + 14 * H + 1200, t + 14 * H + 1200),
        E("globex", "small-brand", "crisis", t + 12 * H, t + 12 * H + 1800, t + 13 * H, "outage"),
        E("initech", "morning-swing", "noise", t + 6 * H, t + 10 * H, t + 10 * H),
    ]
    alerts = [
        A("acme", t + 10 * H + 300, t + 10 * H + 480, "error", ("data breach", "passwords"), "Possible crisis"),
        A("acme", t + 10 * H + 2400, t + 10 * H + 2580, "warning", ("furious",), "again"),      # repeat
        A("acme", t + 14 * H + 300, t + 14 * H + 480, "critical", ("scam",), "bots"),           # on the decoy
        A("initech", t + 7 * H, t + 7 * H + 180, "warning", (), ""),                             # morning swing
        A("globex", t + 13 * H + 60, t + 13 * H + 240, "warning", (), ""),                       # after the crisis
        A("globex", t + 20 * H, t + 20 * H + 180, "warning", (), ""),                            # ordinary
        A("acme", t + 3 * H, t + 3 * H + 180, "warning", (), ""),                                # in the warm-up
    ]
    s = bench.score(events, alerts, scored_from=t + 5 * H, end=t + 5 * H + 7 * 86400, n_brands=3)
    hit, miss = s.outcomes
    assert hit.detected and hit.alert == 0 and hit.delay_min == 8.0 and hit.theme_named and hit.repeats == 1
    assert not miss.detected and miss.delay_min is None
    causes = {(alerts[f.alert].brand, f.cause, f.warmup) for f in s.false_alarms}
    assert causes == {("acme", "bot-burst", False), ("initech", "morning-swing", False),
                      ("globex", "after-crisis", False), ("globex", "ordinary", False), ("acme", "ordinary", True)}
    assert len(s.counted_false_alarms) == 4
    assert s.brand_weeks == pytest.approx(3.0)
    summary = bench.summarise([s])
    assert (summary.crises, summary.detected, summary.false_alarms, summary.warmup_false_alarms) == (2, 1, 4, 1)
    assert summary.recall == 0.5 and summary.fa_rate == pytest.approx(4 / 3) and summary.theme_rate == 1.0


def test_window_edges_of_a_match() -> None:
    t = 1_795_392_000
    crisis = bench.Event("acme", "sudden", "crisis", t, t + 1200, t + 3000, "outage")

    def hit(started: int) -> bool:
        a = bench.Alert("acme", started, started + 180, "warning", (), "")
        return bench.score([crisis], [a], t - 86400, t + 86400, 1).outcomes[0].detected

    assert hit(t - 60 * bench.MATCH_BEFORE_MIN) and not hit(t - 60 * bench.MATCH_BEFORE_MIN - 60)
    assert hit(t + 60 * bench.MATCH_AFTER_START_MIN) and not hit(t + 60 * bench.MATCH_AFTER_START_MIN + 60)


def test_names_theme_matches_whole_words_of_terms_and_summary() -> None:
    def alert(terms: tuple[str, ...], summary: str = "", later: tuple[str, ...] = ()) -> object:
        return bench.Alert("acme", 0, 0, "warning", terms, summary, later_terms=later)

    assert bench.names_theme(alert(("new ad", "pull")), "offensive ad")
    assert not bench.names_theme(alert(("bad service", "adopt")), "offensive ad")
    assert bench.names_theme(alert((), 'People are talking about "data breach".'), "data breach")
    assert not bench.names_theme(alert(("awful",), later=("outage",)), "outage")
    assert bench.names_theme(alert(("awful",), later=("outage",)), "outage", later=True)


def test_failed_gates_name_what_blocked_a_window() -> None:
    cfg = DetectorConfig()
    small = window_signal(12, 6, 10.0, 1.0, dispersion=2.0, min_expected_negatives=1.0, min_baseline_share=0.05)
    assert "min_negatives" in bench.failed_gates(small, cfg)
    strong = window_signal(100, 80, 100.0, 10.0, dispersion=2.0, min_expected_negatives=1.0, min_baseline_share=0.05)
    assert bench.failed_gates(strong, cfg) == ()
    viral = window_signal(400, 40, 100.0, 10.0, dispersion=2.0, min_expected_negatives=1.0, min_baseline_share=0.05)
    assert "share_lift" in bench.failed_gates(viral, cfg)
    # the share test has its own level (share_p_value 0.01): p_share 0.006 passes it
    airline = window_signal(40, 20, 15.0, 4.5, dispersion=2.0, min_expected_negatives=1.0, min_baseline_share=0.05)
    assert 0.001 < airline.p_share < 0.01 and bench.failed_gates(airline, cfg) == ()


def test_end_to_end_on_the_built_in_sample(pools) -> None:  # type: ignore[no-untyped-def]
    cfg = bench.BenchConfig(brands=CONFIG.brands, weeks=0.5, warmup_days=1.0)
    result = bench.run_seed(3, pools, cfg)
    assert result.mentions > 5000 and result.events
    assert all(a.brand in ("acme", "tiny") for a in result.alerts)
    lines: list[str] = []
    blob = bench.report([result], 1.0, 0.1, "built-in sample", 0.5, 1, out=lines.append)
    text = "\n".join(lines)
    assert "targets:" in text and "crisis kind" in text and "false alarms (after the warm-up)" in text
    assert blob["pooled"]["crises"] == sum(1 for e in result.events if e.category == "crisis")  # type: ignore[index]


def test_the_oracle_bound_tells_a_sudden_crisis_early_and_a_slow_burn_not(
        stream) -> None:  # type: ignore[no-untyped-def]
    early = bench.oracle_early(stream, p_value=1e-3)
    by_kind = {(e.kind, early[i]) for i, e in enumerate(stream.events) if e.category == "crisis"}
    assert {e.kind for e in stream.events if e.category == "crisis"} == {k for k, _ in by_kind}
    assert ("sudden", True) in by_kind and ("sudden", False) not in by_kind
    assert ("slow-burn", False) in by_kind and ("slow-burn", True) not in by_kind
    assert bench.oracle_early(stream, p_value=1e-3, minutes=24 * 60) != early  # given a day, slow burns show
