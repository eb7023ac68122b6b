"""Why people are upset, and what to do first.

Terms: the words and two-word phrases over-represented in the crisis's
negative mentions compared with the brand's ordinary negative talk, ranked by
the weighted log-odds ratio with an informative Dirichlet prior (Monroe,
Colaresi & Quinn 2008, "Fightin' Words").  Counts are document frequencies
(a term counts once per mention) so one long rant cannot dominate, and the
brand's own name is never a term.

Representative mentions: the most-reached distinct negative texts.

Playbook: the first response steps of crisis communication practice — respond
fast, stop scheduled posts, bring in the decision makers, acknowledge, offer a
solution, answer people individually with a stated response time, keep
acknowledging until it quiets down.
"""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Iterable, Sequence

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from .buckets import MentionDigest

_TOKEN = re.compile(r"[#@]?[^\W_][\w'’\-]*", re.UNICODE)
_URL = re.compile(r"https?://\S+|www\.\S+")
_STOP = frozenset(ENGLISH_STOP_WORDS) | {
    "rt", "amp", "just", "like", "im", "i'm", "it's", "don't", "dont", "can't", "cant", "u", "ur",
    "got", "get", "really", "today", "new", "now", "one", "still", "us",
}

DEFAULT_PLAYBOOK: tuple[str, ...] = (
    "Respond fast: post a first holding statement within {response_minutes} minutes — silence reads as indifference.",
    "Pause all scheduled and promotional posts until this is resolved.",
    "Bring in the key decision makers (communications lead, legal, the product or service owner); statements come from them, not the social account managers.",
    "Acknowledge the issue publicly and say what you know and what you are checking.",
    "Offer a solution or a next step (refund, fix, workaround, a place to get updates).",
    "Answer people individually and state your response time (e.g. 'we reply to every message within 2 hours').",
    "Keep acknowledging and updating until the volume and negativity are back to normal.",
)


def terms_of(text: str, exclude: frozenset[str] = frozenset()) -> set[str]:
    """Unigrams and adjacent-word bigrams of a text, lowercased, without stop words."""
    words = [
        w.strip("'’-")
        for w in _TOKEN.findall(_URL.sub(" ", text.lower()))
    ]
    kept: list[str | None] = []
    for w in words:
        bare = w.lstrip("#@")
        if not bare or w.startswith("@") or bare in _STOP or bare in exclude or bare.isdigit() or len(bare) < 2:
            kept.append(None)
        else:
            kept.append(w)
    out = {w for w in kept if w}
    for a, b in zip(kept, kept[1:], strict=False):
        if a and b and a != b:
            out.add(f"{a} {b}")
    return out


_KEY_NOISE = re.compile(r"^rt\s+@\w+:?|https?://\S+|www\.\S+|[@#]\w+")
_KEY_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def text_key(text: str, words: int = 10) -> str:
    """What near-identical copies of a text share: its first ``words`` words, lowercased, without a
    leading "RT @x:", links, @handles, #tags, emoji and punctuation.

    A copy-paste or bot burst varies its copies just enough to dodge exact matching (a tag or a link
    appended, "RT @x:" prepended); those variations sit at the edges, which this key ignores.
    """
    return " ".join(_KEY_WORD.findall(_KEY_NOISE.sub(" ", text.lower()))[:words])


def documents(texts: Iterable[str], exclude: frozenset[str] = frozenset()) -> tuple[list[set[str]], list[int]]:
    """The term sets of the *distinct* texts (near-identical copies are one: see :func:`text_key`), in
    first-seen order, and how many copies of each there were.

    A copy-paste burst (one text posted many times, by bots or by a pile-on)
    counts once when terms are ranked: otherwise its incidental words ("how
    did", "happen") outrank what the many different people are actually saying
    ("data breach").  The copies still count in the reported ``mentions``.
    """
    seen: dict[str, int] = {}
    docs: list[set[str]] = []
    copies: list[int] = []
    for text in texts:
        key = text_key(text)
        if key in seen:
            copies[seen[key]] += 1
        else:
            seen[key] = len(docs)
            docs.append(terms_of(text, exclude))
            copies.append(1)
    return docs, copies


def brand_words(brand: str) -> frozenset[str]:
    parts = {p for p in re.split(r"[\W_]+", brand.lower()) if p}
    return frozenset(parts | {brand.lower()})


