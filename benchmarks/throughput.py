"""Throughput of the listener against its parts and against a naive baseline, in one run.

Starts the embedded broker, publishes a deterministic simulated stream (five
brands, two crises, ~100k mentions by default) to a fresh 4-partition topic,
then measures mentions per second for:

  (a) raw consumption: a consumer group polling every record, no decode;
  (b) VADER alone: :meth:`listener.sentiment.Scorer.score_many` on all texts;
  (c) the full listener through the broker (decode, score, buckets, detectors,
      alert publishing to Kafka, a commit per batch);
  (d) ``crisiswatch detect`` offline (:func:`listener.offline.detect_file`);
  (e) a naive pipeline: one message per poll, a synchronous commit per
      message, stdlib ``json``, stock VADER and a pandas rolling window per
      brand recomputed per message — on the first ``--naive`` messages.

Consumer rates are given two ways: "steady" counts from the moment the group
assigned the partitions (the embedded broker needs about half the session
timeout to form a group, a fixed cost unrelated to throughput) and "wall"
from the start of the run.  The targets are judged on the steady figures,
which is the stricter reading (a fixed join cost flatters a slower stage).

Usage::

    python benchmarks/throughput.py [--mentions 100000] [--naive 3000]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import kafka  # noqa: E402  (only for its version in the machine line)

from connectors.kafka import Consumer, KafkaSettings, Position, Producer, ensure_topics, read_all  # noqa: E402
from connectors.mention import encode  # noqa: E402
from connectors.simulator import BrandProfile, InjectedCrisis, Simulation  # noqa: E402
from listener.alerts import ALERT_ID_HEADER, KafkaAlertSink  # noqa: E402
from listener.broker import EmbeddedBroker  # noqa: E402
from listener.config import Config, ListenerSettings  # noqa: E402
from listener.offline import detect_file  # noqa: E402
from listener.sentiment import Scorer  # noqa: E402
from listener.service import Listener  # noqa: E402

SEED = 20261123
BRANDS = (
    BrandProfile("acme", mentions_per_minute=12.0),
    BrandProfile("globex", mentions_per_minute=10.0),
    BrandProfile("umbrella", mentions_per_minute=8.0),
    BrandProfile("initech", mentions_per_minute=6.0),
    BrandProfile("hooli", mentions_per_minute=4.0, negative_share=0.2),
)
START = datetime(2026, 3, 2, 0, 0, tzinfo=timezone.utc)  # a Monday
TIMEOUT_S = 300.0


def simulation(mentions: int) -> Simulation:
    """Enough minutes for ``mentions`` mentions; crises at 55% and 80% of the span."""
    per_minute = sum(b.mentions_per_minute for b in BRANDS)
    minutes = int(math.ceil(mentions / per_minute * 1.15)) + 10
    return Simulation(
        brands=BRANDS,
        start=START,
        minutes=minutes,
        seed=SEED,
        crises=(
            InjectedCrisis("acme", START + timedelta(minutes=int(minutes * 0.55)), "data breach", 150, 35.0),
            InjectedCrisis("globex", START + timedelta(minutes=int(minutes * 0.80)), "outage", 90, 25.0),
        ),
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def broker_peak_rss_mb(broker: EmbeddedBroker) -> float | None:
    """The broker process's peak RSS (VmHWM), read before it is stopped; None where /proc is missing."""
    proc = getattr(broker, "_proc", None)
    try:
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():  # type: ignore[union-attr]
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (AttributeError, OSError, ValueError):
        pass
    return None


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg} (peak RSS {peak_rss_mb():.0f} MB)", flush=True)


@dataclass
class Timing:
    records: int
    wall_s: float
    """From the start of the stage to its last record."""
    steady_s: float
    """From the partition assignment (group formed) to the last record; = wall for stages without a group."""

    @property
    def wall_rate(self) -> float:
        return self.records / self.wall_s

    @property
    def rate(self) -> float:
        return self.records / self.steady_s


class _Assigned:
    """Remembers when a consumer group first assigned partitions (then calls the original callback)."""

    def __init__(self, then: Callable[[list[Position]], None] | None = None) -> None:
        self.at: float | None = None
        self.then = then

    def __call__(self, positions: list[Position]) -> None:
        if self.at is None and positions:
            self.at = time.perf_counter()
        if self.then is not None:
            self.then(positions)


# --- setup -------------------------------------------------------------------------------------


def generate(mentions: int) -> tuple[list[bytes], list[bytes], list[str]]:
    """(keys, encoded values, texts) of the first ``mentions`` simulated mentions."""
    keys: list[bytes] = []
    values: list[bytes] = []
    texts: list[str] = []
    for m in islice(simulation(mentions).items(), mentions):
        keys.append(m.brand.encode())
        # A copy: orjson >= 3.12 returns bytes that keep its ~4 KB write buffer (ijl/orjson#483,
        # home-assistant/core#181240), 100k of them would hold ~400 MB.
        values.append(bytes(memoryview(encode(m))))
        texts.append(m.text)
    return keys, values, texts


