"""``crisiswatch sentiment``: score texts from stdin, one JSON object per line on stdout.

One output line per input line, always — an empty line scores ``{"compound": 0.0, ...}`` — so the output can be
pasted next to the input (``paste``) or joined by line number.  Each object holds ``compound`` in [-1, 1],
``label`` (negative at compound <= -0.05, positive at >= 0.05, neutral between: the thresholds the listener
counts with) and VADER's ``neg`` / ``neu`` / ``pos`` shares.  Lines are flushed as they are scored, so the command
works at the end of a live pipe (``tail -f mentions.txt | crisiswatch sentiment``).
"""

from __future__ import annotations

import json
from typing import TextIO

from .sentiment import Scorer, label


def main(stdin: TextIO, stdout: TextIO, stock: bool = False) -> int:
    """Score each line of ``stdin`` with crisiswatch's scorer, or stock VADER when ``stock``; returns 0."""
    polarity = Scorer(lexicon="stock" if stock else "crisis").polarity
    for line in stdin:
        p = polarity(line.rstrip("\r\n"))
        stdout.write(json.dumps({"compound": p.compound, "label": label(p.compound),
                                 "neg": p.neg, "neu": p.neu, "pos": p.pos}) + "\n")
        stdout.flush()
    return 0