class TermBackground:
    """The brand's recent ordinary negative mentions (bounded), for comparison.

    Texts are kept as they are and tokenised only when an alert asks for
    :attr:`counts`: alerts are rare and quiet minutes are many, so tokenising
    every quiet minute would cost far more than it ever returns.
    """

    def __init__(self, capacity: int = 2000, exclude: frozenset[str] = frozenset()) -> None:
        self.capacity = capacity
        self.exclude = exclude
        self._texts: deque[str] = deque(maxlen=capacity)
        self._counts: Counter[str] | None = None

    def __len__(self) -> int:
        return len(self._texts)

    def add(self, text: str) -> None:
        self._texts.append(text)
        self._counts = None

    @property
    def counts(self) -> Counter[str]:
        """Document frequency of every term."""
        if self._counts is None:
            counts: Counter[str] = Counter()
            for text in self._texts:
                counts.update(terms_of(text, self.exclude))
            self._counts = counts
        return self._counts

    def to_state(self) -> list[str]:
        return list(self._texts)

    def load(self, texts: list[str]) -> None:
        self._texts.clear()
        self._texts.extend(texts)
        self._counts = None


def distinctive_terms(
    foreground: Sequence[set[str]],
    background: TermBackground,
    limit: int = 5,
    prior_scale: float = 0.05,
    min_z: float = 1.96,
    copies: Sequence[int] | None = None,
) -> list[dict[str, object]]:
    """Terms over-represented in ``foreground`` documents, best first.

    Returns ``[{"term", "mentions", "share", "z"}]`` where ``mentions`` is how
    many foreground documents contain the term, each counted ``copies[i]``
    times when given (see :func:`documents`), and ``share`` is its fraction.  The Dirichlet prior is the
    pooled (foreground + background) term counts times ``prior_scale``: a term
    new in the crisis gets a prior as large as its own count, so it is not
    drowned in variance, while a term as common as usual scores about zero.
    """
    fg: Counter[str] = Counter()
    for doc in foreground:
        fg.update(doc)
    if not fg:
        return []
    n_docs = len(foreground)
    bg = background.counts
    min_docs = max(2, math.ceil(0.05 * n_docs))
    scored: list[tuple[float, str, int]] = []
    total_fg = sum(fg.values())
    total_bg = sum(bg.values())
    a0 = prior_scale * (total_fg + total_bg)
    for term, y in fg.items():
        if y < min_docs:
            continue
        x = bg.get(term, 0)
        a = prior_scale * (y + x)
        delta = math.log((y + a) / (total_fg + a0 - y - a)) - math.log((x + a) / (total_bg + a0 - x - a))
        z = delta / math.sqrt(1.0 / (y + a) + 1.0 / (x + a))
        if z >= min_z:
            scored.append((z, term, y))
    scored.sort(key=lambda s: (-s[0], s[1]))
    # A phrase is easier to act on than its words ("data breach" over "data" and
    # "breach"): when a two-word phrase is about as common as a word in it, the
    # phrase takes the word's place, and a word that adds nothing to a chosen
    # phrase is skipped.
    phrases = [(z, t, y) for z, t, y in scored if " " in t]
    chosen: list[tuple[float, str, int]] = []
    for z, term, y in scored:
        if " " not in term:
            better = next((p for p in phrases if term in p[1].split(" ") and p[2] >= 0.6 * y), None)
            if better is not None:
                z, term, y = better
        if any(term == c[1] or _covers(c[1], term, c[2], y) for c in chosen):
            continue
        chosen.append((z, term, y))
        if len(chosen) == limit:
            break
    weights = list(copies) if copies is not None else [1] * n_docs
    total = sum(weights)

    def mentions(term: str) -> int:
        return sum(w for doc, w in zip(foreground, weights, strict=True) if term in doc)

    return [{"term": t, "mentions": mentions(t), "share": round(mentions(t) / total, 3), "z": round(z, 2)}
            for z, t, _ in chosen]


def _covers(chosen: str, term: str, chosen_y: int, y: int) -> bool:
    """Does an already chosen term say what ``term`` says (a word inside a phrase, or vice versa)?"""
    a, b = chosen.split(" "), term.split(" ")
    if len(a) == len(b):
        return False
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return all(w in long_ for w in short) and min(y, chosen_y) >= 0.6 * max(y, chosen_y)


def representative(samples: Iterable[MentionDigest], terms: Sequence[str] = (), limit: int = 3,
                   exclude: frozenset[str] = frozenset()) -> list[dict[str, object]]:
    """Distinct negative mentions that are about the crisis's terms, most-reached first."""
    wanted = set(terms)
    seen: set[str] = set()
    out: list[dict[str, object]] = []

    def rank(d: MentionDigest) -> tuple[int, int, float, str]:
        hits = len(wanted & terms_of(d.text, exclude)) if wanted else 0
        return (-hits, -d.reach, d.compound, d.id)

    for d in sorted(samples, key=rank):
        key = " ".join(_URL.sub("", d.text.lower()).split())[:120]
        if key in seen:
            continue
        seen.add(key)
        out.append({"id": d.id, "text": d.text, "author": d.author, "reach": d.reach, "url": d.url,
                    "source": d.source})
        if len(out) == limit:
            break
    return out


def playbook(response_minutes: int, steps: Sequence[str] = DEFAULT_PLAYBOOK) -> tuple[str, ...]:
    return tuple(s.format(response_minutes=response_minutes) for s in steps)
