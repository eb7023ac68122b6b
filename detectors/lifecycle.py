"""The crisis lifecycle: quiet → watch → crisis → (escalated) → resolving → resolved.

The state machine only sees, per minute, whether the window is *hot* (a
significant excess), *cool* (back near normal) and the severity rank the
numbers justify.  Hysteresis comes from the gap between hot and cool: a
crisis needs ``trigger_minutes`` hot minutes to start — allowing up to
``trigger_grace`` minutes that are not hot in between, so a real crisis that
flickers around the threshold (hot, hot, not, hot) still starts — and
``quiet_minutes`` cool minutes in a row to end, and a minute that is neither
keeps the current state, so an alert does not flap.  A *strong* hot minute
(evidence far beyond the hot bar, see :attr:`~detectors.detector.DetectorConfig.
strong_p_value`) starts a crisis at once: waiting for more minutes of a
crisis that is already certain only delays the page.

Each transition that matters to people is one :class:`Transition`:

* ``triggered`` — watch turned into a crisis;
* ``escalated`` — severity went above its highest level so far;
* ``updated``   — the crisis started quieting down, or flared up again;
* ``resolved``  — it stayed quiet for ``quiet_minutes``.

Severity never goes down within a crisis (people were already paged at the
higher level; a drop is reported as ``updated`` on the way to ``resolved``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .events import Status


class Phase(str, Enum):
    QUIET = "quiet"
    WATCH = "watch"
    CRISIS = "crisis"
    RESOLVING = "resolving"


@dataclass(frozen=True, slots=True)
class Transition:
    status: Status
    note: str
    """``quieting`` or ``flare`` for ``updated``; empty otherwise."""
    started_at: int = 0
    """First hot minute of the crisis (names the crisis)."""
    seq: int = 0
    """Index of this transition within its crisis (0 = triggered)."""
    severity: int = 0


class Lifecycle:
    def __init__(self, trigger_minutes: int, quiet_minutes: int, trigger_grace: int = 0) -> None:
        self.trigger_minutes = trigger_minutes
        self.quiet_minutes = quiet_minutes
        self.trigger_grace = trigger_grace
        self.phase = Phase.QUIET
        self.streak = 0
        """Hot minutes so far (watch) or consecutive cool minutes (resolving)."""
        self.misses = 0
        """Minutes under watch that were not hot."""
        self.started_at: int | None = None
        self.severity = 0
        self.transitions = 0
        """Transitions emitted in the current crisis (numbers the alert ids)."""

    @property
    def active(self) -> bool:
        """Under watch, in crisis or resolving one."""
        return self.phase is not Phase.QUIET

    @property
    def holds_learning(self) -> bool:
        """Under watch or in crisis: this minute is held back from the baseline (and dropped when the crisis
        quiets down; learned only if the crisis outlasts the hold-back cap).  A resolving crisis is
        back near normal, and its minutes are learned (after the usual hold-back), so a crisis that left
        the brand's normal changed can resolve instead of being measured against a stale baseline."""
        return self.phase in (Phase.WATCH, Phase.CRISIS)

    def step(self, minute: int, hot: bool, cool: bool, severity: int, strong: bool = False) -> list[Transition]:
        """Advance one minute; return the transitions it caused, numbered within their crisis.  ``strong``
        (only meaningful with ``hot``) triggers without waiting for ``trigger_minutes``."""
        started, first = self.started_at, self.transitions
        raw = self._advance(minute, hot, cool, severity, hot and strong)
        started = self.started_at if started is None else started
        out = [
            Transition(t.status, t.note, started or minute, first + i, self.severity)
            for i, t in enumerate(raw)
        ]
        self.transitions += len(raw)
        if any(t.status is Status.RESOLVED for t in raw):
            self.started_at, self.severity, self.transitions = None, 0, 0
        return out

    def _advance(self, minute: int, hot: bool, cool: bool, severity: int, strong: bool) -> list[Transition]:
        phase = self.phase
        if phase is Phase.QUIET:
            if hot:
                self.phase, self.streak, self.misses, self.started_at = Phase.WATCH, 1, 0, minute
                if strong or self.streak >= self.trigger_minutes:
                    return self._trigger(severity)
            return []
        if phase is Phase.WATCH:
            if not hot:
                self.misses += 1
                if self.misses > self.trigger_grace:
                    self.phase, self.streak, self.misses, self.started_at = Phase.QUIET, 0, 0, None
                return []
            self.streak += 1
            return self._trigger(severity) if strong or self.streak >= self.trigger_minutes else []
        if phase is Phase.CRISIS:
            if cool:
                self.phase, self.streak = Phase.RESOLVING, 1
                return [Transition(Status.UPDATED, "quieting")]
            return self._maybe_escalate(severity)
        # RESOLVING
        if hot:
            self.phase, self.streak = Phase.CRISIS, 0
            return self._maybe_escalate(severity) or [Transition(Status.UPDATED, "flare")]
        self.streak = self.streak + 1 if cool else 0
        if self.streak >= self.quiet_minutes:
            self.phase, self.streak = Phase.QUIET, 0
            return [Transition(Status.RESOLVED, "")]
        return []

    def _trigger(self, severity: int) -> list[Transition]:
        self.phase, self.streak, self.severity = Phase.CRISIS, 0, max(severity, 1)
        return [Transition(Status.TRIGGERED, "")]

    def _maybe_escalate(self, severity: int) -> list[Transition]:
        if severity > self.severity:
            self.severity = severity
            return [Transition(Status.ESCALATED, "")]
        return []

    def to_state(self) -> dict[str, object]:
        return {"phase": self.phase.value, "streak": self.streak, "started_at": self.started_at,
                "severity": self.severity, "transitions": self.transitions, "misses": self.misses}

    def load(self, state: dict[str, object]) -> None:
        self.phase = Phase(state["phase"])
        self.streak = int(state["streak"])  # type: ignore[arg-type]
        started = state["started_at"]
        self.started_at = None if started is None else int(started)  # type: ignore[arg-type]
        self.severity = int(state["severity"])  # type: ignore[arg-type]
        self.transitions = int(state["transitions"])  # type: ignore[arg-type]
        self.misses = int(state.get("misses", 0))  # type: ignore[call-overload]
