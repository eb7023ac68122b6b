"""The configuration file: TOML mapped onto typed, frozen dataclasses.

Every table maps onto a dataclass whose fields are the documented options
(see README, "Configuration"); anything else fails at start-up with a
:class:`ConfigError` that names the key and says how to fix it — a typo is
never ignored.  Environment variables override single keys with the form
``CRISISWATCH__<TABLE>__<KEY>`` (e.g. ``CRISISWATCH__KAFKA__BOOTSTRAP_SERVERS=kafka:9092``);
the value is typed by the option it fills — taken verbatim for a string
option or a pass-through table such as ``[kafka.extra]`` (so a password like
``123456`` stays a string), parsed for a number, boolean or list (a
comma-separated string fills a list).  Secrets never live in the file: they
come from the environment this way, or options name the variable that holds them.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.http_server import DEFAULT_MAX_CONNECTIONS, DEFAULT_REQUEST_TIMEOUT_S, HttpLimits
from connectors.kafka import KafkaSettings
from detectors import DetectorConfig

from .buckets import BucketSettings
from .outbox import DispatchSettings
from .pipeline import PipelineSettings

ENV_PREFIX = "CRISISWATCH__"


class ConfigError(ValueError):
    """Bad configuration: the message names the key and the fix."""


class Fatal(RuntimeError):
    """The service cannot go on: the process exits with status 1 and this one-line reason, so that its
    supervisor restarts it (a half-alive process looks healthy and pages nobody)."""


@dataclass(frozen=True)
class ListenerSettings:
    poll_timeout_ms: int = 500
    allowed_lateness_s: int = 120
    max_samples_per_minute: int = 25
    max_sample_chars: int = 500
    max_gap_minutes: int = 7 * 24 * 60
    dedup_minutes: int = 24 * 60
    dedup_capacity: int = 200_000
    """Ids remembered per brand and generation; a flood of distinct ids shortens the horizon instead."""
    max_brands: int = 10_000
    """Brands tracked at once; mentions of more go to the dead-letter topic (reason ``brand_limit``)."""
    max_future_minutes: int = 60
    """Mentions dated more than this ahead of the wall clock go to the dead-letter topic (reason
    ``future_timestamp``); 0 = accept any date (replaying a simulated future)."""
    snapshot_interval_s: float = 10.0
    """How often the brands' state is snapshotted to the state topic and the offsets committed; a crash
    replays at most this much input (alerts keep their ids).  0 = after every batch."""
    metrics_listen: str = ""
    """``host:port`` serving ``/metrics`` (Prometheus) and ``/healthz``; empty = off.  Bind to loopback or to
    the network your Prometheus scrapes from (the endpoints are read-only)."""
    console: bool = True
    """Print alert events on standard output."""
    history_path: str = ""
    """Append every alert event as a JSON line to this file (read by the notebooks); empty = off."""

    def pipeline(self, detector: DetectorConfig) -> PipelineSettings:
        return PipelineSettings(
            buckets=BucketSettings(
                allowed_lateness_s=self.allowed_lateness_s,
                max_samples_per_minute=self.max_samples_per_minute,
                max_sample_chars=self.max_sample_chars,
                max_gap_minutes=self.max_gap_minutes,
            ),
            detector=detector,
            dedup_minutes=self.dedup_minutes,
            dedup_capacity=self.dedup_capacity,
            max_brands=self.max_brands,
        )


@dataclass(frozen=True)
class IngestSettings:
    checkpoint_dir: str = ""
    """Where sources keep their resume points (cursors, recent ids); needed by the API connectors."""


@dataclass(frozen=True)
class OnCallSettings:
    """The ``[oncall]`` table: the notify role's promise, API and consumer group."""

    ack_target_minutes: float = 15.0
    """The response-time promise: someone acknowledges a crisis within this many minutes of its first
    notice.  Shown in every alert and measured per crisis (``crisiswatch crises``)."""
    http_listen: str = ""
    """``host:port`` of the on-call HTTP API (acknowledge, silences, crises); empty = off.  Bind it to
    loopback (``127.0.0.1:8787``) or put it behind a TLS proxy."""
    token_env: str = ""
    """The environment variable that holds the API's bearer token (required with ``http_listen``)."""
    metrics_listen: str = ""
    """``host:port`` serving the notify role's ``/metrics`` (Prometheus), ``/livez``, ``/readyz`` and
    ``/healthz``, without the API's token (read-only); empty = off.  Under ``crisiswatch run`` the
    listener's ``metrics_listen`` already covers the notify role."""
    group_id: str = "crisiswatch-notify"
    """The notify role's consumer group on the alerts topic."""


