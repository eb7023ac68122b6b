"""The crisis benchmark's generator and scoring (``benchmarks/crisis.py``), on its built-in text sample.

Nothing here needs ``../shared/data``: the generator runs on the tiny invented sample the module carries, and the
matcher is checked on hand-made events and alerts.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest

from connectors.mention import decode, encode
from detectors import DetectorConfig
from detectors.signals import window_signal
from tests.benchmark_module import load

bench = load("crisis")

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


def assert_same_stream(a, b, mentions: int) -> None:  # type: ignore[no-untyped-def]
    """Two streams are equal: events, ids, every column, and the first ``mentions`` mentions built from them."""
    assert a.events == b.events
    assert np.array_equal(a.ids, b.ids)
    for k in b.cols:
        assert np.array_equal(a.cols[k], b.cols[k]), k
    assert list(itertools.islice(a.mentions(), mentions)) == list(itertools.islice(b.mentions(), mentions))


def test_same_seed_same_stream_other_seed_other_stream(pools, stream) -> None:  # type: ignore[no-untyped-def]
    assert_same_stream(bench.build_stream(11, pools, CONFIG), stream, 500)
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


def test_failed_gates_skip_what_the_config_or_the_signal_does_not_have() -> None:
    small = window_signal(12, 6, 10.0, 1.0, dispersion=2.0, min_expected_negatives=1.0, min_baseline_share=0.05)
    assert bench.failed_gates(small, SimpleNamespace(min_negatives=10)) == ("min_negatives",)
    assert bench.failed_gates(small, SimpleNamespace()) == ()
    assert bench.failed_gates(SimpleNamespace(voices=3), SimpleNamespace(min_negatives=10, p_value=1e-3)) == \
        ("min_negatives",)
    assert bench.failed_gates(small, DetectorConfig())[0] == "min_negatives"  # every gate is the detector's own


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


# --- profile 2 ----------------------------------------------------------------------------------------------------

CONFIG2 = bench.BenchConfig(
    brands=(bench.BrandSpec("air", 1.5, "airline", negative_share=0.8, positive_share=0.08, rhythm="builtin",
                            menu=bench.AIRLINE_MENU_2),
            bench.BrandSpec("gen", 1.0, negative_share=0.15, rhythm="builtin", menu=bench.GENERAL_MENU_2),
            bench.BrandSpec("tiny", 0.08, rhythm="builtin", menu=bench.SMALL_MENU_2),
            bench.BrandSpec("newco", 1.0, rhythm="builtin", menu=(), newcomer=True)),
    weeks=1.0, warmup_days=1.0, events_per_week=1.5, profile=2)


@pytest.fixture(scope="module")
def stream2(pools):  # type: ignore[no-untyped-def]
    return bench.build_stream(5, pools, CONFIG2)


def test_profile_2_is_deterministic_per_seed(pools, stream2) -> None:  # type: ignore[no-untyped-def]
    assert_same_stream(bench.build_stream(5, pools, CONFIG2), stream2, 300)
    assert bench.build_stream(6, pools, CONFIG2).events != stream2.events
    assert bench.profile_config(2).brands == bench.BRANDS_2 and bench.profile_config(1) == bench.BenchConfig()


def test_profile_2_labels_its_new_kinds(stream2) -> None:  # type: ignore[no-untyped-def]
    kinds = Counter((e.category, e.kind) for e in stream2.events)
    for key in (("crisis", "bad-day"), ("decoy", "cascade"), ("decoy", "newcomer"), ("noise", "share-rhythm"),
                ("crisis", "sudden"), ("crisis", "slow-burn"), ("crisis", "small-brand"), ("crisis", "share-shift"),
                ("decoy", "positive-viral"), ("decoy", "neutral-news"), ("decoy", "bot-burst"), ("decoy", "gap")):
        assert kinds[key] > 0, key
    names = [b.name for b in stream2.brands]
    c = stream2.cols
    for i, e in enumerate(stream2.events):
        if e.kind == "bad-day":
            assert e.brand == "air" and e.theme == "cancelled flights" and e.at_2x >= e.start
            mine = c["label"] == i
            assert mine.sum() > 50 and {names[b] for b in c["brand"][mine]} == {"air"}
        if e.kind == "newcomer":
            bi = names.index(e.brand)
            before = np.count_nonzero((c["brand"] == bi) & (c["created"] < e.start))
            after = np.count_nonzero((c["brand"] == bi) & (c["created"] >= e.start) &
                                     (c["created"] < e.start + 86400))
            days_before = (e.start - stream2.start) / 86400
            assert before < 10 * days_before + 10 and 50 * 24 * 0.5 < after < 150 * 24 * 2


def test_profile_2_authors_are_calibrated_to_the_airline_set(stream2) -> None:  # type: ignore[no-untyped-def]
    c = stream2.cols
    bi = [b.name for b in stream2.brands].index("air")
    week = (c["brand"] == bi) & ~c["repost"] & (c["label"] == -1) & (c["created"] >= stream2.start) & \
        (c["created"] < stream2.start + 7 * 86400)
    distinct, top = bench.author_stats(c["author"][week])
    assert 0.47 <= distinct <= 0.78 and 0.01 <= top <= 0.03, (distinct, top)
    # and on a bigger brand straight from the pool
    rng = np.random.default_rng(1)
    pool = bench.AuthorPool(rng, 0, 3 * 20_000, 3.0)
    distinct, top = bench.author_stats(pool.draw(rng, 20_000))
    assert 0.47 <= distinct <= 0.78 and 0.01 <= top <= 0.03, (distinct, top)


def test_profile_2_cascade_copies_are_retweets_by_distinct_authors(stream2) -> None:  # type: ignore[no-untyped-def]
    c = stream2.cols
    cascades = [i for i, e in enumerate(stream2.events) if e.kind == "cascade"]
    assert cascades
    for i in cascades:
        e = stream2.events[i]
        mine = np.flatnonzero(c["label"] == i)
        orig = mine[~c["repost"][mine]]
        copies = mine[c["repost"][mine]]
        assert len(orig) == 1 and 80 <= len(copies) <= 250
        author = int(c["author"][orig[0]])
        base = stream2.texts[int(c["text"][orig[0]])]
        assert {stream2.texts[t] for t in c["text"][copies].tolist()} == {f"RT @u{author}: {base}"}
        assert len(set(c["author"][copies].tolist())) == len(copies) and author not in set(c["author"][copies])
        created = np.sort(c["created"][copies])
        assert created[0] >= e.start and created[-1] <= e.end + 60
        half = e.start + (e.end - e.start) / 2
        assert (created < half).sum() > (created >= half).sum()  # a decaying rate
    # ordinary reposts are cascades too: "RT @author: text" of an earlier original of the same brand
    rts = np.flatnonzero(c["repost"] & (c["label"] == -1))
    assert len(rts) > 100
    for k in rts[:50]:
        assert stream2.texts[int(c["text"][k])].startswith("RT @u")


def test_moment_2x_on_a_hand_made_shape() -> None:
    usual = np.array([2.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0])
    extra = np.array([0.0, 1.0, 1.9, 3.0, 4.0, 5.0, 1.0])  # +2x reached at index 4 (4 >= 4), not at 2 (1.9 < 2)
    t0 = 1_795_392_000
    assert bench.moment_2x(usual, extra, t0) == t0 + 4 * 60
    assert bench.moment_2x(usual, extra * 0.5, t0) == 0  # never twice the usual
    assert bench.moment_2x(usual, np.full(7, 2.0), t0) == t0  # from the first minute
    # a slow burn on a flat brand: extra = 0.88 x peak x (t+1)/ramp reaches the usual 1.0/min at t + 1 = ramp/(0.88 x 2)
    p = {"ramp": 300.0, "hold": 60.0, "decay": 60.0, "peak": 2.0}
    t = np.arange(420)
    at = bench.moment_2x(np.full(420, 1.0), bench.EXTRA_NEGATIVE * bench._extra_rate("slow-burn", p, t), t0)
    assert (at - t0) // 60 == math.ceil(300 / (0.88 * 2)) - 1


def test_profile_1_events_carry_their_2x_moment(stream) -> None:  # type: ignore[no-untyped-def]
    for e in stream.events:
        if e.category == "crisis":
            assert e.at_2x == 0 or e.start <= e.at_2x <= e.until
    assert any(e.at_2x > e.start for e in stream.events if e.kind == "slow-burn")


def test_per_kind_targets_are_judged_on_the_right_delay() -> None:
    t = 1_795_392_000
    E, Out = bench.Event, bench.Outcome
    sudden = [E("a", "sudden", "crisis", t, t + 600, t + 600, "outage")] * 3
    slow = [E("a", "slow-burn", "crisis", t, t + 600, t + 600, "outage", at_2x=t + 3600)] * 2
    pairs = [(sudden[0], Out(0, True, 0, 8.0)), (sudden[1], Out(1, True, 1, 12.0)), (sudden[2], Out(2, False)),
             (slow[0], Out(3, True, 2, 100.0, delay_2x_min=40.0)), (slow[1], Out(4, True, 3, 130.0, delay_2x_min=70.0))]
    rows = {r.kind: r for r in bench.kind_rows(pairs)}
    assert set(rows) == {"sudden", "slow-burn"}  # kinds without crises are left out
    s = rows["sudden"]
    assert (s.n, s.detected, s.median_delay, s.target) == (3, 2, 10.0, ("start", 10.0))
    assert s.recall == pytest.approx(2 / 3) and s.met is True and s.target_text() == "<= 10m"
    b = rows["slow-burn"]
    assert b.median_delay == 115.0 and b.median_from_2x == 55.0 and b.met is True  # judged from 2x, not start
    assert b.target_text() == "<= 60m from 2x"
    late = bench.kind_rows([(slow[0], Out(0, True, 0, 100.0, delay_2x_min=61.0))])[0]
    assert late.met is False
    none = bench.kind_rows([(sudden[0], Out(0, False))])[0]
    assert none.median_delay is None and none.met is False  # nothing detected: target missed
    assert bench.KIND_DELAY_TARGETS == {"sudden": ("start", 10.0), "small-brand": ("start", 20.0),
                                        "slow-burn": ("2x", 60.0), "bad-day": ("2x", 60.0),
                                        "share-shift": ("start", 45.0)}


def test_score_gives_the_delay_from_2x() -> None:
    t = 1_795_392_000
    ev = bench.Event("acme", "bad-day", "crisis", t, t + 6 * H, t + 7 * H, "cancelled flights", at_2x=t + 1800)
    a = bench.Alert("acme", t + 1500, t + 2700, "warning", ("cancelled",), "")
    o = bench.score([ev], [a], t - 86400, t + 86400, 1).outcomes[0]
    assert o.detected and o.delay_min == 45.0 and o.delay_2x_min == 15.0


def test_the_oracle_scorer_gives_the_human_labels(pools, stream2) -> None:  # type: ignore[no-untyped-def]
    cat = bench.text_categories(pools, stream2.texts)
    assert cat[pools.pools["general:negative"][0]] == bench.NEG
    assert cat[pools.pools["general:positive"][0]] == bench.POS
    assert cat[pools.pools["airline:neutral"][0]] == bench.NEU
    c = stream2.cols
    cascade = next(i for i, e in enumerate(stream2.events) if e.kind == "cascade")
    mine = c["text"][c["label"] == cascade]
    assert set(cat[mine].tolist()) == {bench.NEU}  # the opinion tweet and its retweets: neutral to a human
    bad = next(i for i, e in enumerate(stream2.events) if e.kind == "bad-day")
    assert set(cat[c["text"][c["label"] == bad]].tolist()) == {bench.NEG}
    scorer = bench.HumanLabels(stream2, pools)
    ms = list(itertools.islice(stream2.mentions(), 2000))
    scores = scorer.score_many([m.text for m in ms])
    assert set(scores) <= {-0.8, 0.0, 0.8} and len(set(scores)) == 3


def test_end_to_end_profile_2_with_the_human_labels(pools) -> None:  # type: ignore[no-untyped-def]
    cfg = bench.BenchConfig(brands=CONFIG2.brands[:2], weeks=0.5, warmup_days=1.0, events_per_week=1.5, profile=2)
    result = bench.run_seed(4, pools, cfg, oracle=True)
    assert result.mentions > 5000 and any(e.kind == "bad-day" for e in result.events)
    lines: list[str] = []
    bench.report([result], 1.0, 0.1, "built-in sample", 0.5, 1, out=lines.append, profile=2)
    text = "\n".join(lines)
    assert "profile 2" in text and "from 2x" in text and ("MET" in text or "MISSED" in text)
