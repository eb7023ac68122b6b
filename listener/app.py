"""Wiring of the service's roles: broker, ingest, listen, and the demo that runs them all.

The CLI (:mod:`listener.cli`) parses arguments and calls these; tests call
them directly.  Nothing here holds logic of its own beyond putting the parts
together and shutting them down cleanly.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from typing import TextIO

import orjson

from connectors.brands import BrandMatcher, rules_from_config
from connectors.checkpoint import CheckpointStore, DeferredCheckpoints
from connectors.kafka import Producer, ensure_topics, read_all
from connectors.post import Post
from connectors.publish import MentionPublisher
from connectors.registry import MENTION_SOURCES, build_source, source_speed
from connectors.simulator import demo_simulation
from connectors.source import Rejected, Rejections, Source, SourceContext, paced

from .alerts import AlertSink, ConsoleSink, HistorySink, KafkaAlertSink, MemorySink
from .broker import EmbeddedBroker
from .config import Config, ConfigError, Fatal, ListenerSettings
from .api import api_token, parse_listen, serving
from .notify import Notify, OnCallStack, OutboxHealth, build_oncall
from .service import Listener

log = logging.getLogger(__name__)


@contextmanager
def kafka_ready(config: Config) -> Iterator[Config]:
    """Yield the config pointed at a reachable broker with the topics created.

    With no bootstrap servers configured, start the embedded broker (and use a
    non-idempotent producer: its producer ids do not survive a restart).
    """
    broker: EmbeddedBroker | None = None
    settings = config.kafka
    if settings.embedded:
        broker = EmbeddedBroker().start()
        settings = replace(settings, bootstrap_servers=(broker.bootstrap,), enable_idempotence=False)
        log.info("no kafka.bootstrap_servers configured: started the embedded broker on %s", broker.bootstrap)
    try:
        if settings.create_topics:  # an embedded broker starts empty: its topics are missing, as expected
            ensure_topics(settings, settings.topics, missing_level=logging.INFO if broker else logging.WARNING)
        yield replace(config, kafka=settings)
    finally:
        if broker is not None:
            broker.stop()


def build_sinks(config: Config, producer: Producer, console: TextIO | None = None) -> list[AlertSink]:
    sinks: list[AlertSink] = [KafkaAlertSink(producer, config.kafka.alerts_topic)]
    if config.listener.console:
        sinks.append(ConsoleSink(console))
    if config.listener.history_path:
        sinks.append(HistorySink(config.listener.history_path))
    return sinks


def run_notify(config: Config, stack: OnCallStack, stop: threading.Event,
               until: Callable[[], bool] | None = None, health: OutboxHealth | None = None) -> Notify:
    """The notify role in the foreground (with its HTTP API and its ``/metrics`` server when configured, whose
    probes answer what ``health`` says) until ``stop`` is set; raises :class:`OutboxUnavailable
    <listener.notify.OutboxUnavailable>` when it cannot go on."""
    from .metrics import serving_notify

    token = api_token(config.oncall, os.environ) if config.oncall.http_listen else ""
    producer = Producer(config.kafka)
    notify = Notify(config, stack, producer, health=health)
    probes = notify.health
    api = serving(stack.store, config.oncall.http_listen, token, probes.check, config.http, live=probes.live,
                  ready=probes.ready) if token else nullcontext()
    metrics = serving_notify(probes, parse_listen(config.oncall.metrics_listen, "oncall.metrics_listen"),
                             config.http) if config.oncall.metrics_listen else nullcontext()
    try:
        with notify.exclusive(), api, metrics:  # the outbox's lock first: a second notify fails on it, not on a port
            notify.run(stop, until)
    finally:
        producer.close()
        stack.outbox.close()
    return notify


@contextmanager
def notifying(config: Config, stack: OnCallStack | None, service_stop: threading.Event) -> Iterator[OutboxHealth | None]:
    """Run the notify role in a thread for the duration of the block (``crisiswatch run``); yields its outbox
    health (for the listener's probes and ``/metrics``, which cover it), None when nothing is configured to notify.

    The notify thread is what pages people, so its death ends the service: it sets ``service_stop`` and the
    block raises :class:`~listener.config.Fatal`, so the process exits non-zero with the reason — never a
    listener that goes on detecting crises nobody is told about.
    """
    if stack is None:
        yield None
        return
    stop = threading.Event()
    health = OutboxHealth(str(stack.outbox.path), config.outbox.max_unavailable_s)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run_notify(config, stack, stop, health=health)
        except BaseException as exc:  # reported below, never swallowed
            if isinstance(exc, Fatal):
                log.critical("%s", exc)
            else:
                log.exception("the notify role failed")
            errors.append(exc)
            service_stop.set()

    thread = threading.Thread(target=target, name="notify", daemon=True)
    thread.start()
    try:
        yield health
    finally:
        stop.set()
        thread.join(timeout=60)
    if errors and isinstance(errors[0], Fatal):
        raise errors[0]
    if errors:
        raise Fatal(f"the notify role failed ({type(errors[0]).__name__}: {errors[0]}): stopping the service so "
                    "that its supervisor restarts it") from errors[0]


def listen(config: Config, listener: Listener, stop: threading.Event, notify: OutboxHealth | None = None) -> None:
    """Run the listener until ``stop``, with ``/metrics``, ``/livez``, ``/readyz`` and ``/healthz`` when
    ``metrics_listen`` is set (covering the notify role too when it runs in the same process: ``notify``)."""
    if not config.listener.metrics_listen:
        listener.run(stop)
        return
    from .metrics import serving as serving_metrics

    with serving_metrics(listener, parse_listen(config.listener.metrics_listen, "listener.metrics_listen"),
                         notify=notify, http=config.http):
        listener.run(stop)


SHUTDOWN_GRACE_S = 25.0
"""How long a clean shutdown may take (under Kubernetes' default 30 s before SIGKILL)."""


def stop_on_signals(stop: threading.Event, grace_s: float = SHUTDOWN_GRACE_S) -> list[int]:
    """SIGTERM and SIGINT ask for a clean shutdown (finish the batch, commit, flush).

    A shutdown always ends: a process still running ``grace_s`` after the first signal (a Kafka client stuck
    inside a call ignored SIGTERM for over 35 s), or given a second signal, exits at once with status 1.
    Nothing is lost that way: the next start resumes from the last snapshot and the outbox.

    Returns the list the signals received are appended to (the demo exits 128 + the signal, as shells do).
    """
    received: list[int] = []

    def give_up() -> None:
        log.critical("shutdown did not finish within %.0f s: exiting now (the next start resumes from the last "
                     "snapshot)", grace_s)
        _exit_now()

    def handler(signum: int, _frame: object) -> None:
        if stop.is_set():
            log.critical("signal %d again: exiting now without a clean shutdown", signum)
            _exit_now()
        log.info("signal %d: shutting down cleanly", signum)
        received.append(signum)
        stop.set()
        timer = threading.Timer(grace_s, give_up)
        timer.daemon = True
        timer.start()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return received


def _exit_now() -> None:
    for h in logging.getLogger().handlers:
        h.flush()
    os._exit(1)


@dataclass
class SourceReport:
    """One source's part of an ingest: items read (mentions, posts and rejects), mentions published, and its
    rejections by reason with the first example and the fix."""

    read: int = 0
    published: int = 0
    rejections: Rejections = field(default_factory=Rejections)

    def summary(self, name: str, dlq_topic: str) -> str:
        """Empty when nothing was rejected."""
        return self.rejections.summary(name, self.read, f"sent to {dlq_topic}")


@dataclass
class IngestReport:
    published: int = 0
    rejected: int = 0
    unmatched: int = 0
    """Posts that named none of the configured brands (dropped, counted)."""
    sources: dict[str, SourceReport] = field(default_factory=dict)

    @property
    def rejected_everything(self) -> bool:
        """Everything read was rejected: nothing to detect on, a configuration to fix (``ingest`` exits 1)."""
        return self.published == 0 and self.rejected > 0


def source_context(config: Config, stop: threading.Event | None = None) -> SourceContext:
    """What every source shares: the stop event and the (delivery-deferred) checkpoint store."""
    store = CheckpointStore(config.ingest.checkpoint_dir) if config.ingest.checkpoint_dir else None
    return SourceContext(stop=stop or threading.Event(),
                         checkpoints=DeferredCheckpoints(store) if store is not None else None)


def configured_sources(config: Config, ctx: SourceContext | None = None) -> list[tuple[Source, float | None]]:
    """Build every ``[[sources]]`` table (at start-up, so a bad one fails before anything runs)."""
    ctx = ctx or source_context(config)
    return [(build_source(t, i, ctx), source_speed(t)) for i, t in enumerate(config.sources)]


def configured_matcher(config: Config) -> BrandMatcher | None:
    """The brand matcher for sources that yield posts; ``None`` when no ``[[brands]]`` are configured.

    Every source but file replay and the simulator yields posts that must be
    matched to brands, so configuring one without ``[[brands]]`` fails here, at
    start-up, naming the fix.
    """
    if config.brands:
        return BrandMatcher(rules_from_config(config.brands))
    needing = sorted({str(t.get("type")) for t in config.sources} - MENTION_SOURCES)
    if needing:
        raise ConfigError(f"sources of type {', '.join(needing)} yield posts that must be matched to brands: "
                          "add [[brands]] tables (name, keywords, handles, hashtags, exclude)")
    return None


ROLES = ("run", "ingest", "listen", "notify", "sources")
"""The commands that read the service's configuration, each through :func:`start_up`."""


@dataclass
class StartUp:
    """What a role built from the configuration at start-up (empty where the role does not use it)."""

    context: SourceContext | None
    """The sources' context (stop event, checkpoints) for ``run`` and ``ingest``."""
    sources: list[tuple[Source, float | None]]
    matcher: BrandMatcher | None
    stack: OnCallStack | None


def start_up(config: Config, role: str, stop: threading.Event | None = None) -> StartUp:
    """The one validation of the configuration every service command runs before anything starts.

    What ``role`` uses is built, so that a bad table or a missing secret fails now, naming the key and the
    fix: the ``[[sources]]`` (``run``, ``ingest``), the on-call stack (``run``, ``notify``), the HTTP listen
    addresses and the API token (``run``, ``listen``, ``notify``).  What needs no secret and no I/O is checked
    for every role — the ``[[brands]]`` and whether the sources that yield posts have brands to match — so a
    file ``run`` refuses is refused by ``sources``, ``ingest``, ``listen`` and ``notify`` too, with the same
    message (``sources`` then lists each source's own status itself).
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    matcher = configured_matcher(config)
    context = source_context(config, stop) if role in ("run", "ingest") else None  # makes the checkpoint dir
    sources = configured_sources(config, context) if context is not None else []
    if role == "ingest" and not sources:
        raise ConfigError("no [[sources]] configured: add at least one, e.g.\n"
                          "  [[sources]]\n  type = \"file\"\n  path = \"mentions.jsonl\"")
    if role in ("ingest", "listen", "notify") and config.kafka.embedded:
        # a role that runs alone must share a broker with the other roles: the embedded one is private
        raise ConfigError(f"kafka.bootstrap_servers is empty: '{role}' runs one role alone and needs the broker "
                          "the other roles use; set it, or use 'crisiswatch run' for the embedded broker")
    stack = build_oncall(config) if role in ("run", "notify") else None
    if role == "notify" and stack is None:
        raise ConfigError("no [[receivers]] or [[actions]] configured: 'notify' has nobody to notify")
    if role in ("run", "listen", "notify"):
        if config.listener.metrics_listen:
            parse_listen(config.listener.metrics_listen, "listener.metrics_listen")
        if config.oncall.http_listen:
            parse_listen(config.oncall.http_listen)
            api_token(config.oncall, os.environ)
    return StartUp(context, sources, matcher, stack)


def warn_rejections(name: str, report: SourceReport, dlq_topic: str) -> None:
    """The default ``on_source_done`` of :func:`ingest`: a source that rejected input says so when it ends."""
    if report.rejections.total:
        log.warning("source finished: %s", report.summary(name, dlq_topic))


def ingest(config: Config, stop: threading.Event, sources: Sequence[tuple[Source, float | None]] | None = None,
           producer: Producer | None = None, matcher: BrandMatcher | None = None,
           checkpoints: DeferredCheckpoints | None = None,
           on_source_done: Callable[[str, SourceReport, str], None] = warn_rejections) -> IngestReport:
    """Publish every source's items until they end or ``stop`` is set; one thread per source.

    Mentions are published as they are; posts are matched to brands first (one
    mention per matching brand; a post that matches none is counted as
    unmatched); rejected input goes to the dead-letter topic and is counted per
    source and reason: when a source ends, ``on_source_done(name, report, dlq_topic)``
    is called (by default a warning with the summary, when it rejected anything).

    About once a second the producer is flushed and only then are the sources'
    checkpoint saves made before that flush written (``checkpoints``), so a
    source's cursor never runs ahead of what Kafka has acknowledged.
    """
    if sources is None:
        ctx = source_context(config, stop)
        sources = configured_sources(config, ctx)
        checkpoints = checkpoints or ctx.checkpoints  # type: ignore[assignment]
    if matcher is None:
        matcher = configured_matcher(config)
    lock = threading.Lock()
    own = producer is None
    producer = producer or Producer(config.kafka)
    publisher = MentionPublisher(producer, config.kafka)
    errors: list[BaseException] = []

    reports: dict[str, SourceReport] = {}
    for s, _ in sources:  # two sources of one name (two files called mentions.jsonl) are told apart
        reports[s.name if s.name not in reports else f"{s.name} #{len(reports)}"] = SourceReport()

    def pump(source: Source, speed: float | None, name: str) -> None:
        report = reports[name]

        def reject(item: Rejected) -> None:
            publisher.reject(item)
            report.rejections.add(item)

        try:
            drains = getattr(source, "drains_on_stop", False)
            for item in paced(source.items(), speed):
                if stop.is_set() and not drains:
                    break
                with lock:  # the matcher's and publisher's counters are shared by the source threads
                    report.read += 1
                    if isinstance(item, Rejected):
                        reject(item)
                    elif not isinstance(item, Post):
                        publisher.publish(item)
                        report.published += 1
                    elif matcher is None:  # refused at start-up for API sources; never crash here
                        reject(Rejected(orjson.dumps(item.mention("").to_dict()), "no_brand",
                                        "no [[brands]] configured to match posts", f"source:{source.name}",
                                        "add [[brands]] tables (name, keywords, handles, hashtags, exclude)"))
                    else:
                        for brand in matcher.match(item.text):
                            publisher.publish(item.mention(brand))
                            report.published += 1
            log.info("source %s finished", source.name)
            on_source_done(name, report, config.kafka.dlq_topic)
        except BaseException as exc:  # reported to the caller below, never swallowed
            log.exception("source %s failed", source.name)
            errors.append(exc)

    threads = [threading.Thread(target=pump, args=(s, sp, name), name=f"source-{s.name}", daemon=True)
               for (s, sp), name in zip(sources, reports)]
    def deliver() -> None:
        snapshot = checkpoints.pending() if checkpoints is not None else {}
        producer.flush()
        if checkpoints is not None:
            checkpoints.commit(snapshot)

    for t in threads:
        t.start()
    try:
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=1.0 / len(threads))
            deliver()
        deliver()
    finally:
        if own:
            producer.close()
    if errors:
        raise errors[0]
    return IngestReport(publisher.published, publisher.rejected, matcher.unmatched if matcher else 0, reports)


DEMO_INTERRUPTED = -1
"""What :func:`demo` returns when ``stop`` was set before it finished (the CLI exits 128 + the signal)."""


def demo(seed: int = 7, out: TextIO | None = None, stop: threading.Event | None = None) -> int:
    """Embedded broker + simulator with a data breach at a known time + the full listener.

    Setting ``stop`` (the CLI sets it on Ctrl-C) ends it cleanly — listener, ingest, clients, then the
    broker, so no client sees its broker vanish — and it returns :data:`DEMO_INTERRUPTED`.
    """
    out = out or sys.stdout
    stop = stop or threading.Event()
    sim = demo_simulation(seed)
    crisis = sim.crises[0]
    # The simulation is a fixed timeline (November 2026): accept it whatever the machine's clock says.
    config = Config(listener=ListenerSettings(max_future_minutes=0))
    started = time.monotonic()
    with kafka_ready(config) as config:
        if stop.is_set():
            return DEMO_INTERRUPTED
        out.write(
            f"crisiswatch demo: embedded Kafka broker on {config.kafka.bootstrap_servers[0]}\n"
            f"Streaming {sim.minutes // 60} h of simulated mentions for "
            f"{', '.join(b.name for b in sim.brands)} through topic '{config.kafka.mentions_topic}'.\n"
            f"A {crisis.theme} hits {crisis.brand} at {crisis.start:%Y-%m-%d %H:%M} UTC (event time); "
            f"the listener does not know that.\n\n"
        )
        out.flush()
        producer = Producer(config.kafka)
        report: list[IngestReport] = []
        feeder = threading.Thread(target=lambda: report.append(ingest(config, stop, [(sim, None)], producer)),
                                  name="demo-ingest", daemon=True)
        feeder.start()
        memory = MemorySink()
        listener = Listener(config, producer, [*build_sinks(config, producer, out), memory])

        def all_consumed() -> bool:
            return bool(report) and listener.stats.consumed >= report[0].published

        listener.run(stop, until=all_consumed)
        feeder.join()
        if stop.is_set():
            producer.close()
            return DEMO_INTERRUPTED
        alerts = read_all(config.kafka, config.kafka.alerts_topic, timeout_s=10)
        producer.close()
        if stop.is_set():  # Ctrl-C during the last read
            return DEMO_INTERRUPTED
    elapsed = time.monotonic() - started
    c = listener.pipeline.counters
    triggered = [e for e in memory.events if e.status.value == "triggered"]
    out.write(
        f"\n{report[0].published:,} mentions through Kafka in {elapsed:.1f} s "
        f"({c.processed:,} scored, {c.late} late, {c.duplicates} duplicates, "
        f"{sum(listener.stats.dead_letters.values())} dead letters); "
        f"{len(alerts)} alert events on topic '{config.kafka.alerts_topic}'.\n"
    )
    if not triggered:
        out.write("No crisis was detected: that is a bug, please report it.\n")
        return 1
    first = triggered[0]
    delay = (first.at - crisis.start.timestamp()) / 60
    out.write(f"Crisis detected for {first.brand} {delay:.0f} min (event time) after it began; "
              f"crisis id {first.crisis_id}.\n")
    return 0
