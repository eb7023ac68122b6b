"""On call: who hears about a crisis, when, and until when.

The detector says *what* happens to a crisis (triggered, escalated in
severity, updated, resolved: one alert event per transition, on the
``alerts`` topic).  This module decides *who is told and when*, the way
on-call tooling does it (PagerDuty's escalation policies and
acknowledgements, Alertmanager's routes, grouping, repeats and silences):

* **Routes** (:mod:`listener.routing`) pick the receivers.  Each (crisis,
  route) pair is a *page* with its own escalation level.
* **Escalation.**  A page starts at level 1, or higher for a severe crisis
  (``start_level``); while nobody has acknowledged the crisis, each next
  level is notified ``after_minutes`` after the one before.
* **Acknowledgement** (``crisiswatch ack CRISIS_ID --by NAME`` or ``POST
  /crises/<id>/ack``) stops the escalation, tells everyone notified so far
  who took it, and records the time from the first notice to the
  acknowledgement: the response-time promise (``[oncall]
  ack_target_minutes``) is measured against it (``crisiswatch crises``).
  A crisis resolved before anyone acknowledged it was not answered: it can
  no longer be acknowledged.
* **Repeat.**  While a crisis lasts, everyone notified is reminded every
  ``repeat_interval_minutes`` after the last notice of that page.
* **Grouping.**  ``updated`` notices closer together than
  ``group_interval_minutes`` are merged: only the newest goes out when the
  interval ends.  Everything else goes out at once.
* **Resolve.**  The resolution goes to everyone notified of the crisis.
* **Silences** mute a brand and/or a route for a period, with who and why
  (CLI, HTTP, or ``[[silences]]`` in the config); one added at run time lasts
  at most 30 days (:data:`MAX_SILENCE_DAYS`) and names a brand or route that
  exists.  A muted notice is kept in the outbox as ``silenced`` (the audit
  trail) and not sent; escalation waits.  If the crisis is still on when the
  silence ends, its current state goes out then and the escalation clock
  restarts.
* **Actions** (:mod:`listener.notifiers.action`), e.g. pausing scheduled
  posts, are written for a triggered crisis and undone on resolution.
* **Notices** (status ``notice``, severity info: a volume spike that is not a
  crisis) go once to the first level of each route that takes them, silences
  permitting.  They are not crises: nothing is paged, escalated, repeated or
  acknowledged, and ``crisiswatch crises`` does not list them.

Everything here is written to the outbox's SQLite database in one
transaction per batch of events or per tick, together with the notices it
produces, and before the Kafka offsets of the events are committed: a crash
repeats nothing (an event whose transition number was already handled is
skipped) and loses nothing.  Time is the wall clock (people answer in
wall-clock time); the clock is injected, so tests run hours in microseconds.
"""

from __future__ import annotations

import difflib
import logging
import sqlite3
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from detectors import AlertEvent, Status
from detectors.events import iso

