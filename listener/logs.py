"""Logging helpers: a rate limit for lines that repeat once per bad input.

Why: the listener logged one warning per dead letter; a brand flood of
malformed mentions made 359k log lines, which buried everything else and
cost the log pipeline more than the flood cost the listener.  The dead letters
themselves are all kept (on the dead-letter topic, with their reason) and
counted (``/metrics``): the log needs examples and the size of the problem,
not every one.

:class:`RateLimitedLog` logs at most ``per_window`` lines per key (the
dead-letter reason) in a window of ``window_s`` seconds; the rest of the
window is counted and said in one line when the window is over::

    ... and 4211 more dead letters (bad_json) in the last minute

That line is written when the next line for any key is logged after the
window ended, or by :meth:`RateLimitedLog.flush` (call it from a loop that
runs anyway, and with ``force=True`` at shutdown), so a flood that stops is
still summed up.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class _Window:
    start: float
    logged: int = 0
    suppressed: int = 0
    level: int = logging.NOTSET
    """The highest level among the suppressed lines: the summary's."""


class RateLimitedLog:
    """At most ``per_window`` lines per key every ``window_s`` seconds to ``logger``, then one summary line per
    key and window for the lines held back.  Thread-safe; ``clock`` is monotonic seconds."""

    def __init__(self, logger: logging.Logger, what: str, per_window: int = 10, window_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if per_window < 1 or not window_s > 0:
            raise ValueError("per_window must be at least 1 and window_s positive")
        self.logger = logger
        self.what = what
        """What the lines are about, plural, for the summary: "dead letters"."""
        self.per_window = per_window
        self.window_s = window_s
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self._next_end = math.inf
        """When the earliest current window ends (nothing to sum up or forget before)."""
        self._lock = threading.Lock()

    @property
    def suppressed(self) -> dict[str, int]:
        """Lines held back in the current windows, by key (not yet summed up)."""
        with self._lock:
            return {k: w.suppressed for k, w in self._windows.items() if w.suppressed}

    def log(self, level: int, key: str, msg: str, *args: Any) -> bool:
        """Log ``msg % args`` at ``level`` unless ``key`` already had ``per_window`` lines in its window;
        True if it was logged."""
        return self._log(level, key, msg, args)

    def warning(self, key: str, msg: str, *args: Any) -> bool:
        return self._log(logging.WARNING, key, msg, args)

    def error(self, key: str, msg: str, *args: Any) -> bool:
        return self._log(logging.ERROR, key, msg, args)

    def flush(self, force: bool = False) -> None:
        """Sum up the windows that are over (cheap when none is); ``force``: every window, over or not, and
        start afresh (at shutdown)."""
        now = self.clock()
        with self._lock:
            if force:
                ended = [(k, w) for k, w in self._windows.items() if w.suppressed]
                self._windows.clear()
                self._next_end = math.inf
            else:
                ended = self._expire(now)
        self._summarise(ended)

    def _log(self, level: int, key: str, msg: str, args: tuple[Any, ...]) -> bool:
        now = self.clock()
        with self._lock:
            ended = self._expire(now)
            window = self._windows.get(key)
            if window is None:
                window = self._windows[key] = _Window(now)
                self._next_end = min(self._next_end, now + self.window_s)
            emit = window.logged < self.per_window
            if emit:
                window.logged += 1
            else:
                window.suppressed += 1
                window.level = max(window.level, level)
        self._summarise(ended)
        if emit:
            self.logger.log(level, msg, *args, stacklevel=3)  # the record names the caller's line
        return emit

    def _expire(self, now: float) -> list[tuple[str, _Window]]:
        """Forget the windows that are over; returns those with lines to sum up.  Under the lock."""
        if now < self._next_end:
            return []
        ended = [(k, w) for k, w in self._windows.items() if now >= w.start + self.window_s]
        for k, _ in ended:
            del self._windows[k]
        self._next_end = min((w.start + self.window_s for w in self._windows.values()), default=math.inf)
        return [(k, w) for k, w in ended if w.suppressed]

    def _summarise(self, ended: list[tuple[str, _Window]]) -> None:
        span = "minute" if self.window_s == 60 else f"{self.window_s:g} s"
        for key, w in ended:
            self.logger.log(w.level, "... and %d more %s (%s) in the last %s", w.suppressed, self.what, key, span)
