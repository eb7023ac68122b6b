"""The ``crisiswatch`` command line.  Command names and options are a stable contract."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence

from connectors.brands import BrandConfigError
from connectors.registry import SourceConfigError

from .config import Config, ConfigError, load
from .notifiers.base import NotifierConfigError


def _config(args: argparse.Namespace) -> Config:
    return load(getattr(args, "config", None))


def _require_shared_broker(config: Config, role: str) -> None:
    """A role that runs alone must share a broker with the other roles: the embedded one is private."""
    if config.kafka.embedded:
        raise ConfigError(f"kafka.bootstrap_servers is empty: '{role}' runs one role alone and needs the broker "
                          "the other roles use; set it, or use 'crisiswatch run' for the embedded broker")


def cmd_demo(args: argparse.Namespace) -> int:
    from .app import demo

    return demo(seed=args.seed)


def cmd_run(args: argparse.Namespace) -> int:
    """Ingest (every configured source) and listen, in one process, until SIGTERM/SIGINT."""
    from connectors.kafka import Producer

    from .app import (
        build_sinks,
        configured_matcher,
        configured_sources,
        delivery,
        dispatching,
        ingest,
        kafka_ready,
        source_context,
        stop_on_signals,
    )
    from .service import Listener

    config = _config(args)
    stop = threading.Event()
    ctx = source_context(config, stop)
    sources = configured_sources(config, ctx)
    configured_matcher(config)
    outbox_sinks, dispatcher = delivery(config)
    if not sources:
        logging.getLogger(__name__).warning("no [[sources]] configured: listening only")
    stop_on_signals(stop)
    with kafka_ready(config) as config, dispatching(dispatcher):
        producer = Producer(config.kafka)
        feeder = threading.Thread(target=ingest, args=(config, stop, sources),
                                  kwargs={"producer": producer, "checkpoints": ctx.checkpoints},
                                  name="ingest", daemon=True)
        feeder.start()
        try:
            Listener(config, producer, build_sinks(config, producer) + outbox_sinks).run(stop)
        finally:
            stop.set()
            feeder.join(timeout=10)
            producer.close()
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from .app import (
        configured_matcher,
        configured_sources,
        ingest,
        kafka_ready,
        source_context,
        stop_on_signals,
    )

    config = _config(args)
    stop = threading.Event()
    ctx = source_context(config, stop)
    sources = configured_sources(config, ctx)
    configured_matcher(config)
    if not sources:
        raise ConfigError("no [[sources]] configured: add at least one, e.g.\n"
                          "  [[sources]]\n  type = \"file\"\n  path = \"mentions.jsonl\"")
    _require_shared_broker(config, "ingest")
    stop_on_signals(stop)
    with kafka_ready(config) as config:
        report = ingest(config, stop, sources, checkpoints=ctx.checkpoints)
    print(f"published {report.published} mentions, {report.rejected} rejected to {config.kafka.dlq_topic}, "
          f"{report.unmatched} posts matched no brand", file=sys.stderr)
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    from connectors.kafka import Producer

    from .app import build_sinks, delivery, dispatching, kafka_ready, stop_on_signals
    from .service import Listener

    config = _config(args)
    _require_shared_broker(config, "listen")
    outbox_sinks, dispatcher = delivery(config)
    stop = threading.Event()
    stop_on_signals(stop)
    with kafka_ready(config) as config, dispatching(dispatcher):
        producer = Producer(config.kafka)
        try:
            Listener(config, producer, build_sinks(config, producer) + outbox_sinks).run(stop)
        finally:
            producer.close()
    return 0


def cmd_detect(args: argparse.Namespace) -> int:
    from .offline import detect_file

    config = _config(args)
    result = detect_file(args.input, args.output, config.pipeline, series_path=args.series,
                         rejects_path=args.rejects)
    rejected = sum(result.rejected.values())
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(result.rejected.items()))
    print(f"{result.mentions} mentions, {rejected} rejected{f' ({reasons})' if reasons else ''}, "
          f"{result.duplicates} duplicates, {result.late} late -> {len(result.events)} alert events "
          f"in {args.output}", file=sys.stderr)
    return 0


def cmd_sources(args: argparse.Namespace) -> int:
    """List the configured sources: do they build (config, secrets), and when did each last make progress?

    Progress is read from the checkpoint store, so this works from outside the
    running service; a source that keeps no checkpoint shows "-".
    """
    from datetime import datetime, timezone

    from connectors.checkpoint import CheckpointStore
    from connectors.registry import build_source
    from connectors.source import SourceContext

    config = _config(args)
    store = CheckpointStore(config.ingest.checkpoint_dir) if config.ingest.checkpoint_dir else None
    ctx = SourceContext(checkpoints=store)
    if not config.sources:
        print("no [[sources]] configured")
        return 0
    failed = 0
    print(f"{'#':>2}  {'type':<11} {'name':<24} {'status':<8} last checkpoint (UTC)")
    for i, table in enumerate(config.sources):
        kind = str(table.get("type"))
        try:
            name = build_source(table, i, ctx).name
            status, detail = "ok", ""
        except (SourceConfigError, ValueError) as exc:
            name, status, detail = str(table.get("name", kind)), "ERROR", str(exc)
            failed += 1
        when = store.updated_at(name) if store else None
        stamp = datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if when else "-"
        print(f"{i:>2}  {kind:<11} {name:<24} {status:<8} {stamp}")
        if detail:
            print(f"    {detail}")
    return 1 if failed else 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import orjson

    from connectors.simulator import demo_simulation

    with open(args.output, "wb") as out:
        for m in demo_simulation(args.seed).items():
            out.write(orjson.dumps(m.to_dict()) + b"\n")
    return 0


def cmd_broker(args: argparse.Namespace) -> int:
    from .broker import EmbeddedBroker

    stop = threading.Event()
    from .app import stop_on_signals

    stop_on_signals(stop)
    with EmbeddedBroker(port=args.port) as broker:
        print(f"embedded broker listening on {broker.bootstrap} (in memory; Ctrl-C to stop)", flush=True)
        while not stop.wait(1.0):
            if not broker.running:
                print("embedded broker exited", file=sys.stderr)
                return 1
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="crisiswatch", description="Streaming social-listening crisis detector.")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default) or ERROR")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("demo", help="embedded broker + simulated stream with a crisis + listener; prints alerts")
    s.add_argument("--seed", type=int, default=7)
    s.set_defaults(func=cmd_demo)

    for name, func, text in (
        ("run", cmd_run, "the long-running service: configured sources and the listener"),
        ("ingest", cmd_ingest, "only the connectors: publish configured sources to Kafka"),
        ("listen", cmd_listen, "only the listener (scale out by starting more in the same group)"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("--config", help="TOML configuration file")
        s.set_defaults(func=func)

    s = sub.add_parser("detect", help="offline detection on a JSON-lines file, no Kafka")
    s.add_argument("--input", required=True, help="mentions, one wire-format JSON object per line")
    s.add_argument("--output", required=True, help="alert events, JSON lines")
    s.add_argument("--series", help="also write the per-minute series (CSV) for the notebooks")
    s.add_argument("--rejects", help="write rejected lines with their reason (JSON lines)")
    s.add_argument("--config", help="TOML configuration file ([detector] and [listener] apply)")
    s.set_defaults(func=cmd_detect)

    s = sub.add_parser("sources", help="list the configured sources, whether they can start, their last progress")
    s.add_argument("--config", help="TOML configuration file")
    s.set_defaults(func=cmd_sources)

    s = sub.add_parser("simulate", help="write the demo's simulated mentions as JSON lines")
    s.add_argument("--output", required=True)
    s.add_argument("--seed", type=int, default=7)
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("broker", help="run the embedded (in-memory) Kafka-compatible broker in the foreground")
    s.add_argument("--port", type=int, default=9092)
    s.set_defaults(func=cmd_broker)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    level = getattr(logging, str(args.log_level).upper(), logging.WARNING)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(max(level, logging.WARNING))
    try:
        return int(args.func(args))
    except (ConfigError, SourceConfigError, BrandConfigError, NotifierConfigError) as exc:
        print(f"crisiswatch: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