def produce(settings: KafkaSettings, keys: list[bytes], values: list[bytes]) -> float:
    producer = Producer(settings)
    started = time.perf_counter()
    for k, v in zip(keys, values):
        producer.send(settings.mentions_topic, v, key=k)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed


# --- (a) raw consumption --------------------------------------------------------------------


def raw_consume(settings: KafkaSettings, total: int, run: int = 0) -> Timing:
    assigned = _Assigned()
    consumer = Consumer(settings, [settings.mentions_topic], group_id=f"bench-raw-{run}", on_assign=assigned)
    got = 0
    started = time.perf_counter()
    try:
        while got < total:
            got += consumer.poll_raw(timeout_ms=500)
            if time.perf_counter() - started > TIMEOUT_S:
                raise RuntimeError(f"raw consumption: only {got} of {total} records after {TIMEOUT_S:.0f} s")
        ended = time.perf_counter()
    finally:
        consumer.close()
    assert assigned.at is not None
    return Timing(got, ended - started, ended - assigned.at)


# --- (b) VADER alone ------------------------------------------------------------------------


def vader_only(texts: list[str]) -> Timing:
    scorer = Scorer()
    started = time.perf_counter()
    scorer.score_many(texts)
    elapsed = time.perf_counter() - started
    return Timing(len(texts), elapsed, elapsed)


# --- (c) the full listener --------------------------------------------------------------------


@dataclass
class ListenerRun:
    timing: Timing
    alert_ids: set[str]
    alerts_published: int
    dead_letters: int
    batches: int


def full_listener(settings: KafkaSettings, total: int, profile_path: str | None, run: int = 0) -> ListenerRun:
    # a fresh group and state topic a run: a run must not resume from the previous run's snapshots
    kafka = replace(settings, group_id=f"bench-listener-{run}", alerts_topic=f"{settings.alerts_topic}-{run}",
                    state_topic=f"bench-state-{run}")
    ensure_topics(kafka, [kafka.alerts_topic, kafka.state_topic])
    config = Config(kafka=kafka, listener=replace(ListenerSettings(), console=False, history_path=""))
    producer = Producer(config.kafka)
    assigned = _Assigned()

    def consumer_factory(*args: object, on_assign: Callable[[list[Position]], None] | None = None,
                         **kwargs: object) -> Consumer:
        assigned.then = on_assign
        return Consumer(*args, on_assign=assigned, **kwargs)  # type: ignore[arg-type]

    listener = Listener(config, producer, [KafkaAlertSink(producer, config.kafka.alerts_topic)],
                        consumer_factory=consumer_factory)
    ended: list[float] = []

    def all_consumed() -> bool:
        if listener.stats.consumed >= total:
            ended.append(time.perf_counter())
            return True
        if time.perf_counter() - started > TIMEOUT_S:
            raise RuntimeError(f"listener: only {listener.stats.consumed} of {total} records after {TIMEOUT_S:.0f} s")
        return False

    profiler = None
    if profile_path:
        import cProfile

        profiler = cProfile.Profile()
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    listener.run(threading.Event(), until=all_consumed)
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile_path)
    producer.flush()
    producer.close()
    assert assigned.at is not None
    timing = Timing(listener.stats.consumed, ended[0] - started, ended[0] - assigned.at)
    records = read_all(config.kafka, config.kafka.alerts_topic, timeout_s=15, idle_s=1.5)
    ids = {dict(r.headers)[ALERT_ID_HEADER].decode() for r in records}
    return ListenerRun(timing, ids, len(records), sum(listener.stats.dead_letters.values()),
                       listener.stats.batches)


# --- (d) offline detect -----------------------------------------------------------------------


def offline_detect(values: list[bytes], workdir: Path) -> tuple[Timing, set[str], int]:
    source = workdir / "mentions.jsonl"
    with open(source, "wb") as f:
        f.write(b"\n".join(values) + b"\n")
    started = time.perf_counter()
    result = detect_file(source, workdir / "alerts.jsonl", Config().pipeline)
    elapsed = time.perf_counter() - started
    return Timing(result.mentions, elapsed, elapsed), {e.id for e in result.events}, len(result.events)


# --- (e) the naive baseline ---------------------------------------------------------------------