from .outbox import ACTION_PREFIX, Delivery, Notice, Outbox
from .routing import Route, Router

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS crises (
    crisis_id     TEXT PRIMARY KEY,
    brand         TEXT NOT NULL,
    severity      TEXT NOT NULL,
    status        TEXT NOT NULL,              -- open | resolved
    started_at    INTEGER NOT NULL,           -- event time (epoch s)
    detected_at   INTEGER NOT NULL,           -- event time of the trigger
    resolved_at   INTEGER,                    -- event time of the resolution
    first_seen    REAL NOT NULL,              -- wall clock: when on-call first knew
    resolved_seen REAL,
    acked_at      REAL,
    acked_by      TEXT,
    ack_note      TEXT,
    ack_announced INTEGER NOT NULL DEFAULT 0,
    last_seq      INTEGER NOT NULL,           -- transition number last handled (replays are skipped)
    notices       INTEGER NOT NULL DEFAULT 0, -- notices written (orders them per receiver)
    event         BLOB NOT NULL               -- the latest alert event
);
CREATE TABLE IF NOT EXISTS pages (            -- a crisis on one route
    crisis_id   TEXT NOT NULL,
    route       TEXT NOT NULL,
    level       INTEGER NOT NULL,
    level_since REAL NOT NULL,
    last_sent   REAL,
    repeats     INTEGER NOT NULL DEFAULT 0,
    held        BLOB,                         -- an updated event held back by grouping
    notified    TEXT NOT NULL DEFAULT '[]',
    muted       INTEGER NOT NULL DEFAULT 0,
    closed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (crisis_id, route)
);
CREATE TABLE IF NOT EXISTS silences (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    brand      TEXT NOT NULL DEFAULT '',      -- '' = every brand
    route      TEXT NOT NULL DEFAULT '',      -- '' = every route
    starts     REAL NOT NULL,
    ends       REAL NOT NULL,
    created_by TEXT NOT NULL,
    comment    TEXT NOT NULL,
    created    REAL NOT NULL,
    origin     TEXT NOT NULL                  -- config | cli | http
);
"""


class UnknownCrisis(LookupError):
    """No crisis with that id: the message lists the open ones."""


class AlreadyResolved(Exception):
    """The crisis ended before anyone acknowledged it: taking it now would be counted as a response."""


MAX_SILENCE_DAYS = 30
MAX_SILENCE_MINUTES = MAX_SILENCE_DAYS * 24 * 60
"""The longest silence a person can add (CLI ``--for``, API ``minutes``).  Longer is a typo
(``--for 999999999h``) or a mute-forever that hides the crises of a brand nobody remembers muting; a longer
planned quiet is renewed on purpose.  ``[[silences]]`` in the config give their own start and end."""


def silence_minutes(value: Any, field: str) -> float:
    """``value`` as the length of a silence in minutes; ValueError naming ``field`` and the limit otherwise
    (zero, negative, NaN, infinite or longer than :data:`MAX_SILENCE_MINUTES`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_SILENCE_MINUTES:
        raise ValueError(f"{field} must be more than 0 and at most {MAX_SILENCE_MINUTES} minutes "
                         f"({MAX_SILENCE_DAYS} days), got {value!r}")
    return float(value)


def database_error(exc: sqlite3.Error) -> str:
    """What went wrong with the on-call database, in a line.  A write that fails for a full disk can end
    SQLite's transaction by itself; the rollback after it then fails ("cannot rollback - no transaction is
    active") and hides the cause: the first error of the chain."""
    while isinstance(exc.__context__, sqlite3.Error):
        exc = exc.__context__
    return f"the on-call database failed, nothing was saved: {exc}"


@dataclass
class Page:
    crisis_id: str
    route: str
    level: int
    level_since: float
    last_sent: float | None = None
    repeats: int = 0
    held: dict[str, Any] | None = None
    notified: tuple[str, ...] = ()
    muted: bool = False
    closed: bool = False

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> Page:
        return cls(r[0], r[1], r[2], r[3], r[4], r[5], orjson.loads(r[6]) if r[6] else None,
                   tuple(orjson.loads(r[7])), bool(r[8]), bool(r[9]))

    def save(self, db: sqlite3.Connection) -> None:
        db.execute("INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                   (self.crisis_id, self.route, self.level, self.level_since, self.last_sent, self.repeats,
                    orjson.dumps(self.held) if self.held else None, orjson.dumps(list(self.notified)),
                    int(self.muted), int(self.closed)))