@dataclass(frozen=True)
class HttpSettings:
    """The ``[http]`` table: limits of the HTTP servers of this process (the on-call API, ``/metrics`` and
    ``/healthz``; a webhook source has the same keys in its ``[[sources]]`` table).  See
    :mod:`connectors.http_server`."""

    max_connections: int = DEFAULT_MAX_CONNECTIONS
    """Connections served at once per server; one more is answered 503 (``Retry-After: 1``) and closed."""
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S
    """Total time a client has for one request (waiting, request line, headers and body); then 408."""

    def limits(self, max_body_bytes: int) -> HttpLimits:
        return HttpLimits(self.max_connections, self.request_timeout_s, max_body_bytes)


@dataclass(frozen=True)
class Config:
    kafka: KafkaSettings = field(default_factory=KafkaSettings)
    listener: ListenerSettings = field(default_factory=ListenerSettings)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    sources: tuple[Mapping[str, Any], ...] = ()
    """``[[sources]]`` tables; each is checked by :func:`connectors.registry.build_source`."""
    brands: tuple[Mapping[str, Any], ...] = ()
    """``[[brands]]`` tables; checked by :func:`connectors.brands.rules_from_config`."""
    receivers: tuple[Mapping[str, Any], ...] = ()
    """``[[receivers]]`` tables (webhook, slack, pagerduty, email); checked by
    :func:`listener.notifiers.registry.build_notifiers`."""
    outbox: DispatchSettings = field(default_factory=DispatchSettings)
    routes: tuple[Mapping[str, Any], ...] = ()
    """``[[routes]]`` tables; checked by :func:`listener.routing.routes_from_config`."""
    actions: tuple[Mapping[str, Any], ...] = ()
    """``[[actions]]`` tables (e.g. pause scheduled posts); checked by
    :func:`listener.notifiers.action.build_actions`."""
    silences: tuple[Mapping[str, Any], ...] = ()
    """``[[silences]]`` tables; checked by :func:`listener.notify.silences_from_config`."""
    oncall: OnCallSettings = field(default_factory=OnCallSettings)
    http: HttpSettings = field(default_factory=HttpSettings)

    @property
    def pipeline(self) -> PipelineSettings:
        return self.listener.pipeline(self.detector)


def load(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Read, override from the environment, and validate; raise :class:`ConfigError`."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p} does not exist: pass an existing file to --config")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p} is not valid TOML: {exc}") from None
    _apply_env(data, env)
    return build(Config, data, "")


def _apply_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, raw in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX):].split("__") if k]
        if len(keys) < 2:
            raise ConfigError(f"environment variable {name}: use {ENV_PREFIX}<TABLE>__<KEY>, e.g. "
                              f"{ENV_PREFIX}KAFKA__GROUP_ID")
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment variable {name}: {k} is not a table")
        node[keys[-1]] = _env_value(raw)


class _EnvValue(str):
    """A value from the environment: a string until the option it fills asks for another type."""

    def parsed(self) -> Any:
        try:
            return tomllib.loads(f"v = {self}")["v"]
        except tomllib.TOMLDecodeError:
            return str(self)


def _env_value(raw: str) -> Any:
    return _EnvValue(raw)


