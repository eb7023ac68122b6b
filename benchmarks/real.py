"""A benchmark on real, timestamped tweets: airline complaints, Apple mentions and disaster onsets.

Replays real tweets, in their own creation order and with their own timestamps, through exactly what
``crisiswatch detect`` runs (:func:`listener.offline.run_items` with the service's default
:class:`~listener.pipeline.PipelineSettings`, i.e. ``listener.config.load(None, env={}).pipeline``; nothing is tuned
to this benchmark and no label reaches the detector), and scores the alerts against events found in the human
labels by the written rule below — never by picking alerts by hand.

    python benchmarks/real.py [--data ../shared/data] [--oracle] [--json OUT] [--only airline|apple|disasters]

``--oracle`` replaces the service's sentiment scorer (:class:`listener.sentiment.Scorer`, complaint-aware VADER) by
the human labels: it shows what the detector would do with a perfect scorer, so the two runs separate the
scorer's errors from the detector's.

The streams (one brand per stream; every mention has ``source="twitter"``)
===========================================================================

* **Airlines** (``twitter_us_airline_sentiment/Tweets.csv``, 2015-02-16 .. 02-24, all times -0800 as in the file):
  one brand per airline (``jetblue`` — the file's "Delta" rows are JetBlue, see the data README —, ``united``,
  ``usairways``, ``american``, ``southwest``, ``virginamerica``); author = ``name``; a text starting with
  ``"RT "`` is a repost; id = ``tweet_id`` (the file's 155 repeated ids reach the pipeline, which drops them as
  duplicates, as it would in service).  Human label: ``airline_sentiment``.
* **Apple** (``crowdflower_apple_twitter_sentiment``, 2014-12-01 .. 12-10, UTC): brand ``apple``.  Label ``1`` /
  ``3`` / ``5`` = negative / neutral / positive; the 82 ``not_relevant`` rows are **kept as neutral**: the
  keyword query (``#AAPL OR @Apple``) matched them, so the service would see them too, and "not about Apple" is
  not a complaint about Apple.  The file has no author column, so ``author`` is ``None`` (nothing is invented);
  its tweet ids were destroyed by Excel, so the id is the CrowdFlower ``_unit_id``.
* **Disasters** (CrisisLex): one brand per event.  All six T6 events (``*-ontopic_offtopic.csv``, about 10,000
  tweets each, on- and off-topic) and those T26 events (``*-tweets_labeled.csv``, about 1,000 tweets each) whose
  labelled tweets start at least ``QUALIFY_MIN_PRE_HOURS`` (24) hours before the onset with at least
  ``QUALIFY_MIN_PRE_TWEETS`` (24) tweets before it: a detector needs a baseline.  Creation times come from the
  tweet ids (snowflake: ``created_ms = (id >> 22) + 1288834974657``).  For the oracle and for the page
  classification an **on-topic tweet counts as "negative"** (T26: Informativeness "Related and informative" or
  "Related - but not informative"), an off-topic one as neutral: the label says "about the disaster", which for a
  brand watching its name is what a crisis mention is.  Texts are in many languages (VADER reads English only);
  nothing is filtered out.

Events found by the rule (airline and Apple)
============================================

Per brand, tweets are counted per clock hour (airlines in -0800, Apple in UTC).  A brand-day is **covered** when
the brand has at least ``COVERED_DAY_MIN`` (24) tweets that day; an hour's **baseline** is the median over the
brand's *other* covered days of the same clock hour (a day counts when that hour lies inside the data's time
span; empty hours count as 0), floored at ``MEDIAN_FLOOR`` (1).  With fewer than ``BASELINE_MIN_DAYS`` (3) such
days the hour has **no baseline** and the rule says nothing about it.  (This is what keeps American out: the
file has about one American tweet a day until 02-22 and then about 1,000 a day — a change of collection, not
of the world; only three covered days exist, so no hour has three *other* ones.)

* **Event hour**: human-negative tweets ``>= N_MIN`` (20) and ``>= K_RATIO`` (3) x the baseline of negatives.
* **Calm burst** ("must not page"): all tweets ``>= N_MIN`` and ``>= K_RATIO`` x the baseline of all tweets,
  with ``>= CALM_SHARE`` (60%) of them labelled neutral or positive.
* An hour that is both is **mixed** (the negatives tripled, yet most talk is calm): listed, scored as neither.
* Adjacent event hours merge into one event; adjacent calm-burst hours into one burst.

The values are round, stated before looking at any detector result, and not tuned on them.

The issue that asked for this benchmark names six cases (``NAMED``).  They are scored the same way but reported
apart, marked "named by the issue":

* JetBlue 02-22 06:00-12:00 (planes stuck at JFK): must page;
* Southwest 02-21 10:00-16:00 (weather cancellations): must page;
* Apple 12-09 01:00-03:00 UTC (#DieIn protest retweets: 135 of the 153 "diein" tweets, 113 of them labelled
  neutral): must not page;
* JetBlue "fleet's on fleek" 02-23 10:00-13:00 (116 of the 150 "fleek" tweets): must not page;
* Southwest #RedCarpet 02-22 17:00-19:00 (5 of the 6 "#RedCarpet" tweets, during the Oscars): must not page;
* American 02-22 (the collection change, no baseline): must not give a *critical* page (a notice or a lower page
  is fine).

The run prints, for each, the rule's verdict on every hour of the window and, where the case was located by a
word, the tweets containing that word per hour.

Disaster onsets
===============

``ONSETS`` holds each event's public onset time (UTC) with its source.  Only **sharp** onsets (an explosion, an
earthquake, a shooting, a crash) count in the sharp-onset target.  Slow ones (hurricane or typhoon landfall,
which are forecast for days) are scored and reported as "slow"; floods, wildfires and haze have no onset
instant and are listed as not scored.

With the stored data, the T26 events that qualify are Costa Rica (sharp; 34 tweets in the 31 h before the
onset) and typhoons Pablo and Yolanda (slow); Guatemala has 28.6 h but only 11 tweets before its onset, the other
sharp T26 events start less than 20 h before theirs (their labelled samples were drawn mostly after the onset).
Alberta floods (T6) starts after the flooding, so it has no "before".  The T6 files are half a geo sample and
half a keyword sample, so their volume curves show the sampling as well as the event.

* **First visible burst**: split the time from the onset on into 10-minute windows aligned at the onset; the
  first window whose total tweets are ``>= BURST_RATIO`` (3) x the median 10-minute count before the onset
  (the aligned windows from the first tweet to the onset, empty ones included) and ``>= BURST_MIN_TWEETS``
  (10).  The delay from the burst is measured from that window's start.  None within 6 hours: "no burst".

Scoring
=======

A **page** is a ``triggered`` alert event; a ``notice`` (severity info) is counted, not a page.  The severity of
a page is its own; ``max severity`` is the highest of its crisis's triggered / escalated events.

* An event is **caught** when a page of its brand has ``started_at`` (the first hot minute) in
  ``[start - MATCH_BEFORE_MIN (60 min), end]``; a disaster when it lies in ``[onset - 30 min, onset + 6 h]``.
  **Delay** = the first such page's ``at`` (event time of the alert) minus the event start / the onset, and minus
  the first visible burst, in minutes; it is negative when the page came before the hour the rule flagged (the
  hour before was already raised, just under the rule's bar) or before the burst window.  A calm burst or a
  named must-not-page case is **paged** when any page lies in the same kind of window.
* Every other page is **false** when the brand-hour of its ``started_at`` is clearly normal by the human labels
  (human-negatives ``<= NORMAL_RATIO`` (1.5) x the baseline), otherwise **unsettled** (raised, mixed or no
  baseline: the labels do not settle it).  A second page inside an event already caught is a **repeat**.
  Every page is listed with its verdict.

An event that is not paged itself but falls while a crisis of its brand, paged before it, is still open (not
yet resolved) is reported as **in an open crisis** ("open" in the table, ``events_in_an_open_crisis``): the
on-call people are already on that brand; it does not count as paged.

Summary: airline/Apple events paged n/N; disasters paged n/N; sharp disasters paged at most ``FAST_MIN`` (15)
minutes after their first visible burst (a page before the burst counts) n/N; median delays (events; sharp disasters); calm bursts paged
n/N; the named cases; false, unsettled and repeat pages; notices.  ``--json OUT`` writes every window, page and
notice.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from connectors.mention import Mention  # noqa: E402
from detectors import AlertEvent, Status  # noqa: E402

if TYPE_CHECKING:
    from listener.sentiment import Scorer

DEFAULT_DATA = ROOT.parent / "shared" / "data"
AIRLINE_CSV = "twitter_us_airline_sentiment/Tweets.csv"
APPLE_CSV = "crowdflower_apple_twitter_sentiment/Apple-Twitter-Sentiment-DFE.csv"
CRISISLEX = "crisislex"

# --- the rule (see the module docstring) ----------------------------------------------------------------------------

N_MIN = 20
"""An event hour needs at least this many human-negative tweets; a calm burst this many tweets."""
K_RATIO = 3.0
"""... and at least this many times the same clock hour's median on the brand's other covered days."""
MEDIAN_FLOOR = 1.0
CALM_SHARE = 0.6
"""A burst is calm when at least this share of its tweets is labelled neutral or positive."""
COVERED_DAY_MIN = 24
"""A brand-day enters baselines when the brand has at least this many tweets that day."""
BASELINE_MIN_DAYS = 3
NORMAL_RATIO = 1.5
"""A page is false when its brand-hour has at most this many times the baseline of human negatives."""
MATCH_BEFORE_MIN = 60
DISASTER_BEFORE_MIN = 30
DISASTER_AFTER_MIN = 360
BURST_WINDOW_MIN = 10
BURST_RATIO = 3.0
BURST_MIN_TWEETS = 10
FAST_MIN = 15
"""The sharp-onset target: paged within this many minutes of the first visible burst."""
QUALIFY_MIN_PRE_HOURS = 24
QUALIFY_MIN_PRE_TWEETS = 24

NEG, NEU, POS = "negative", "neutral", "positive"
ORACLE_COMPOUND = {NEG: -0.6, NEU: 0.0, POS: 0.6}
"""Compounds the oracle gives: well beyond the listener's +-0.05 thresholds (listener.sentiment.label)."""
SNOWFLAKE_EPOCH_MS = 1288834974657
AIRLINE_OFFSET_S = -8 * 3600
AIRLINES = {"Delta": "jetblue", "United": "united", "US Airways": "usairways", "American": "american",
            "Southwest": "southwest", "Virgin America": "virginamerica"}