class OnCallStore:
    """The on-call tables: what the CLI and the HTTP API read and write (no routing needed)."""

    def __init__(self, outbox: Outbox, ack_target_minutes: float = 15.0) -> None:
        self.outbox = outbox
        self.clock = outbox.clock
        self.ack_target_minutes = ack_target_minutes
        self.brands: set[str] = set()
        """Brands the configuration names: with those of the crises on record, what a silence may mute."""
        self.routes: set[str] = set()
        """Routes the configuration names: what a silence may mute."""
        with outbox.transaction() as db:
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    # --- acknowledgement ----------------------------------------------------------------------------------

    def acknowledge(self, crisis_id: str, by: str, note: str = "") -> dict[str, Any]:
        """Record who took the crisis; the first acknowledgement counts, later ones change nothing.  A crisis
        that ended before anyone took it was not answered: :class:`AlreadyResolved`."""
        if not by.strip():
            raise ValueError("say who acknowledges: --by NAME")
        with self.outbox.transaction() as db:
            found = db.execute("SELECT status, resolved_at, acked_at FROM crises WHERE crisis_id = ?",
                               (crisis_id,)).fetchone()
            if not found:
                raise UnknownCrisis(self._unknown(db, crisis_id))
            if found[0] != "open" and found[2] is None:
                raise AlreadyResolved(f"crisis {crisis_id} was resolved at {iso(found[1])} before anyone "
                                      "acknowledged it: there is nothing left to acknowledge")
            db.execute("UPDATE crises SET acked_at = ?, acked_by = ?, ack_note = ? "
                       "WHERE crisis_id = ? AND acked_at IS NULL", (self.clock(), by.strip(), note, crisis_id))
        return self.crisis(crisis_id)

    def _unknown(self, db: sqlite3.Connection, crisis_id: str) -> str:
        open_ids = [r[0] for r in db.execute("SELECT crisis_id FROM crises WHERE status = 'open' ORDER BY 1")]
        return (f"no crisis {crisis_id!r}; open crises: {', '.join(open_ids)}" if open_ids
                else f"no crisis {crisis_id!r}, and no crisis is open")

    # --- silences --------------------------------------------------------------------------------------------

    def know(self, router: Router, brands: Iterable[str] = ()) -> None:
        """Learn the names a silence may mute: the routes of ``router``, the brands they name, and ``brands``
        (the ``[[brands]]`` of the configuration)."""
        self.routes.update(router.by_name)
        self.brands.update(b for r in router.routes for b in r.brands)
        self.brands.update(brands)

    def add_silence(self, brand: str, route: str, starts: float, ends: float, created_by: str, comment: str,
                    origin: str) -> int:
        if not created_by.strip() or not comment.strip():
            raise ValueError("a silence needs who (--by) and why (--comment)")
        if not brand and not route:
            raise ValueError("a silence needs a brand or a route to mute (muting everything hides every crisis)")
        if ends <= starts:
            raise ValueError("a silence must end after it starts")
        with self.outbox.transaction() as db:
            if origin != "config":
                self._check_target(db, brand, route)
            cur = db.execute("INSERT INTO silences (brand, route, starts, ends, created_by, comment, created, origin) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (brand, route, starts, ends, created_by.strip(), comment.strip(), self.clock(), origin))
            return int(cur.lastrowid or 0)

    def _check_target(self, db: sqlite3.Connection, brand: str, route: str) -> None:
        """A silence of a brand or route that does not exist mutes nothing while everyone believes it muted
        (``--brand acmee``).  Known: the names of :meth:`know`, and the brands with a crisis on record (a brand
        of a replayed file or of the simulator has no ``[[brands]]`` table).  The ``[[silences]]`` of the config
        are loaded at start-up before the routes are known, so only silences added at run time are checked."""
        if brand:
            on_record = {r[0] for r in db.execute("SELECT DISTINCT brand FROM crises")}
            _check_name("brand", brand, self.brands | on_record, " (configured or with a crisis on record)")
        if route:
            _check_name("route", route, self.routes)

    def expire_silence(self, silence_id: int) -> bool:
        now = self.clock()
        with self.outbox.transaction() as db:
            cur = db.execute("UPDATE silences SET ends = ? WHERE id = ? AND ends > ?", (now, silence_id, now))
            return cur.rowcount > 0

    def replace_config_silences(self, silences: Sequence[Mapping[str, Any]]) -> None:
        """The ``[[silences]]`` of the config file replace those read from it before."""
        with self.outbox.transaction() as db:
            db.execute("DELETE FROM silences WHERE origin = 'config'")
        for s in silences:
            self.add_silence(s.get("brand", ""), s.get("route", ""), s["starts"], s["ends"], s["created_by"],
                             s["comment"], "config")

    def silences(self, active_only: bool = True) -> list[dict[str, Any]]:
        sql = "SELECT * FROM silences" + (" WHERE ends > ?" if active_only else "") + " ORDER BY starts, id"
        return self.outbox.read(sql, (self.clock(),) if active_only else ())

    def silenced(self, db: sqlite3.Connection, brand: str, route: str, now: float) -> bool:
        return db.execute("SELECT 1 FROM silences WHERE starts <= ? AND ends > ? AND brand IN ('', ?) "
                          "AND route IN ('', ?) LIMIT 1", (now, now, brand, route)).fetchone() is not None

    # --- crises and response times ------------------------------------------------------------------------

    def crisis(self, crisis_id: str) -> dict[str, Any]:
        rows = self.outbox.read(_CRISIS_SQL + " WHERE crisis_id = ?", (crisis_id,))
        if not rows:
            raise UnknownCrisis(f"no crisis {crisis_id!r}")
        return self._figures(rows[0])

    def crises(self, open_only: bool = False) -> list[dict[str, Any]]:
        sql = _CRISIS_SQL + (" WHERE status = 'open'" if open_only else "") + " ORDER BY first_seen"
        return [self._figures(r) for r in self.outbox.read(sql)]

    def _figures(self, row: dict[str, Any]) -> dict[str, Any]:
        """A crisis with its response times: detection delay and duration in event time, acknowledgement
        in wall-clock time from the moment on-call first knew."""
        r = dict(row)
        r["detected_after_min"] = round((r["detected_at"] - r["started_at"]) / 60, 1)
        r["ack_min"] = round((r["acked_at"] - r["first_seen"]) / 60, 1) if r["acked_at"] is not None else None
        r["ack_within_target"] = self.within_target(r) if r["acked_at"] is not None else None
        r["duration_min"] = round((r["resolved_at"] - r["started_at"]) / 60, 1) if r["resolved_at"] else None
        return r

    def within_target(self, crisis: Mapping[str, Any]) -> bool:
        """On time: the exact time, not the rounded minutes shown (15.03 min is late), and while the crisis
        was still on (older versions accepted an acknowledgement after the resolution)."""
        acked, resolved = crisis["acked_at"], crisis["resolved_seen"]
        return acked - crisis["first_seen"] <= self.ack_target_minutes * 60 and (resolved is None or acked <= resolved)

    def summary(self, crises: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        acks = [c["ack_min"] for c in crises if c["ack_min"] is not None]
        durations = [c["duration_min"] for c in crises if c["duration_min"] is not None]
        return {
            "crises": len(crises),
            "acknowledged": len(acks),
            "ack_target_minutes": self.ack_target_minutes,
            "ack_within_target": sum(1 for c in crises if c["ack_within_target"]),
            "median_ack_min": round(statistics.median(acks), 1) if acks else None,
            "max_ack_min": max(acks) if acks else None,
            "median_duration_min": round(statistics.median(durations), 1) if durations else None,
        }

    def view(self, d: Delivery) -> Mapping[str, Any]:
        """The payload as sent (the dispatcher's ``decorate``): the crisis's on-call state *now* —
        the acknowledgement or its deadline, and the actions' outcomes."""
        if d.receiver.startswith(ACTION_PREFIX):
            return d.event
        rows = self.outbox.read(_CRISIS_SQL + " WHERE crisis_id = ?", (d.crisis_id,))
        if not rows:
            return d.event
        c = rows[0]
        oncall: dict[str, Any] = {"ack_target_minutes": self.ack_target_minutes,
                                  "ack_command": f"crisiswatch ack {d.crisis_id} --by NAME"}
        if c["acked_at"] is not None:
            oncall.update(acknowledged_by=c["acked_by"], acknowledged_at=iso(c["acked_at"]),
                          ack_minutes=round((c["acked_at"] - c["first_seen"]) / 60, 1))
        elif c["status"] == "open":
            oncall["ack_due"] = iso(c["first_seen"] + self.ack_target_minutes * 60)
        actions = [{"name": a["receiver"][len(ACTION_PREFIX):], "step": a["alert_id"].rsplit("/", 1)[-1],
                    "outcome": _OUTCOME[a["status"]], "attempts": a["attempts"], "error": a["last_error"]}
                   for a in self.outbox.read(
                       "SELECT receiver, alert_id, status, attempts, last_error FROM deliveries "
                       "WHERE crisis_id = ? AND substr(receiver, 1, ?) = ? ORDER BY seq, receiver",
                       (d.crisis_id, len(ACTION_PREFIX), ACTION_PREFIX))]
        return {**d.event, "oncall": oncall, "actions": actions}


def _check_name(kind: str, name: str, known: set[str], which: str = "") -> None:
    """ValueError naming ``name``, the closest known one and the known ones (the first 20) if it is unknown."""
    if name in known:
        return
    close = difflib.get_close_matches(name, known, n=1)
    listed = sorted(known)
    more = f" and {len(listed) - 20} more" if len(listed) > 20 else ""
    hint = f", did you mean {close[0]!r}?" if close else "."
    raise ValueError(f"unknown {kind} {name!r}{hint} Known {kind}s{which}: "
                     f"{', '.join(listed[:20]) + more if listed else 'none'}")


_OUTCOME = {"delivered": "done", "pending": "pending", "dead": "failed", "silenced": "silenced"}
_CRISIS_SQL = ("SELECT crisis_id, brand, severity, status, started_at, detected_at, resolved_at, first_seen, "
               "resolved_seen, acked_at, acked_by, ack_note FROM crises")


class OnCall:
    """The engine: alert events in (:meth:`handle`), the wall clock ticking (:meth:`tick`), notices out."""

    def __init__(self, store: OnCallStore, router: Router, actions: Sequence[Any] = (),
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.outbox = store.outbox
        self.router = router
        self.actions = list(actions)
        """Objects with ``name`` (``action:<x>``) and ``matches(event)``: see notifiers/action.py."""
        self.clock = clock
        self.replays = 0
        self.escalations: Counter[str] = Counter()
        """Escalations per route (a page moved up a level because nobody acknowledged), counted once their
        tick is committed: a tick rolled back and done again counts once."""
        self.acknowledgements: Counter[bool] = Counter()
        """Acknowledgements announced, by whether they came within ``ack_target_minutes`` (made through the
        API or the CLI, in any process: each is announced here once, when committed)."""
        store.know(router)

    # --- events -------------------------------------------------------------------------------------------

    def handle(self, events: Sequence[AlertEvent]) -> None:
        """Take a batch of alert events (one transaction); events already handled are skipped."""
        if not events:
            return
        now = self.clock()
        with self.outbox.transaction() as db:
            for e in events:
                self._event(db, e, now)

    def _event(self, db: sqlite3.Connection, e: AlertEvent, now: float) -> None:
        if e.status is Status.NOTICE:
            self._notice(db, e, now)
            return
        seq = int(e.id.rsplit(":", 2)[1])
        row = db.execute("SELECT last_seq FROM crises WHERE crisis_id = ?", (e.crisis_id,)).fetchone()
        if row is not None and seq <= row[0]:
            self.replays += 1
            return
        payload = e.to_dict()
        resolved = e.status is Status.RESOLVED
        if row is None:
            db.execute("INSERT INTO crises (crisis_id, brand, severity, status, started_at, detected_at, first_seen, "
                       "last_seq, event) VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?)",
                       (e.crisis_id, e.brand, e.severity.value, e.started_at, e.at, now, seq, orjson.dumps(payload)))
        else:
            db.execute("UPDATE crises SET severity = ?, last_seq = ?, event = ? WHERE crisis_id = ?",
                       (e.severity.value, seq, orjson.dumps(payload), e.crisis_id))
        if resolved:
            db.execute("UPDATE crises SET status = 'resolved', resolved_at = ?, resolved_seen = ? WHERE crisis_id = ?",
                       (e.at, now, e.crisis_id))
        pages = {p.route: p for p in self._pages(db, e.crisis_id)}
        routes = self.router.routes_for(e)
        routes += [self.router.by_name[r] for r in pages if r in self.router.by_name and
                   self.router.by_name[r] not in routes]
        for route in routes:
            page = pages.get(route.name)
            if page is None:
                if resolved:
                    continue  # nobody on this route heard of the crisis: nothing to resolve
                page = Page(e.crisis_id, route.name, route.level_for(e.severity), now)
                self._send(db, page, route, payload, "transition", route.receivers_up_to(page.level), now, e.id)
            elif resolved:
                page.held, page.closed = None, True
                self._send(db, page, route, payload, "transition", page.notified, now, e.id)
            elif e.status is Status.UPDATED and page.last_sent is not None \
                    and now - page.last_sent < route.group_interval_minutes * 60:
                page.held = payload
            else:
                level = max(page.level, route.level_for(e.severity))
                if level > page.level:
                    page.level, page.level_since = level, now
                page.held = None
                self._send(db, page, route, payload, "transition", route.receivers_up_to(page.level), now, e.id)
            page.save(db)
        self._actions(db, e, payload)

    def _notice(self, db: sqlite3.Connection, e: AlertEvent, now: float) -> None:
        """Write a notice for the first level of each route (the outbox ignores a replay: same id)."""
        payload = e.to_dict()
        for route in self.router.routes_for(e):
            receivers = route.receivers_up_to(1)
            if receivers:
                muted = self.store.silenced(db, e.brand, route.name, now)
                notice = {"id": e.id, "kind": "notice", "route": route.name, "level": 1, "text": ""}
                self.outbox.write(db, [Notice(e.id, e.crisis_id, 0, {**payload, "notice": notice}, receivers, muted)])

    def _actions(self, db: sqlite3.Connection, e: AlertEvent, payload: dict[str, Any]) -> None:
        for action in self.actions:
            if e.status is Status.TRIGGERED and action.matches(e):
                self._write(db, e.crisis_id, f"{e.crisis_id}/{action.name}/do", payload, (action.name,), False)
            elif e.status is Status.RESOLVED and db.execute(
                    "SELECT 1 FROM deliveries WHERE alert_id = ? AND receiver = ?",
                    (f"{e.crisis_id}/{action.name}/do", action.name)).fetchone():
                self._write(db, e.crisis_id, f"{e.crisis_id}/{action.name}/undo", payload, (action.name,), False)

    # --- the clock ----------------------------------------------------------------------------------------

    def tick(self) -> None:
        """Whatever is due now: held updates, escalations, repeats, ends of silences, acknowledgements."""
        now = self.clock()
        escalated: Counter[str] = Counter()
        with self.outbox.transaction() as db:
            open_pages = [Page.from_row(r) for r in db.execute(
                "SELECT p.* FROM pages p JOIN crises c USING (crisis_id) WHERE p.closed = 0 AND c.status = 'open' "
                "ORDER BY c.first_seen, p.crisis_id, p.route")]
            for page in open_pages:
                route = self.router.by_name.get(page.route)
                if route is not None and self._tick_page(db, page, route, now):
                    escalated[route.name] += 1
            acknowledged = self._announce_acks(db, now)
        self.escalations.update(escalated)  # committed: count them
        self.acknowledgements.update(acknowledged)

    def _tick_page(self, db: sqlite3.Connection, page: Page, route: Route, now: float) -> bool:
        """What is due for one page; True when it escalated."""
        crisis = db.execute("SELECT brand, event, acked_at FROM crises WHERE crisis_id = ?",
                            (page.crisis_id,)).fetchone()
        brand, latest, acked = crisis[0], orjson.loads(crisis[1]), crisis[2] is not None
        if self.store.silenced(db, brand, route.name, now):
            if not page.muted:
                page.muted = True
                page.save(db)
            return False
        if page.muted:  # the silence ended while the crisis goes on: tell them now, restart the clock
            page.muted, page.level_since, page.held = False, now, None
            page.repeats += 1
            self._send(db, page, route, latest, "repeat", route.receivers_up_to(page.level), now,
                       f"{page.crisis_id}/{route.name}/repeat-{page.repeats}",
                       "The silence on this crisis ended and it is still going on.")
        elif page.held is not None and now - (page.last_sent or 0) >= route.group_interval_minutes * 60:
            held, page.held = page.held, None
            self._send(db, page, route, held, "transition", route.receivers_up_to(page.level), now, held["id"])
        elif not acked and page.level < len(route.levels) and \
                now - page.level_since >= route.levels[page.level].after_minutes * 60:
            waited = route.levels[page.level].after_minutes
            page.level, page.level_since = page.level + 1, now
            fresh = tuple(r for r in route.levels[page.level - 1].receivers if r not in page.notified)
            self._send(db, page, route, latest, "escalation", fresh, now,
                       f"{page.crisis_id}/{route.name}/level-{page.level}",
                       f"Not acknowledged within {waited:g} min: escalated to level {page.level}.")
            page.save(db)
            return True
        elif route.repeat_interval_minutes and page.last_sent is not None and \
                now - page.last_sent >= route.repeat_interval_minutes * 60:
            page.repeats += 1
            self._send(db, page, route, latest, "repeat", page.notified, now,
                       f"{page.crisis_id}/{route.name}/repeat-{page.repeats}",
                       f"Still going on (reminder every {route.repeat_interval_minutes:g} min).")
        else:
            return False
        page.save(db)
        return False

    def _announce_acks(self, db: sqlite3.Connection, now: float) -> Counter[bool]:
        """Tell every page of a newly acknowledged crisis who took it; the acknowledgements by whether they came
        within the target."""
        announced: Counter[bool] = Counter()
        for crisis_id, by, acked_at, first_seen, event, status, resolved_seen in db.execute(
                "SELECT crisis_id, acked_by, acked_at, first_seen, event, status, resolved_seen FROM crises "
                "WHERE acked_at IS NOT NULL AND ack_announced = 0").fetchall():
            db.execute("UPDATE crises SET ack_announced = 1 WHERE crisis_id = ?", (crisis_id,))
            announced[self.store.within_target({"acked_at": acked_at, "first_seen": first_seen,
                                                 "resolved_seen": resolved_seen})] += 1
            if status != "open":
                continue
            minutes = (acked_at - first_seen) / 60
            for page in self._pages(db, crisis_id):
                route = self.router.by_name.get(page.route)
                if route is not None and not page.closed:
                    self._send(db, page, route, orjson.loads(event), "acknowledged", page.notified, now,
                               f"{crisis_id}/ack", f"Acknowledged by {by} after {minutes:.0f} min.")
                    page.save(db)
        return announced

    # --- writing notices --------------------------------------------------------------------------------------

    def _pages(self, db: sqlite3.Connection, crisis_id: str) -> list[Page]:
        return [Page.from_row(r) for r in db.execute("SELECT * FROM pages WHERE crisis_id = ? ORDER BY route",
                                                     (crisis_id,))]

    def _send(self, db: sqlite3.Connection, page: Page, route: Route, payload: Mapping[str, Any], kind: str,
              receivers: Sequence[str], now: float, notice_id: str, text: str = "") -> None:
        """Write one notice for ``receivers`` — as ``silenced`` if a silence covers the page now."""
        if not receivers:
            return
        brand = str(payload.get("brand", ""))
        muted = self.store.silenced(db, brand, route.name, now)
        notice = {"id": notice_id, "kind": kind, "route": route.name, "level": page.level, "text": text}
        self._write(db, page.crisis_id, notice_id, {**payload, "notice": notice}, tuple(receivers), muted)
        if muted:
            page.muted = True
            log.info("silenced %s for %s on route %s", notice_id, ", ".join(receivers), route.name)
            return
        page.notified = (*page.notified, *(r for r in receivers if r not in page.notified))
        page.last_sent = now

    def _write(self, db: sqlite3.Connection, crisis_id: str, notice_id: str, payload: Mapping[str, Any],
               receivers: tuple[str, ...], muted: bool) -> None:
        db.execute("UPDATE crises SET notices = notices + 1 WHERE crisis_id = ?", (crisis_id,))
        seq = db.execute("SELECT notices FROM crises WHERE crisis_id = ?", (crisis_id,)).fetchone()[0]
        self.outbox.write(db, [Notice(notice_id, crisis_id, seq, payload, receivers, muted)])