def build(cls: type, table: Any, where: str) -> Any:
    """Build dataclass ``cls`` from a TOML table, checking every key and type."""
    if not isinstance(table, dict):
        raise ConfigError(f"[{where}] must be a table, got {type(table).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    values: dict[str, Any] = {}
    for key, value in table.items():
        dotted = f"{where}.{key}" if where else key
        if key not in fields:
            close = difflib.get_close_matches(key, fields, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(fields))}"
            raise ConfigError(f"unknown config key '{dotted}': {hint}")
        values[key] = _convert(hints[key], value, dotted, fields[key])
    try:
        result = cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{where or 'top level'}]: {exc}") from None
    _check(result, where)
    return result


def _convert(hint: Any, value: Any, key: str, f: dataclasses.Field[Any]) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(value, _EnvValue):
        if hint is str:
            return str(value)
        if not (origin is tuple and not value.lstrip().startswith("[")):
            value = value.parsed()
    if dataclasses.is_dataclass(hint):
        return build(hint, value, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be a whole number, got {value!r} (e.g. {key.split('.')[-1]} = "
                              f"{_default(f)})")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r} (e.g. {key.split('.')[-1]} = {_default(f)})")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    if origin is tuple:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        args = typing.get_args(hint)
        item_hint = args[0]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(item_hint, v, f"{key}[{i}]", f) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{key} must have {len(args)} items, got {len(value)}")
        return tuple(_convert(h, v, f"{key}[{i}]", f) for i, (h, v) in enumerate(zip(args, value)))
    if origin in (Mapping, dict) or hint is Mapping:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table, got {value!r}")
        return {k: str(v) if isinstance(v, _EnvValue) else v for k, v in value.items()}
    if origin in (typing.Union, types.UnionType) or hint is Any:
        return value
    raise ConfigError(f"{key}: unsupported option type {hint}")  # pragma: no cover - a bug in a dataclass


def _default(f: dataclasses.Field[Any]) -> Any:
    return f.default if f.default is not dataclasses.MISSING else "..."


_POSITIVE = {
    "kafka": ("partitions", "replication_factor", "session_timeout_ms", "heartbeat_interval_ms",
              "max_poll_records", "request_timeout_ms", "batch_size"),
    "listener": ("poll_timeout_ms", "max_samples_per_minute", "max_sample_chars", "max_gap_minutes",
                 "dedup_minutes", "dedup_capacity", "max_brands"),
    "detector": ("window_minutes", "trigger_minutes", "trigger_window_minutes", "quiet_minutes", "min_negatives",
                 "min_ratio", "p_value", "dispersion", "dispersion_prior_windows", "max_dispersion",
                 "share_dispersion", "resolve_ratio", "cusum_ratio", "response_minutes", "terms",
                 "background_mentions", "max_holdback_minutes", "theme_min_voices"),
    "oncall": ("ack_target_minutes",),
    "outbox": ("backoff_s", "max_backoff_s", "give_up_after_s", "rate_per_minute", "poll_s", "busy_timeout_s",
               "max_unavailable_s"),
    "detector.baseline": ("overall_halflife_minutes", "daily_halflife_minutes", "weekly_halflife_minutes",
                          "mature_minutes", "clip_sigmas", "prior_mentions", "share_prior_mentions",
                          "share_halflife_mentions"),
}