APPLE_LABELS = {"1": NEG, "3": NEU, "5": POS, "not_relevant": NEU}
T26_ON_TOPIC = ("Related and informative", "Related - but not informative")


@dataclass(frozen=True)
class Onset:
    collection: str
    event: str
    """The folder name under crisislex/CrisisLexT6 or CrisisLexT26."""
    at: str | None
    """Onset, ISO UTC; None: no onset instant (floods, wildfires, haze)."""
    sharp: bool
    source: str


# Local times converted to UTC; Wikipedia = the article linked from the event's CrisisLex description.
ONSETS: tuple[Onset, ...] = (
    Onset("T6", "2013_West_Texas_Explosion", "2013-04-18T00:50", True,
          "Wikipedia, West Fertilizer Company explosion: 19:50 CDT on 2013-04-17"),
    Onset("T6", "2013_Boston_Bombings", "2013-04-15T18:49", True, "Wikipedia, Boston Marathon bombing: 14:49 EDT"),
    Onset("T6", "2013_Oklahoma_Tornado", "2013-05-20T19:56", True,
          "Wikipedia / NWS Norman, 2013 Moore tornado: touchdown 14:56 CDT"),
    Onset("T6", "2012_Sandy_Hurricane", "2012-10-29T23:30", False,
          "NHC: landfall near Brigantine NJ ~23:30 UTC; forecast for days, so slow"),
    Onset("T6", "2013_Alberta_Floods", None, False, "floods rose 2013-06-19..21, before the T6 sample starts"),
    Onset("T6", "2013_Queensland_Floods", None, False, "ex-cyclone Oswald floods over several days (late Jan 2013)"),
    Onset("T26", "2012_Costa_Rica_earthquake", "2012-09-05T14:42", True, "USGS: M7.6 Nicoya, 14:42:07 UTC"),
    Onset("T26", "2012_Guatemala_earthquake", "2012-11-07T16:35", True, "USGS: M7.4 Champerico, 16:35:46 UTC"),
    Onset("T26", "2012_Italy_earthquakes", "2012-05-20T02:03", True,
          "USGS: M6.0 Emilia, 02:03:52 UTC (second shock 05-29 07:00 UTC)"),
    Onset("T26", "2012_Venezuela_refinery", "2012-08-25T05:41", True,
          "Wikipedia, Amuay refinery explosion: ~01:11 VET (UTC-4:30)"),
    Onset("T26", "2013_Bohol_earthquake", "2013-10-15T00:12", True, "USGS: M7.1 Bohol, 00:12:32 UTC"),
    Onset("T26", "2013_Boston_bombings", "2013-04-15T18:49", True, "Wikipedia, Boston Marathon bombing: 14:49 EDT"),
    Onset("T26", "2013_Brazil_nightclub_fire", "2013-01-27T04:30", True,
          "Wikipedia, Kiss nightclub fire: ~02:30 BRST (UTC-2)"),
    Onset("T26", "2013_Glasgow_helicopter_crash", "2013-11-29T22:22", True,
          "Wikipedia, Clutha Vaults helicopter crash: 22:22 GMT"),
    Onset("T26", "2013_LA_airport_shootings", "2013-11-01T16:20", True, "Wikipedia, LAX shooting: 09:20 PDT"),
    Onset("T26", "2013_Lac_Megantic_train_crash", "2013-07-06T05:14", True,
          "Wikipedia, Lac-Megantic rail disaster: ~01:14 EDT"),
    Onset("T26", "2013_NY_train_crash", "2013-12-01T12:20", True,
          "Wikipedia, Spuyten Duyvil derailment: 07:20 EST"),
    Onset("T26", "2013_Russia_meteor", "2013-02-15T03:20", True,
          "Wikipedia, Chelyabinsk meteor: 09:20 YEKT (UTC+6)"),
    Onset("T26", "2013_Savar_building_collapse", "2013-04-24T02:57", True,
          "Wikipedia, Rana Plaza collapse: ~08:57 BST (UTC+6)"),
    Onset("T26", "2013_Spain_train_crash", "2013-07-24T18:41", True,
          "Wikipedia, Santiago de Compostela derailment: 20:41 CEST"),
    Onset("T26", "2013_West_Texas_explosion", "2013-04-18T00:50", True,
          "Wikipedia, West Fertilizer Company explosion: 19:50 CDT on 2013-04-17"),
    Onset("T26", "2012_Typhoon_Pablo", "2012-12-03T20:45", False,
          "Wikipedia, Typhoon Bopha: landfall 04:45 PHT 12-04 (forecast, slow)"),
    Onset("T26", "2013_Typhoon_Yolanda", "2013-11-07T20:40", False,
          "Wikipedia, Typhoon Haiyan: landfall Guiuan 04:40 PHT 11-08 (forecast, slow)"),
    Onset("T26", "2012_Colorado_wildfires", None, False, "wildfires over weeks"),
    Onset("T26", "2012_Philipinnes_floods", None, False, "monsoon floods over days"),
    Onset("T26", "2013_Alberta_floods", None, False, "floods over days"),
    Onset("T26", "2013_Australia_bushfire", None, False, "bushfires over weeks"),
    Onset("T26", "2013_Colorado_floods", None, False, "floods over days"),
    Onset("T26", "2013_Manila_floods", None, False, "monsoon floods over days"),
    Onset("T26", "2013_Queensland_floods", None, False, "floods over days"),
    Onset("T26", "2013_Sardinia_floods", None, False, "cyclone Cleopatra floods over a day"),
    Onset("T26", "2013_Singapore_haze", None, False, "haze over weeks"),
)