def naive_pipeline(settings: KafkaSettings, limit: int) -> tuple[Timing, int]:
    """How someone would write it first: one message at a time, pandas for the window.

    Per message: poll one record, ``json.loads``, stock VADER, append a row to
    the brand's DataFrame, keep its last 10 minutes, recompute the 10-minute
    time-based rolling sum and count of negatives with pandas, flag the brand
    when negatives are many and the majority, commit synchronously.  (Trimming
    the frame to the window keeps the per-message cost flat: kinder to the
    baseline than letting it grow.)
    """
    import pandas as pd
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    window = pd.Timedelta(minutes=10)
    frames: dict[str, pd.DataFrame] = {}
    flagged = 0
    assigned = _Assigned()
    consumer = Consumer(settings, [settings.mentions_topic], group_id="bench-naive", on_assign=assigned)
    done = 0
    started = time.perf_counter()
    try:
        while done < limit:
            for batch in consumer.poll(timeout_ms=500, max_records=1):
                msg = json.loads(batch.values[0])
                compound = analyzer.polarity_scores(msg["text"])["compound"]
                row = pd.DataFrame({"time": [pd.Timestamp(msg["created_at"])],
                                    "negative": [1 if compound <= -0.05 else 0]})
                brand = msg["brand"]
                df = pd.concat([frames[brand], row], ignore_index=True) if brand in frames else row
                df = df[df["time"] > df["time"].iloc[-1] - window].reset_index(drop=True)
                frames[brand] = df
                rolled = df.rolling(window, on="time")["negative"]
                negatives = rolled.sum().iloc[-1]
                count = rolled.count().iloc[-1]
                if negatives >= 10 and negatives / count >= 0.5:
                    flagged += 1
                consumer.commit({batch.position: batch.next_offset})
                done += 1
            if time.perf_counter() - started > TIMEOUT_S:
                raise RuntimeError(f"naive pipeline: only {done} of {limit} records after {TIMEOUT_S:.0f} s")
        ended = time.perf_counter()
    finally:
        consumer.close()
    assert assigned.at is not None
    return Timing(done, ended - started, ended - assigned.at), flagged


# --- report -------------------------------------------------------------------------------------


