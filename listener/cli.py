"""The ``crisiswatch`` command line.  Command names and options are a stable contract."""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Sequence

from connectors.brands import BrandConfigError, rules_from_config
from connectors.registry import SourceConfigError

from .config import Config, ConfigError, Fatal, load
from .notifiers.base import NotifierConfigError


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``ts`` (ISO-8601 UTC), ``level``, ``logger``, ``message``, ``thread`` and, for an
    exception, ``error`` (its type and message: the traceback stays out of the line)."""

    def format(self, record: logging.LogRecord) -> str:
        import orjson

        doc = {"ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
               "level": record.levelname, "logger": record.name, "message": record.getMessage(),
               "thread": record.threadName}
        if record.exc_info and record.exc_info[1] is not None:
            doc["error"] = f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}"
        return orjson.dumps(doc).decode()

    converter = time.gmtime  # type: ignore[assignment]


class KafkaNoiseFilter(logging.Filter):
    """Demotes kafka-python's known-benign errors to DEBUG (a handler filter: it sees every ``kafka.*`` logger).

    Each is one exact message with one exact error, logged at ERROR by a client closing a connection, and
    nothing a person can act on; a message like it with another error stays an ERROR:

    * ``kafka.cluster: Metadata refresh: failed Cancelled`` — a metadata request in flight when a client
      closes (every start: the admin client that creates the topics; every close); the client retries.
    * ``kafka.net.selector: Error closing coroutine for cancelled task`` with ``ValueError: generator already
      executing`` — kafka-python 3.0 closing a connection's task from the closing thread while its I/O thread
      runs it (a race inside the client at ``close()``: seen on a Ctrl-C of the demo); the task is cancelled
      all the same.
    * ``kafka.net.transport: ... Error receiving network data closing socket`` (or ``sending request data``)
      with ``AttributeError: 'NoneType' object has no attribute ...`` — the same race: the I/O thread used
      the socket the closing thread had just closed (``[none] (closed)`` in the message).
    """

    CLOSED_SOCKET = "'NoneType' object has no attribute"
    BENIGN = (
        ("kafka.cluster", "Metadata refresh: failed %s", "Cancelled", ""),
        ("kafka.net.selector", "Error closing coroutine for cancelled task", "ValueError",
         "generator already executing"),
        ("kafka.net.transport", "%s: Error receiving network data closing socket", "AttributeError", CLOSED_SOCKET),
        ("kafka.net.transport", "%s: Error sending request data: %s", "AttributeError", CLOSED_SOCKET),
    )

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG or not record.name.startswith("kafka"):
            return True
        if record.exc_info and record.exc_info[1] is not None:
            error: object = record.exc_info[1]
        else:
            error = record.args[0] if isinstance(record.args, tuple) and len(record.args) == 1 else None
        for name, msg, kind, text in self.BENIGN:
            if (record.name == name and record.msg == msg and type(error).__name__ == kind
                    and (kind != "Cancelled" or type(error).__module__.startswith("kafka"))
                    and text in str(error)):
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
                return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def setup_logging(level_name: str, log_format: str) -> None:
    """The CLI's logging: one stderr handler (text or JSON lines), kafka-python at WARNING at least, its
    known-benign errors demoted (:class:`KafkaNoiseFilter`)."""
    level = getattr(logging, str(level_name).upper(), logging.WARNING)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json"
                         else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(KafkaNoiseFilter())
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("kafka").setLevel(max(level, logging.WARNING))


class PathOption:
    """The argparse ``type`` of every option that names a path: a file or a folder (``kind``) the command
    reads, or one it writes (``output``).  :func:`check_paths` checks them all before the command runs —
    one line naming the path for a missing input, missing folders of an output created — so that no command
    fails on a path with a traceback, and a new command gets the same by declaring its options with these."""

    def __init__(self, kind: str, output: bool = False) -> None:
        self.kind = kind
        self.output = output
        self.__name__ = f"{'output' if output else 'input'} {kind}"  # argparse's name for the type

    def __call__(self, text: str) -> str:
        return text


INPUT_FILE = PathOption("file")
INPUT_FOLDER = PathOption("folder")
OUTPUT_FILE = PathOption("file", output=True)
OUTPUT_FOLDER = PathOption("folder", output=True)


class PathError(Exception):
    """A path given on the command line that cannot be used: one line, exit 2."""


def check_paths(p: argparse.ArgumentParser, args: argparse.Namespace,
                which: Callable[[str], bool] = lambda dest: True) -> None:
    """Check the path options (:class:`PathOption`) of the command whose ``dest`` is ``which``: inputs exist and
    are what they should be, outputs' folders exist (created when missing).  Raises :class:`PathError` with the
    one-line reason."""
    from pathlib import Path

    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices[args.command]._actions:
        value = getattr(args, action.dest, None)
        if not isinstance(action.type, PathOption) or value is None or not which(action.dest):
            continue
        path, kind = Path(value), action.type.kind
        if not action.type.output:
            if not path.exists():
                raise PathError(f"no such {kind}: {value}")
            if kind == "file" and path.is_dir():
                raise PathError(f"not a file: {value} (a folder)")
            if kind == "folder" and not path.is_dir():
                raise PathError(f"not a folder: {value}")
            continue
        if kind == "file" and path.is_dir():
            raise PathError(f"not a file: {value} (a folder)")
        if kind == "folder" and path.exists() and not path.is_dir():
            raise PathError(f"not a folder: {value}")
        folder = path if kind == "folder" else path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise PathError(f"cannot create the folder {folder}: a file has that name"
                            if folder.exists() else f"cannot create the folder {folder}: a file is in the way"
                            ) from None
        except OSError as exc:
            raise PathError(f"cannot create the folder {folder}: {exc.strerror or exc}") from None


def _config(args: argparse.Namespace) -> Config:
    """The configuration, loaded once by :func:`main` before the other paths are checked."""
    loaded = getattr(args, "loaded_config", None)
    return loaded if loaded is not None else load(getattr(args, "config", None))


def cmd_demo(args: argparse.Namespace) -> int:
    import signal

    from .app import DEMO_INTERRUPTED, demo, stop_on_signals

    stop = threading.Event()
    received = stop_on_signals(stop)  # Ctrl-C stops the demo cleanly: no traceback, no client errors
    code = demo(seed=args.seed, stop=stop)
    if code == DEMO_INTERRUPTED:
        print("crisiswatch demo: interrupted", file=sys.stderr)
        return 128 + (received[0] if received else int(signal.SIGINT))
    return code


def cmd_run(args: argparse.Namespace) -> int:
    """Ingest (every configured source) and listen, in one process, until SIGTERM/SIGINT."""
    from connectors.kafka import Producer

    from .app import build_sinks, ingest, kafka_ready, listen, notifying, start_up, stop_on_signals
    from .service import Listener

    config = _config(args)
    stop = threading.Event()
    parts = start_up(config, "run", stop)
    assert parts.context is not None
    if not parts.sources:
        logging.getLogger(__name__).warning("no [[sources]] configured: listening only")
    stop_on_signals(stop)
    with kafka_ready(config) as config, notifying(config, parts.stack, stop) as notify:
        producer = Producer(config.kafka)
        feeder = threading.Thread(target=ingest, args=(config, stop, parts.sources),
                                  kwargs={"producer": producer, "matcher": parts.matcher,
                                          "checkpoints": parts.context.checkpoints},
                                  name="ingest", daemon=True)
        feeder.start()
        try:
            listen(config, Listener(config, producer, build_sinks(config, producer), reset_state=args.reset_state),
                   stop, notify)
        finally:
            stop.set()
            feeder.join(timeout=10)
            producer.close()
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from .app import SourceReport, ingest, kafka_ready, start_up, stop_on_signals

    config = _config(args)
    stop = threading.Event()
    parts = start_up(config, "ingest", stop)
    assert parts.context is not None
    stop_on_signals(stop)

    def tell(name: str, report: SourceReport, dlq_topic: str) -> None:
        """As each source ends, what it rejected and how to fix it (whatever the log level)."""
        if report.rejections.total:
            print(f"crisiswatch ingest: {report.summary(name, dlq_topic)}", file=sys.stderr, flush=True)

    with kafka_ready(config) as config:
        report = ingest(config, stop, parts.sources, matcher=parts.matcher, checkpoints=parts.context.checkpoints,
                        on_source_done=tell)
    print(f"published {report.published} mentions, {report.rejected} rejected to {config.kafka.dlq_topic}, "
          f"{report.unmatched} posts matched no brand", file=sys.stderr)
    if report.rejected_everything:
        print("crisiswatch ingest: nothing was published: everything read was rejected (the reasons and the fix "
              "are above)", file=sys.stderr)
        return 1
    return 0


def cmd_listen(args: argparse.Namespace) -> int:
    from connectors.kafka import Producer

    from .app import build_sinks, kafka_ready, listen, start_up, stop_on_signals
    from .service import Listener

    config = _config(args)
    start_up(config, "listen")
    stop = threading.Event()
    stop_on_signals(stop)
    with kafka_ready(config) as config:
        producer = Producer(config.kafka)
        try:
            listen(config, Listener(config, producer, build_sinks(config, producer), reset_state=args.reset_state),
                   stop)
        finally:
            producer.close()
    return 0


def cmd_notify(args: argparse.Namespace) -> int:
    """The notify role alone: alerts topic -> routes, escalation, silences, actions -> receivers."""
    from .app import kafka_ready, run_notify, start_up, stop_on_signals

    config = _config(args)
    stack = start_up(config, "notify").stack
    assert stack is not None
    stop = threading.Event()
    stop_on_signals(stop)
    with kafka_ready(config) as config:
        run_notify(config, stack, stop)
    return 0


def _minutes(text: str) -> float:
    """``90``, ``90m``, ``2h``, ``1d`` as minutes (the CLI's durations; the command checks the range)."""
    units = {"m": 1, "h": 60, "d": 1440}
    text = text.strip().lower()
    number, unit = (text[:-1], units[text[-1]]) if text and text[-1] in units else (text, 1)
    try:
        return float(number) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: use e.g. 90m, 2h or 1d") from None


def cmd_ack(args: argparse.Namespace) -> int:
    """Acknowledge a crisis: stops its escalation and tells everyone notified who took it."""
    from .oncall import AlreadyResolved, UnknownCrisis
    from .notify import open_store

    store = open_store(_config(args))
    try:
        c = store.acknowledge(args.crisis_id, args.by, args.note or "")
    except (UnknownCrisis, AlreadyResolved, ValueError) as exc:
        print(f"crisiswatch ack: {str(exc).strip(chr(34) + chr(39))}", file=sys.stderr)
        return 1
    if c["acked_by"] != args.by.strip():
        print(f"{c['crisis_id']} was already acknowledged by {c['acked_by']} after {c['ack_min']} min")
        return 0
    target = "within" if c["ack_within_target"] else "outside"
    print(f"{c['crisis_id']} acknowledged by {c['acked_by']} after {c['ack_min']} min "
          f"({target} the {store.ack_target_minutes:g}-minute target)")
    return 0


def cmd_silence(args: argparse.Namespace) -> int:
    import time
    from datetime import datetime, timezone

    from .notify import open_store
    from .oncall import silence_minutes
    from .routing import Router, routes_from_config

    config = _config(args)
    store = open_store(config)

    def stamp(t: float) -> str:
        """A silence stored by an older version may end past year 9999: listed, not a crash hiding the others."""
        try:
            return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        except (OverflowError, ValueError, OSError):
            return "far future"

    if args.action == "add":
        if not args.brand and not args.route:
            raise ConfigError("say what to mute: --brand NAME and/or --route NAME")
        receivers = [str(t.get("name")) for t in config.receivers]
        store.know(Router(routes_from_config(config.routes, receivers), receivers),
                   (rule.name for rule in rules_from_config(config.brands)))
        now = time.time()
        try:
            ends = now + silence_minutes(args.duration, "--for") * 60
            sid = store.add_silence(args.brand or "", args.route or "", now, ends, args.by, args.comment, "cli")
        except ValueError as exc:
            print(f"crisiswatch silence: {exc}", file=sys.stderr)
            return 1
        print(f"silence {sid}: {args.brand or 'every brand'} on {args.route or 'every route'} until {stamp(ends)}")
        return 0
    if args.action == "expire":
        if args.id is None:
            raise ConfigError("say which silence to expire: crisiswatch silence expire ID (see 'silence list')")
        if not store.expire_silence(args.id):
            print(f"crisiswatch silence: no active silence {args.id}", file=sys.stderr)
            return 1
        print(f"silence {args.id} expired")
        return 0
    rows = store.silences()
    if not rows:
        print("no active silences")
    for r in rows:
        print(f"{r['id']:>4}  {r['brand'] or '*':<16} {r['route'] or '*':<16} {stamp(r['starts'])} -> "
              f"{stamp(r['ends'])}  by {r['created_by']} ({r['origin']}): {r['comment']}")
    return 0


def cmd_crises(args: argparse.Namespace) -> int:
    """Crises with their response times: detection delay, time to acknowledge (against the target), duration."""
    import orjson

    from .notify import open_store

    store = open_store(_config(args))
    crises = store.crises(open_only=args.open)
    summary = store.summary(crises)
    if args.json:
        for c in crises:
            sys.stdout.write(orjson.dumps(c).decode() + "\n")
        sys.stdout.write(orjson.dumps({"summary": summary}).decode() + "\n")
        return 0
    print(f"{'crisis':<28} {'sev':<8} {'status':<8} {'detect':>6} {'ack':>6}  {'by':<14} {'lasted':>7}")
    for c in crises:
        ack = f"{c['ack_min']:g}m" if c["ack_min"] is not None else "-"
        late = "!" if c["ack_within_target"] is False else " "
        lasted = f"{c['duration_min']:g}m" if c["duration_min"] is not None else "-"
        print(f"{c['crisis_id']:<28} {c['severity']:<8} {c['status']:<8} {c['detected_after_min']:>5g}m "
              f"{ack:>6}{late} {c['acked_by'] or '-':<14} {lasted:>7}")
    s = summary
    print(f"\n{s['crises']} crises, {s['acknowledged']} acknowledged, {s['ack_within_target']} within the "
          f"{s['ack_target_minutes']:g}-minute target (! = late); median time to acknowledge: "
          f"{s['median_ack_min'] if s['median_ack_min'] is not None else '-'} min; median duration: "
          f"{s['median_duration_min'] if s['median_duration_min'] is not None else '-'} min")
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

    from .app import start_up

    config = _config(args)
    start_up(config, "sources")  # what run refuses ([[brands]], sources that need brands) is refused here too
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
            source = build_source(table, i, ctx)
            name, status, detail = source.name, "ok", ""
            sample = getattr(source, "sample", None)  # a file: read its first rows as ingest would
            if sample is not None:
                read, rejections = sample()
                detail = rejections.summary(name, read, "a dry run on its first rows: nothing sent")
                detail = detail.replace("\n", "\n    ")
                if read and rejections.total == read:
                    status = "ERROR"
                    failed += 1
                elif rejections.total:
                    status = "warn"
        except (SourceConfigError, ValueError) as exc:
            name, status, detail = str(table.get("name", kind)), "ERROR", str(exc)
            failed += 1
        when = store.updated_at(name) if store else None
        stamp = datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if when else "-"
        print(f"{i:>2}  {kind:<11} {name:<24} {status:<8} {stamp}")
        if detail:
            print(f"    {detail}")
    return 1 if failed else 0


def cmd_sentiment(args: argparse.Namespace) -> int:
    import io

    from .sentiment_cli import main as score_lines

    # a stray byte must not stop a stream: it becomes U+FFFD and the line is still scored
    stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    return score_lines(stdin, sys.stdout, stock=args.stock)


def cmd_nab(args: argparse.Namespace) -> int:
    """The volume detector on NAB realTweets files: OUT/<name>.csv with timestamp,alert for each input."""
    from pathlib import Path

    from .nab import run_nab

    try:
        counts = run_nab(Path(args.data), Path(args.out))
    except ValueError as exc:
        print(f"crisiswatch nab: {exc}", file=sys.stderr)
        return 2
    for name, alerts in counts.items():
        print(f"{name}: {alerts} alert rows")
    print(f"wrote {len(counts)} files to {args.out}; score them with "
          f"python ../shared/tools/nab_score.py --data DIR --detections {args.out} --profile all", file=sys.stderr)
    return 0


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
    from crisiswatch import __version__

    p = argparse.ArgumentParser(prog="crisiswatch", description="Streaming social-listening crisis detector.")
    p.add_argument("--version", action="version", version=f"crisiswatch {__version__}")
    p.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING (default) or ERROR")
    p.add_argument("--log-format", choices=("text", "json"), default="text",
                   help="json: one JSON object a line (ts, level, logger, message) for log collectors")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("demo", help="embedded broker + simulated stream with a crisis + listener; prints alerts")
    s.add_argument("--seed", type=int, default=7)
    s.set_defaults(func=cmd_demo)

    for name, func, text in (
        ("run", cmd_run, "the long-running service: configured sources and the listener"),
        ("ingest", cmd_ingest, "only the connectors: publish configured sources to Kafka"),
        ("listen", cmd_listen, "only the listener (scale out by starting more in the same group)"),
        ("notify", cmd_notify, "only alert delivery: routes, escalation, silences, actions (run exactly one)"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("--config", type=INPUT_FILE, help="TOML configuration file")
        if name in ("run", "listen"):
            s.add_argument("--reset-state", action="store_true",
                           help="ignore the state snapshots: rebuild every brand from the beginning of the topic")
        s.set_defaults(func=func)

    s = sub.add_parser("ack", help="acknowledge a crisis: stops its escalation, records the response time")
    s.add_argument("crisis_id", metavar="CRISIS_ID", help="e.g. acme:20261123T1402Z (in every alert)")
    s.add_argument("--by", required=True, help="who takes it")
    s.add_argument("--note", help="what happens next, for the others")
    s.add_argument("--config", type=INPUT_FILE, help="TOML configuration file ([outbox] path)")
    s.set_defaults(func=cmd_ack)

    s = sub.add_parser("silence", help="mute notifications for a brand and/or a route for a while")
    s.add_argument("action", choices=("add", "list", "expire"))
    s.add_argument("id", nargs="?", type=int, help="the silence to expire")
    s.add_argument("--brand")
    s.add_argument("--route")
    s.add_argument("--for", dest="duration", type=_minutes, default=60.0, help="90m, 2h, 1d (default 60 min)")
    s.add_argument("--by", default="", help="who mutes")
    s.add_argument("--comment", default="", help="why")
    s.add_argument("--config", type=INPUT_FILE, help="TOML configuration file ([outbox] path)")
    s.set_defaults(func=cmd_silence)

    s = sub.add_parser("crises", help="crises and their response times (time to acknowledge, duration)")
    s.add_argument("--open", action="store_true", help="only the open ones")
    s.add_argument("--json", action="store_true", help="JSON lines, then a summary line")
    s.add_argument("--config", type=INPUT_FILE, help="TOML configuration file ([outbox] path)")
    s.set_defaults(func=cmd_crises)

    s = sub.add_parser("detect", help="offline detection on a JSON-lines file, no Kafka")
    s.add_argument("--input", required=True, type=INPUT_FILE, help="mentions, one wire-format JSON object per line")
    s.add_argument("--output", required=True, type=OUTPUT_FILE,
                   help="alert events, JSON lines (missing folders are created)")
    s.add_argument("--series", type=OUTPUT_FILE, help="also write the per-minute series (CSV) for the notebooks")
    s.add_argument("--rejects", type=OUTPUT_FILE, help="write rejected lines with their reason (JSON lines)")
    s.add_argument("--config", type=INPUT_FILE, help="TOML configuration file ([detector] and [listener] apply)")
    s.set_defaults(func=cmd_detect)

    s = sub.add_parser("sources", help="list the configured sources, whether they can start, their last progress")
    s.add_argument("--config", type=INPUT_FILE, help="TOML configuration file")
    s.set_defaults(func=cmd_sources)

    s = sub.add_parser("sentiment", help="score texts from stdin (one a line): one JSON object a line on stdout")
    s.add_argument("--stock", action="store_true", help="stock VADER instead of crisiswatch's complaint-aware scorer")
    s.set_defaults(func=cmd_sentiment)

    s = sub.add_parser("nab", help="run the volume detector on NAB realTweets CSVs (DIR/realTweets/*.csv)")
    s.add_argument("--data", required=True, type=INPUT_FOLDER, help="the NAB data folder that holds realTweets/")
    s.add_argument("--out", required=True, type=OUTPUT_FOLDER,
                   help="where OUT/<same name>.csv (timestamp,alert) are written")
    s.set_defaults(func=cmd_nab)

    s = sub.add_parser("simulate", help="write the demo's simulated mentions as JSON lines")
    s.add_argument("--output", required=True, type=OUTPUT_FILE, help="JSON lines (missing folders are created)")
    s.add_argument("--seed", type=int, default=7)
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("broker", help="run the embedded (in-memory) Kafka-compatible broker in the foreground")
    s.add_argument("--port", type=int, default=9092)
    s.set_defaults(func=cmd_broker)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    try:
        if "config" in vars(args):  # the configuration first: its errors name the key to fix
            check_paths(p, args, lambda dest: dest == "config")
            args.loaded_config = load(args.config)
        check_paths(p, args, lambda dest: dest != "config")
        return int(args.func(args))
    except PathError as exc:
        print(f"crisiswatch {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a command without a clean stop of its own (detect, nab...): one line
        print(f"crisiswatch {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ConfigError, SourceConfigError, BrandConfigError, NotifierConfigError) as exc:
        print(f"crisiswatch: configuration error: {exc}", file=sys.stderr)
        return 2
    except Fatal as exc:
        print(f"crisiswatch: {exc}", file=sys.stderr)
        return 1
    except sqlite3.OperationalError as exc:  # a full disk, a lock held past the busy timeout
        from .oncall import database_error

        print(f"crisiswatch {args.command}: {database_error(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