@dataclass(frozen=True)
class Named:
    """A case named by the issue (not found by the rule): times are the stream's local time."""

    name: str
    brand: str
    start: str
    end: str
    expect: str
    """"page", "no-page" or "not-critical"."""
    keyword: str = ""
    """If set, the run prints how many tweets of the brand contain it per hour (where the window came from)."""


NAMED: tuple[Named, ...] = (
    Named("JetBlue JFK (issue)", "jetblue", "2015-02-22T06:00", "2015-02-22T12:00", "page"),
    Named("Southwest weather (issue)", "southwest", "2015-02-21T10:00", "2015-02-21T16:00", "page"),
    Named("Apple #DieIn retweets (issue)", "apple", "2014-12-09T01:00", "2014-12-09T03:00", "no-page", "diein"),
    Named("JetBlue fleet's on fleek (issue)", "jetblue", "2015-02-23T10:00", "2015-02-23T13:00", "no-page", "fleek"),
    Named("Southwest #RedCarpet (issue)", "southwest", "2015-02-22T17:00", "2015-02-22T19:00", "no-page",
          "redcarpet"),
    Named("American collection change (issue)", "american", "2015-02-22T00:00", "2015-02-23T00:00", "not-critical"),
)


# --- loading --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tweet:
    id: str
    brand: str
    text: str
    created: int
    """Epoch seconds (UTC)."""
    author: str | None
    repost: bool
    label: str
    """The human label: negative / neutral / positive (disasters: on-topic = negative, see the docstring)."""