def median_timing(runs: list[Timing]) -> Timing:
    return sorted(runs, key=lambda t: t.rate)[len(runs) // 2]


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import pandas
    import vaderSentiment

    vader_version = getattr(vaderSentiment, "__version__", None)
    if vader_version is None:
        from importlib.metadata import version

        vader_version = version("vaderSentiment")
    return (f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, kafka-python {kafka.__version__}, "
            f"vaderSentiment {vader_version}, pandas {pandas.__version__}, embedded Tansu broker")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mentions", type=int, default=100_000, help="mentions in the stream (default 100000)")
    parser.add_argument("--naive", type=int, default=3000,
                        help="messages through the naive baseline (default 3000)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of (a), (b) and (c), interleaved; the median of each is reported (default 3)")
    parser.add_argument("--profile", metavar="FILE",
                        help="write a cProfile of stage (c) to FILE (slows (c) down; figures are then not comparable)")
    args = parser.parse_args(argv)
    if args.mentions < 1 or args.naive < 1 or args.repeat < 1:
        parser.error("--mentions, --naive and --repeat must be positive")
    naive_n = min(args.naive, args.mentions)

    run_started = time.perf_counter()
    keys, values, texts = generate(args.mentions)
    n = len(values)
    log(f"generated {n:,} mentions ({sum(map(len, values)) / n:.0f} bytes each on average, seed {SEED})")

    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory(prefix="crisiswatch-bench-") as tmp:
        settings = replace(
            KafkaSettings(),
            bootstrap_servers=(broker.bootstrap,),
            mentions_topic="bench-mentions",
            alerts_topic="bench-alerts",
            dlq_topic="bench-mentions.dlq",
            partitions=4,
            enable_idempotence=False,  # docs/kafka-notes.md: the embedded broker's producer ids
            session_timeout_ms=3000,
            heartbeat_interval_ms=1000,
        )
        ensure_topics(settings, [settings.mentions_topic, settings.alerts_topic, settings.dlq_topic])
        produce_s = produce(settings, keys, values)
        log(f"produced {n:,} records to {settings.mentions_topic} (4 partitions) in {produce_s:.1f} s "
            f"({n / produce_s:,.0f}/s)")
        del keys

        # (a), (b) and (c) are compared with each other, so they are run in turns and the
        # median of each is kept: the machine's speed drifts between runs by several percent.
        runs_a: list[Timing] = []
        runs_b: list[Timing] = []
        runs_c: list[ListenerRun] = []
        for run in range(args.repeat):
            runs_a.append(raw_consume(settings, n, run))
            log(f"(a) raw consumption, run {run + 1}: {runs_a[-1].rate:,.0f}/s steady, "
                f"{runs_a[-1].wall_rate:,.0f}/s wall")
            runs_b.append(vader_only(texts))
            log(f"(b) VADER score_many, run {run + 1}: {runs_b[-1].rate:,.0f}/s")
            runs_c.append(full_listener(settings, n, args.profile if run == 0 else None, run))
            log(f"(c) full listener, run {run + 1}: {runs_c[-1].timing.rate:,.0f}/s steady, "
                f"{runs_c[-1].timing.wall_rate:,.0f}/s wall; {runs_c[-1].alerts_published} alert events "
                f"published in {runs_c[-1].batches} batches")
        del texts
        a = median_timing(runs_a)
        b = median_timing(runs_b)
        c = sorted(runs_c, key=lambda r: r.timing.rate)[len(runs_c) // 2]
        if any(r.alert_ids != c.alert_ids for r in runs_c):
            log("WARNING: the listener runs raised different alert ids")
        d, d_ids, d_events = offline_detect(values, Path(tmp))
        log(f"(d) offline detect: {d.rate:,.0f}/s; {d_events} alert events")
        e, flagged = naive_pipeline(settings, naive_n)
        log(f"(e) naive pipeline: {e.rate:,.0f}/s steady, {e.wall_rate:,.0f}/s wall on {naive_n:,} messages")
        broker_rss = broker_peak_rss_mb(broker)
    total_s = time.perf_counter() - run_started

    harmonic = 1 / (1 / a.rate + 1 / b.rate)
    harmonic_wall = 1 / (1 / a.wall_rate + 1 / b.rate)
    overhead = 1 - c.timing.rate / harmonic
    overhead_wall = 1 - c.timing.wall_rate / harmonic_wall
    target_overhead = c.timing.rate >= 0.85 * harmonic
    target_naive = c.timing.rate >= 3 * e.rate

    def yes(ok: bool) -> str:
        return "met" if ok else "NOT met"

    rows = [
        ("(a) raw consumption (group, `poll_raw`, no decode)", a),
        ("(b) VADER alone (`Scorer.score_many`, no Kafka)", b),
        ("(c) full listener through the broker (decode, score, buckets, detectors, alerts to Kafka, commits)",
         c.timing),
        ("(d) `crisiswatch detect` offline (`detect_file`, JSON lines)", d),
        ("(e) naive: 1 msg/poll + sync commit, `json`, stock VADER, pandas rolling window", e),
    ]
    print()
    print(f"Machine: {machine()}")
    print(f"Stream: {n:,} simulated mentions, {len(BRANDS)} brands, 2 crises, seed {SEED}; topic with 4 partitions; "
          f"(e) on the first {naive_n:,}. Rates in mentions/s; \"steady\" = from partition assignment to the "
          f"last record, \"wall\" = including the consumer-group join; (a), (b), (c): median of {args.repeat} "
          f"interleaved runs.")
    print()
    print("| stage | mentions | seconds (steady) | mentions/s (steady) | mentions/s (wall) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, t in rows:
        print(f"| {name} | {t.records:,} | {t.steady_s:.2f} | {t.rate:,.0f} | {t.wall_rate:,.0f} |")
    print()
    print("| target | value | result |")
    print("| --- | --- | --- |")
    print(f"| pipeline overhead under 15%: (c) >= 0.85 x 1/(1/a+1/b) | (c) {c.timing.rate:,.0f}/s vs "
          f"{0.85 * harmonic:,.0f}/s (harmonic {harmonic:,.0f}/s); overhead {overhead:.1%} "
          f"(wall figures: {overhead_wall:.1%}) | {yes(target_overhead)} |")
    print(f"| at least 3x the naive pipeline: (c) >= 3 x (e) | (c) {c.timing.rate:,.0f}/s = "
          f"{c.timing.rate / e.rate:.1f}x (e) {e.rate:,.0f}/s | {yes(target_naive)} |")
    print(f"| (c) and (d) raise the same alerts | {len(c.alert_ids)} ids on the alerts topic "
          f"({c.alerts_published} records), {len(d_ids)} from detect | "
          f"{'equal' if c.alert_ids == d_ids else 'DIFFERENT'} |")
    print()
    print(f"Peak RSS: {peak_rss_mb():.0f} MB (benchmark process, all stages)"
          f"{f', embedded broker {broker_rss:.0f} MB' if broker_rss is not None else ''}. "
          f"Dead letters in (c): {c.dead_letters}. Produce: {n / produce_s:,.0f}/s. "
          f"(e) flagged {flagged} of its {e.records:,} messages as hot. Total run {total_s:.0f} s.")
    if c.alert_ids != d_ids:
        print(f"  only in (c): {sorted(c.alert_ids - d_ids)}")
        print(f"  only in (d): {sorted(d_ids - c.alert_ids)}")
    return 0 if c.alert_ids == d_ids else 1


if __name__ == "__main__":
    sys.exit(main())
