"""Waiting on a condition with a deadline (never a fixed sleep): for tests that watch another process or thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def wait_until(predicate: Callable[[], bool], timeout_s: float = 60.0, interval_s: float = 0.1) -> bool:
    """True as soon as ``predicate()`` is; False if ``timeout_s`` passes first."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        pause.wait(interval_s)