def snowflake_seconds(tweet_id: str | int) -> float:
    """A tweet's creation time (epoch seconds, UTC) from its id; quotes around the id are ignored."""
    ms = (int(str(tweet_id).strip().strip("'\"")) >> 22) + SNOWFLAKE_EPOCH_MS
    return ms / 1000.0


def load_airlines(path: Path) -> list[Tweet]:
    out: list[Tweet] = []
    with open(path, encoding="utf-8", newline="") as f:
        for r in csv.DictReader(f):
            created = datetime.strptime(r["tweet_created"], "%Y-%m-%d %H:%M:%S %z")
            text = r["text"]
            out.append(Tweet(r["tweet_id"], AIRLINES.get(r["airline"], r["airline"].lower().replace(" ", "")),
                             text, int(created.timestamp()), r["name"] or None, text.startswith("RT "),
                             r["airline_sentiment"]))
    return out


def load_apple(path: Path) -> list[Tweet]:
    out: list[Tweet] = []
    with open(path, encoding="cp1252", errors="replace", newline="") as f:
        for r in csv.DictReader(f):
            created = datetime.strptime(r["date"], "%a %b %d %H:%M:%S %z %Y")
            text = r["text"]
            out.append(Tweet(f"apple:{r['_unit_id']}", "apple", text, int(created.timestamp()), None,
                             text.startswith("RT "), APPLE_LABELS[r["sentiment"].strip()]))
    return out


def load_crisislex(folder: Path, onset: Onset) -> list[Tweet]:
    """One CrisisLex event (T6 on/off-topic file or T26 labelled file) as tweets of brand ``onset.event``."""
    t6 = onset.collection == "T6"
    name = f"{onset.event}-ontopic_offtopic.csv" if t6 else f"{onset.event}-tweets_labeled.csv"
    path = folder / f"CrisisLex{onset.collection}" / onset.event / name
    out: list[Tweet] = []
    with open(path, encoding="utf-8", errors="replace", newline="") as f:
        rows = csv.reader(f, skipinitialspace=True)
        next(rows)
        for r in rows:
            if len(r) < 3:
                continue
            tid = r[0].strip().strip("'\"")
            on = r[2].strip() == "on-topic" if t6 else r[-1].strip() in T26_ON_TOPIC
            text = r[1]
            out.append(Tweet(f"{onset.collection}:{tid}", onset.event, text, int(snowflake_seconds(tid)), None,
                             text.startswith("RT "), NEG if on else NEU))
    return out


# --- the event-hour rule --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourStat:
    brand: str
    hour: int
    """Epoch seconds of the hour's start."""
    total: int
    negative: int
    base_total: float | None
    """Baseline (floored median); None: no baseline."""
    base_negative: float | None
    kind: str
    """event / calm-burst / mixed / normal / raised / no-baseline."""


def classify(total: int, negative: int, base_total: float | None, base_negative: float | None) -> str:
    if base_total is None or base_negative is None:
        return "no-baseline"
    event = negative >= N_MIN and negative >= K_RATIO * base_negative
    burst = total >= N_MIN and total >= K_RATIO * base_total and (total - negative) >= CALM_SHARE * total
    if event and burst:
        return "mixed"
    if event:
        return "event"
    if burst:
        return "calm-burst"
    return "normal" if negative <= NORMAL_RATIO * base_negative else "raised"