def _check(obj: Any, where: str) -> None:
    """Range checks that a type alone cannot express."""
    for name in _POSITIVE.get(where, ()):
        value = getattr(obj, name)
        if value <= 0:
            raise ConfigError(f"{where}.{name} must be greater than 0, got {value}")
    if where == "kafka":
        if obj.heartbeat_interval_ms >= obj.session_timeout_ms:
            raise ConfigError("kafka.heartbeat_interval_ms must be lower than kafka.session_timeout_ms "
                              "(about a third of it)")
        if obj.compression_type not in ("none", "gzip", "snappy", "lz4", "zstd"):
            raise ConfigError(f"kafka.compression_type must be one of none, gzip, snappy, lz4, zstd; "
                              f"got {obj.compression_type!r}")
        for name in ("mentions_topic", "alerts_topic", "dlq_topic", "group_id"):
            if not getattr(obj, name):
                raise ConfigError(f"kafka.{name} must not be empty")
    if where == "detector":
        if not 0 < obj.p_value < 1:
            raise ConfigError(f"detector.p_value must be between 0 and 1, got {obj.p_value}")
        if obj.resolve_ratio >= obj.min_ratio:
            raise ConfigError("detector.resolve_ratio must be lower than detector.min_ratio "
                              "(the gap between them is the hysteresis)")
        if obj.cusum_ratio <= 1:
            raise ConfigError(f"detector.cusum_ratio must be above 1 (the excess the sustained test looks for, "
                              f"e.g. 2.0), got {obj.cusum_ratio}")
        for name in ("cusum_threshold", "share_shift_log_odds", "min_log_odds", "warmup_mentions"):
            if getattr(obj, name) < 0:
                raise ConfigError(f"detector.{name} must be >= 0, got {getattr(obj, name)}")
        if not 0 <= obj.repost_weight <= 1:
            raise ConfigError(f"detector.repost_weight must be between 0 and 1 (the part of a voice a copy counts), "
                              f"got {obj.repost_weight}")
        if not 0 <= obj.theme_min_share <= 1:
            raise ConfigError(f"detector.theme_min_share must be between 0 and 1, got {obj.theme_min_share}")
        if any(w <= obj.window_minutes for w in obj.long_windows_minutes):
            raise ConfigError("detector.long_windows_minutes must all be longer than detector.window_minutes "
                              f"({obj.window_minutes}), e.g. [30, 90]; [] turns the long windows off")
        if not 0 < obj.suspect_p_value < 1:
            raise ConfigError(f"detector.suspect_p_value must be between 0 and 1, got {obj.suspect_p_value}")
        if not 0 <= obj.strong_p_value < obj.p_value:
            raise ConfigError(f"detector.strong_p_value must be at least 0 (0 = off) and below detector.p_value "
                              f"({obj.p_value}), got {obj.strong_p_value}")
        if obj.notice_delay_minutes < 0:
            raise ConfigError(f"detector.notice_delay_minutes must be >= 0 (0 = tell a volume spike at once), "
                              f"got {obj.notice_delay_minutes}")
        if obj.trigger_window_minutes < obj.trigger_minutes:
            raise ConfigError("detector.trigger_window_minutes must be at least detector.trigger_minutes "
                              f"({obj.trigger_minutes})")
        if list(obj.severity_ratios) != sorted(obj.severity_ratios):
            raise ConfigError("detector.severity_ratios must be increasing, e.g. [3.0, 6.0, 12.0]")
    if where == "outbox" and obj.max_unavailable_s <= obj.busy_timeout_s:
        raise ConfigError(f"outbox.max_unavailable_s ({obj.max_unavailable_s:g}) must be longer than "
                          f"outbox.busy_timeout_s ({obj.busy_timeout_s:g}): it bounds the whole outage, each failed "
                          "write waits the busy timeout; e.g. max_unavailable_s = 300")
    if where == "oncall" and obj.metrics_listen:
        _, sep, port = obj.metrics_listen.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) < 65536:
            raise ConfigError(f"oncall.metrics_listen must be host:port, e.g. 0.0.0.0:9109; got {obj.metrics_listen!r}")
        if port != "0" and obj.http_listen.rpartition(":")[2] == port:
            raise ConfigError("oncall.metrics_listen must differ from oncall.http_listen (another port): the "
                              "metrics are served without the API's token, on an address of their own")
    if where == "http":
        problem = obj.limits(0).problem()
        if problem:
            raise ConfigError(f"http.{problem}")
    if where == "listener" and obj.snapshot_interval_s < 0:
        raise ConfigError(f"listener.snapshot_interval_s must be >= 0, got {obj.snapshot_interval_s}")
    if where == "listener" and obj.max_future_minutes < 0:
        raise ConfigError(f"listener.max_future_minutes must be >= 0 (0 = off), got {obj.max_future_minutes}")
    if where == "listener" and obj.allowed_lateness_s < 0:
        raise ConfigError(f"listener.allowed_lateness_s must be >= 0, got {obj.allowed_lateness_s}")