class HourTable:
    """Per brand and clock hour (in the stream's local time): tweets, human negatives and their baselines."""

    def __init__(self, tweets: Sequence[Tweet], offset_s: int = 0) -> None:
        self.offset_s = offset_s
        self.counts: dict[str, dict[int, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
        day_totals: dict[str, Counter[int]] = defaultdict(Counter)
        lo = min((t.created for t in tweets), default=0)
        hi = max((t.created for t in tweets), default=0)
        self.first_hour, self.last_hour = self._local_hour(lo), self._local_hour(hi)
        for t in tweets:
            h = self._local_hour(t.created)
            c = self.counts[t.brand][h]
            c[0] += 1
            c[1] += t.label == NEG
            day_totals[t.brand][h // 24] += 1
        self.covered = {b: {d for d, n in days.items() if n >= COVERED_DAY_MIN} for b, days in day_totals.items()}

    def _local_hour(self, epoch: float) -> int:
        return int((epoch + self.offset_s) // 3600)

    def stat(self, brand: str, epoch: float) -> HourStat:
        """The rule's verdict on the brand-hour that holds ``epoch``."""
        h = self._local_hour(epoch)
        counts = self.counts.get(brand, {})
        total, negative = counts.get(h, (0, 0))
        others = [d * 24 + h % 24 for d in sorted(self.covered.get(brand, ()))
                  if d != h // 24 and self.first_hour <= d * 24 + h % 24 <= self.last_hour]
        base_t = base_n = None
        if len(others) >= BASELINE_MIN_DAYS:
            base_t = max(MEDIAN_FLOOR, statistics.median(counts.get(o, (0, 0))[0] for o in others))
            base_n = max(MEDIAN_FLOOR, statistics.median(counts.get(o, (0, 0))[1] for o in others))
        return HourStat(brand, h * 3600 - self.offset_s, total, negative, base_t, base_n,
                        classify(total, negative, base_t, base_n))

    def hours(self) -> list[HourStat]:
        """Every brand-hour with tweets, in time order."""
        return [self.stat(b, h * 3600 - self.offset_s) for b in sorted(self.counts) for h in sorted(self.counts[b])]


@dataclass
class Window:
    """An event or a burst of the rule, a named case, or a disaster; outcome fields are filled by :func:`score`."""

    kind: str
    """event / calm-burst / named-page / named-no-page / named-not-critical / disaster."""
    brand: str
    name: str
    start: int
    end: int
    lo: int
    """Match window for ``started_at``: [lo, hi]."""
    hi: int
    offset_s: int = 0
    tweets: int = 0
    negatives: int = 0
    note: str = ""
    sharp: bool = False
    burst_at: int | None = None
    paged: bool = False
    first_at: int | None = None
    delay_min: float | None = None
    burst_delay_min: float | None = None
    severity: str = ""
    max_severity: str = ""
    terms: list[str] = field(default_factory=list)
    pages: int = 0
    passed: bool | None = None
    in_open_crisis: bool = False
    """Not paged itself, but a crisis of the brand paged before it was still open at its start: the on-call
    people were already on it (reported apart; it does not count as paged)."""


def merge_hours(stats: Iterable[HourStat], kind: str, offset_s: int) -> list[Window]:
    """Adjacent hours of ``kind`` (per brand) merged into windows."""
    out: list[Window] = []
    for s in sorted((s for s in stats if s.kind == kind), key=lambda s: (s.brand, s.hour)):
        last = out[-1] if out else None
        if last is not None and last.brand == s.brand and last.end == s.hour:
            last.end += 3600
            last.hi += 3600
            last.tweets += s.total
            last.negatives += s.negative
            last.note += "; " + _hour_note(s, offset_s)
            continue
        out.append(Window(kind, s.brand, s.brand, s.hour, s.hour + 3600, s.hour - 60 * MATCH_BEFORE_MIN,
                          s.hour + 3600, offset_s, s.total, s.negative, "hours: " + _hour_note(s, offset_s)))
    for w in out:
        w.name = f"{w.brand} {local(w.start, offset_s)} .. {local(w.end, offset_s)[11:]}"
    return out


def _hour_note(s: HourStat, offset_s: int | None = None) -> str:
    """"10:00 event 21 neg / 31 (baselines 7.0 / 12.0)": an hour as the rule saw it."""
    when = "" if offset_s is None else local(s.hour, offset_s)[11:] + " "
    return (f"{when}{s.kind} {s.negative} neg / {s.total} (baselines {_f(s.base_negative)} / "
            f"{_f(s.base_total)})")


def named_windows(named: Sequence[Named], offset_s: dict[str, int]) -> list[Window]:
    out = []
    for n in named:
        if n.brand not in offset_s:
            continue
        off = offset_s[n.brand]
        tz = timezone(timedelta(seconds=off))
        s = int(datetime.fromisoformat(n.start).replace(tzinfo=tz).timestamp())
        e = int(datetime.fromisoformat(n.end).replace(tzinfo=tz).timestamp())
        out.append(Window(f"named-{n.expect}", n.brand, n.name, s, e, s - 60 * MATCH_BEFORE_MIN, e, off))
    return out


# --- disasters ------------------------------------------------------------------------------------------------------


def onset_epoch(o: Onset) -> int | None:
    return None if o.at is None else int(datetime.fromisoformat(o.at).replace(tzinfo=timezone.utc).timestamp())


def first_visible_burst(created: Sequence[int], onset: int) -> int | None:
    """Start of the first 10-minute window from the onset on with >= 3x the pre-onset median and >= 10 tweets."""
    w = 60 * BURST_WINDOW_MIN
    per: Counter[int] = Counter((c - onset) // w for c in created)
    first = min(created, default=onset)
    before = [per.get(k, 0) for k in range(-1, -(((onset - first) // w) + 1), -1)]
    need = max(BURST_MIN_TWEETS, BURST_RATIO * (statistics.median(before) if before else 0.0))
    for k in range(0, DISASTER_AFTER_MIN // BURST_WINDOW_MIN):
        if per.get(k, 0) >= need:
            return onset + k * w
    return None


def qualifies(tweets: Sequence[Tweet], onset: int) -> tuple[bool, float, int]:
    """T26 admission: (qualifies, hours of tweets before the onset, tweets before the onset)."""
    first = min((t.created for t in tweets), default=onset)
    pre = sum(1 for t in tweets if t.created < onset)
    hours = (onset - first) / 3600
    return hours >= QUALIFY_MIN_PRE_HOURS and pre >= QUALIFY_MIN_PRE_TWEETS, hours, pre


def disaster_window(o: Onset, tweets: Sequence[Tweet]) -> Window:
    t0 = onset_epoch(o)
    assert t0 is not None
    _, hours, pre = qualifies(tweets, t0)
    w = Window("disaster", o.event, f"{o.collection} {o.event}", t0, t0 + 60 * DISASTER_AFTER_MIN,
               t0 - 60 * DISASTER_BEFORE_MIN, t0 + 60 * DISASTER_AFTER_MIN, 0, len(tweets),
               sum(t.label == NEG for t in tweets), f"{hours:.0f} h / {pre} tweets before onset", o.sharp)
    w.burst_at = first_visible_burst([t.created for t in tweets], t0)
    w.note += f"; first visible burst {'none in 6 h' if w.burst_at is None else local(w.burst_at, 0)[11:]}"
    return w


# --- running the detector -------------------------------------------------------------------------------------------


def service_settings():  # type: ignore[no-untyped-def]
    """The service's defaults: what ``crisiswatch detect`` uses without ``--config`` (environment ignored)."""
    from listener.config import load

    return load(None, env={}).pipeline


class OracleScorer:
    """A stand-in for :class:`listener.sentiment.Scorer` whose compounds come from the human labels.

    ``run_items`` passes only texts, so labels are looked up by text; a text that occurs with several labels gets
    its most frequent one (ties: negative, then neutral, then positive).  Unknown texts score 0 (neutral)."""

    def __init__(self, tweets: Iterable[Tweet]) -> None:
        votes: dict[str, Counter[str]] = defaultdict(Counter)
        for t in tweets:
            votes[t.text][t.label] += 1
        rank = {NEG: 2, NEU: 1, POS: 0}
        self.compound = {text: ORACLE_COMPOUND[max(c, key=lambda lab: (c[lab], rank[lab]))]
                         for text, c in votes.items()}

    def score_many(self, texts: Iterable[str]) -> list[float]:
        get = self.compound.get
        return [get(t, 0.0) for t in texts]


@dataclass(frozen=True)
class Page:
    """A triggered alert: what the scoring and the report use."""

    brand: str
    crisis_id: str
    started_at: int
    at: int
    severity: str
    max_severity: str
    terms: tuple[str, ...]
    summary: str
    resolved_at: int | None = None
    """When its crisis was resolved (None: still open when the data end)."""


def _terms(e: AlertEvent) -> tuple[str, ...]:
    return tuple(str(t["term"]) for t in e.evidence.get("terms", ()))  # type: ignore[union-attr]


def pages_of(events: Sequence[AlertEvent]) -> tuple[list[Page], list[AlertEvent]]:
    """The pages (triggered alerts, with their crisis's highest severity) and the notices."""
    top: dict[str, AlertEvent] = {}
    for e in events:
        if e.status in (Status.TRIGGERED, Status.ESCALATED):
            if e.crisis_id not in top or e.severity.rank > top[e.crisis_id].severity.rank:
                top[e.crisis_id] = e
    resolved = {e.crisis_id: e.at for e in events if e.status is Status.RESOLVED}
    pages = [Page(e.brand, e.crisis_id, e.started_at, e.at, e.severity.value, top[e.crisis_id].severity.value,
                  _terms(e), e.summary, resolved.get(e.crisis_id)) for e in events if e.status is Status.TRIGGERED]
    return pages, [e for e in events if e.status is Status.NOTICE]


def run(tweets: Sequence[Tweet], scorer: Scorer | OracleScorer) -> tuple[list[Page], list[AlertEvent], int, int]:
    """Replay the tweets in creation order; return pages, notices, mentions processed and duplicates dropped."""
    from listener.offline import run_items

    utc = timezone.utc
    order = sorted(tweets, key=lambda t: t.created)
    items = (Mention(t.id, "twitter", t.brand, t.text, datetime.fromtimestamp(t.created, utc), t.author, None,
                     None, None, t.repost) for t in order)
    result = run_items(items, service_settings(), scorer=scorer)  # type: ignore[arg-type]  # duck-typed scorer
    pages, notices = pages_of(result.events)
    return pages, notices, result.mentions, result.duplicates


# --- scoring --------------------------------------------------------------------------------------------------------


@dataclass
class PageVerdict:
    brand: str
    started_at: str
    at: str
    severity: str
    max_severity: str
    verdict: str
    """event / repeat / disaster / calm-burst / named / false / unsettled (+ the hour's rule kind)."""
    window: str
    terms: list[str]


def score(windows: Sequence[Window], pages: Sequence[Page], tables: dict[str, HourTable]) -> list[PageVerdict]:
    """Fill each window's outcome and give every page a verdict (see the module docstring)."""
    pages = sorted(pages, key=lambda p: (p.at, p.brand))
    for w in windows:
        inside = [p for p in pages if p.brand == w.brand and w.lo <= p.started_at <= w.hi]
        w.pages = len(inside)
        w.paged = bool(inside)
        if inside:
            p = inside[0]
            w.first_at, w.severity, w.terms = p.at, p.severity, list(p.terms)
            w.max_severity = max((q.max_severity for q in inside), key=_rank)
            w.delay_min = (p.at - w.start) / 60
            if w.burst_at is not None:
                w.burst_delay_min = (p.at - w.burst_at) / 60
        w.in_open_crisis = not w.paged and any(
            p.brand == w.brand and p.started_at < w.lo and p.at <= w.start
            and (p.resolved_at is None or p.resolved_at > w.start) for p in pages)
        if w.kind in ("event", "disaster", "named-page"):
            w.passed = w.paged
        elif w.kind in ("calm-burst", "named-no-page"):
            w.passed = not w.paged
        elif w.kind == "named-not-critical":
            w.passed = not any(q.max_severity == "critical" for q in inside)
    order = {"event": 0, "disaster": 0, "calm-burst": 1}
    ranked = sorted(windows, key=lambda w: order.get(w.kind, 2))
    out: list[PageVerdict] = []
    seen: set[int] = set()
    for p in pages:
        table = tables[p.brand]
        where = next((w for w in ranked if w.brand == p.brand and w.lo <= p.started_at <= w.hi), None)
        if where is not None:
            if where.kind in ("event", "disaster"):
                verdict = "repeat" if id(where) in seen else where.kind
                seen.add(id(where))
            else:
                verdict = "calm-burst" if where.kind == "calm-burst" else "named"
            name = where.name
        else:
            s = table.stat(p.brand, p.started_at)
            verdict = "false" if s.kind == "normal" else "unsettled"
            name = f"hour: {s.kind}, {s.negative} neg / {s.total} (baseline neg {_f(s.base_negative)})"
        off = table.offset_s
        out.append(PageVerdict(p.brand, local(p.started_at, off), local(p.at, off), p.severity, p.max_severity,
                               verdict, name, list(p.terms)))
    return out


_RANKS = {"": -1, "info": 0, "warning": 1, "error": 2, "critical": 3}


def _rank(s: str) -> int:
    return _RANKS.get(s, -1)


def local(epoch: float, offset_s: int) -> str:
    tz = timezone(timedelta(seconds=offset_s))
    return datetime.fromtimestamp(epoch, tz).strftime("%Y-%m-%d %H:%M") + ("" if offset_s else "Z")


def _f(x: float | None, fmt: str = ".1f") -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def _median(xs: Sequence[float]) -> float | None:
    return statistics.median(xs) if xs else None


# --- the benchmark --------------------------------------------------------------------------------------------------


@dataclass
class StreamRun:
    name: str
    offset_s: int
    mentions: int = 0
    duplicates: int = 0
    windows: list[Window] = field(default_factory=list)
    pages: list[PageVerdict] = field(default_factory=list)
    notices: list[dict[str, str]] = field(default_factory=list)
    mixed_hours: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def keyword_hours(tweets: Sequence[Tweet], brand: str, keyword: str, offset_s: int) -> dict[str, int]:
    per: Counter[str] = Counter(local(t.created // 3600 * 3600, offset_s) for t in tweets
                                if t.brand == brand and keyword in t.text.lower())
    return dict(sorted(per.items()))


def bench_brands(name: str, tweets: list[Tweet], offset_s: int, oracle: bool) -> StreamRun:
    """Airline or Apple: the rule's events and calm bursts, the named cases, the run and its scoring."""
    t0 = time.perf_counter()
    sr = StreamRun(name, offset_s)
    table = HourTable(tweets, offset_s)
    stats = table.hours()
    sr.windows = merge_hours(stats, "event", offset_s) + merge_hours(stats, "calm-burst", offset_s)
    sr.mixed_hours = [f"{s.brand} {local(s.hour, offset_s)}: {s.negative} neg / {s.total} "
                      f"(baselines {_f(s.base_negative)} / {_f(s.base_total)})" for s in stats if s.kind == "mixed"]
    brands = {t.brand for t in tweets}
    named = [n for n in NAMED if n.brand in brands]
    for n, w in zip(named, named_windows(named, {b: offset_s for b in brands})):
        rule = [r for r in sr.windows if r.brand == w.brand and r.start < w.end and w.start < r.end]
        hours = [table.stat(w.brand, h) for h in range(w.start, w.end, 3600)]
        w.tweets, w.negatives = sum(h.total for h in hours), sum(h.negative for h in hours)
        found = ", ".join(f"{r.kind} {r.name}" for r in rule) or "no rule window overlaps"
        w.note = f"rule: {found}; hours: " + ", ".join(_hour_note(h, offset_s) for h in hours if h.total)
        if n.keyword:
            w.note += f"; '{n.keyword}' tweets per hour: {keyword_hours(tweets, n.brand, n.keyword, offset_s)}"
        sr.windows.append(w)
    scorer = OracleScorer(tweets) if oracle else _scorer()
    pages, notices, sr.mentions, sr.duplicates = run(tweets, scorer)
    sr.pages = score(sr.windows, pages, {b: table for b in brands})
    sr.notices = [{"brand": e.brand, "at": local(e.at, offset_s), "summary": e.summary} for e in notices]
    sr.seconds = time.perf_counter() - t0
    return sr


_SCORER: Scorer | None = None


def _scorer() -> Scorer:
    """The service's scorer, built once (its lexicon takes a moment to load)."""
    global _SCORER
    if _SCORER is None:
        from listener.sentiment import Scorer

        _SCORER = Scorer()
    return _SCORER


def bench_disasters(folder: Path, oracle: bool) -> StreamRun:
    t0 = time.perf_counter()
    sr = StreamRun("disasters", 0)
    for o in ONSETS:
        if not (folder / f"CrisisLex{o.collection}" / o.event).is_dir():
            sr.notes.append(f"{o.collection} {o.event}: folder missing")
            continue
        onset = onset_epoch(o)
        if onset is None:
            sr.notes.append(f"{o.collection} {o.event}: not scored, no onset instant ({o.source})")
            continue
        tweets = load_crisislex(folder, o)
        ok, hours, pre = qualifies(tweets, onset)
        if pre == 0 or (o.collection == "T26" and not ok):
            sr.notes.append(f"{o.collection} {o.event}: not scored, {hours:.1f} h / {pre} tweets before the onset "
                            f"(needs {QUALIFY_MIN_PRE_HOURS} h and {QUALIFY_MIN_PRE_TWEETS})")
            continue
        w = disaster_window(o, tweets)
        w.note += f"; onset: {o.source}"
        table = HourTable(tweets, 0)
        pages, notices, n, dup = run(tweets, OracleScorer(tweets) if oracle else _scorer())
        sr.mentions += n
        sr.duplicates += dup
        sr.windows.append(w)
        sr.pages += score([w], pages, {o.event: table})
        sr.notices += [{"brand": e.brand, "at": local(e.at, 0), "summary": e.summary} for e in notices]
    sr.seconds = time.perf_counter() - t0
    return sr


def summarise(runs: Sequence[StreamRun]) -> dict[str, object]:
    ws = [w for r in runs for w in r.windows]
    pages = [p for r in runs for p in r.pages]
    events = [w for w in ws if w.kind == "event"]
    dis = [w for w in ws if w.kind == "disaster"]
    sharp = [w for w in dis if w.sharp]
    calm = [w for w in ws if w.kind == "calm-burst"]
    named = [w for w in ws if w.kind.startswith("named-")]
    fast = [w for w in sharp if w.paged and w.burst_delay_min is not None and w.burst_delay_min <= FAST_MIN]
    count = Counter(p.verdict for p in pages)

    def nn(xs: Sequence[Window], ok: Sequence[Window] | None = None) -> str:
        return f"{len([w for w in xs if w.paged]) if ok is None else len(ok)}/{len(xs)}"

    return {
        "events_paged": nn(events),
        "events_in_an_open_crisis": nn(events, [w for w in events if w.in_open_crisis]),
        "event_median_delay_min": _median([w.delay_min for w in events if w.delay_min is not None]),
        "disasters_paged": nn(dis),
        "sharp_disasters_paged": nn(sharp),
        "slow_disasters_paged": nn([w for w in dis if not w.sharp]),
        "sharp_paged_within_15min_of_burst": nn(sharp, fast),
        "sharp_median_delay_from_onset_min": _median([w.delay_min for w in sharp if w.delay_min is not None]),
        "sharp_median_delay_from_burst_min": _median([w.burst_delay_min for w in sharp
                                                      if w.burst_delay_min is not None]),
        "calm_bursts_paged": nn(calm),
        "named_cases_passed": f"{sum(1 for w in named if w.passed)}/{len(named)}",
        "named_cases": {w.name: ("pass" if w.passed else "FAIL") + f" ({w.kind[6:]})" for w in named},
        "pages": len(pages),
        "false_pages": count["false"],
        "unsettled_pages": count["unsettled"],
        "repeat_pages": count["repeat"],
        "notices": sum(len(r.notices) for r in runs),
    }


def report(runs: Sequence[StreamRun], summary: dict[str, object], oracle: bool, wall: float) -> None:
    mode = "oracle (human labels as sentiment)" if oracle else "scored (the service's Scorer)"
    print(f"real-tweet benchmark — {mode}; detector = service defaults\n")
    for r in runs:
        print(f"== {r.name}: {r.mentions} mentions ({r.duplicates} duplicate ids dropped), {r.seconds:.1f} s")
        for n in r.notes:
            print(f"   {n}")
        if r.mixed_hours:
            print("   mixed hours (event and calm burst at once; scored as neither): " + "; ".join(r.mixed_hours))
        print(f"   {'kind':<18} {'window':<44} {'neg/all':>9} {'ok':>3} {'delay':>6} {'burst':>6} "
              f"{'sev':<9} {'max':<9} terms")
        for w in r.windows:
            ok = "-" if w.passed is None else "yes" if w.passed else "open" if w.in_open_crisis else "NO"
            window = w.name if w.kind != "disaster" else f"{w.name[:30]} {local(w.start, 0)[5:]}"
            print(f"   {w.kind:<18} {window:<44} {f'{w.negatives}/{w.tweets}':>9} {ok:>3} {_f(w.delay_min):>6} "
                  f"{_f(w.burst_delay_min):>6} {w.severity:<9} {w.max_severity:<9} {', '.join(w.terms[:5])}")
            if w.note:
                print(f"      {w.note}")
        if r.pages:
            print("   pages:")
            for p in r.pages:
                print(f"     {p.brand:<14} start {p.started_at} at {p.at[11:]} {p.severity:<8} ({p.max_severity:<8}) "
                      f"{p.verdict:<10} {p.window[:70]} | {', '.join(p.terms[:5])}")
        print()
    print("summary")
    for k, v in summary.items():
        if isinstance(v, dict):
            for name, verdict in v.items():
                print(f"    {name:<38} {verdict}")
            continue
        print(f"  {k:<40} {_f(v) if isinstance(v, float) or v is None else v}")
    print(f"\nruntime {wall:.1f} s")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--data", default=str(DEFAULT_DATA), help="the shared data folder (default ../shared/data)")
    ap.add_argument("--oracle", action="store_true", help="use the human labels as the sentiment")
    ap.add_argument("--json", help="also write everything as JSON here")
    ap.add_argument("--only", choices=("airline", "apple", "disasters"))
    args = ap.parse_args(argv)
    data = Path(args.data)
    needed = {"airline": AIRLINE_CSV, "apple": APPLE_CSV, "disasters": CRISISLEX}
    wanted = [args.only] if args.only else list(needed)
    missing = [needed[k] for k in wanted if not (data / needed[k]).exists()]
    if missing:
        print(f"real benchmark: data missing in {data.resolve()}: {', '.join(missing)} "
              f"(pass --data DIR, the folder holding them)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    runs: list[StreamRun] = []
    if "airline" in wanted:
        runs.append(bench_brands("airline", load_airlines(data / AIRLINE_CSV), AIRLINE_OFFSET_S, args.oracle))
    if "apple" in wanted:
        runs.append(bench_brands("apple", load_apple(data / APPLE_CSV), 0, args.oracle))
    if "disasters" in wanted:
        runs.append(bench_disasters(data / CRISISLEX, args.oracle))
    summary = summarise(runs)
    wall = time.perf_counter() - t0
    report(runs, summary, args.oracle, wall)
    if args.json:
        blob = {"mode": "oracle" if args.oracle else "scored", "runtime_s": wall, "summary": summary,
                "rule": {"N_MIN": N_MIN, "K_RATIO": K_RATIO, "MEDIAN_FLOOR": MEDIAN_FLOOR, "CALM_SHARE": CALM_SHARE,
                         "COVERED_DAY_MIN": COVERED_DAY_MIN, "BASELINE_MIN_DAYS": BASELINE_MIN_DAYS,
                         "NORMAL_RATIO": NORMAL_RATIO},
                "streams": [asdict(r) for r in runs]}
        Path(args.json).write_text(json.dumps(blob, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
