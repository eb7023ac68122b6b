"""Sentiment scoring: VADER, made to hear complaints.

A mention is negative when the compound score is <= -0.05, positive when >= 0.05 and neutral in between (VADER's
own published thresholds).

Stock VADER misses more than half of real complaints to brands (on the airline tweets it labels under half of the
human-negative ones negative): a handle like ``@united`` scores as the word "united", politeness ("please help",
"thanks") outweighs the complaint it wraps, and the words of service failures ("stranded", "on hold for 2
hours", "outage") are not in its lexicon.  :class:`Scorer` therefore runs VADER's own algorithm — lexicon, boosters,
negation, capitals, "but", punctuation, the same arithmetic — with the domain lexicon and the few rules of
:mod:`listener.lexicon` on top.  ``Scorer(lexicon="stock")`` is vaderSentiment itself, for comparison.

The algorithm is re-implemented here (from vaderSentiment 3.3.2) rather than called, for two reasons: the domain
rules need hooks inside the word loop, and vaderSentiment lower-cases the whole sentence again for every word it
looks at, so a text with more sentiment words costs quadratically more.  With the empty :class:`Domain` the
re-implementation gives exactly vaderSentiment's scores (tested), so every difference comes from the domain.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Iterable, Sequence
from typing import Literal, NamedTuple

from vaderSentiment.vaderSentiment import (
    BOOSTER_DICT, C_INCR, N_SCALAR, NEGATE, SPECIAL_CASES, SentimentIntensityAnalyzer,
)

from .lexicon import COMPLAINTS, Domain

NEGATIVE_AT = -0.05
POSITIVE_AT = 0.05

_NEGATE = frozenset(NEGATE)
_SO_THIS = ("so", "this")
# VADER matches its idioms on space-joined lower-case words; tokens never contain spaces, so tuples are equivalent.
_SPECIAL = {tuple(k.split()): float(v) for k, v in SPECIAL_CASES.items() if " " in k}
_BOOSTER_NGRAMS = {tuple(k.split()): v for k, v in BOOSTER_DICT.items() if " " in k}
_PUNCTUATION = string.punctuation
_HANDLE = re.compile(r"[^\w@]*@\w")  # "@united", ".@united", "(@united"
_AMOUNTS = frozenset(("an", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                      "twelve", "few", "several", "many"))


def label(compound: float) -> str:
    """'negative', 'neutral' or 'positive', by VADER's thresholds (the ones the listener counts with)."""
    return "negative" if compound <= NEGATIVE_AT else "positive" if compound >= POSITIVE_AT else "neutral"


class Polarity(NamedTuple):
    """VADER's four scores: the shares of negative, neutral and positive valence, and the compound in [-1, 1]."""

    neg: float
    neu: float
    pos: float
    compound: float


def _negated(word: str) -> bool:
    return word in _NEGATE or "n't" in word


def _is_amount(word: str) -> bool:
    return word in _AMOUNTS or word.rstrip("+").isdigit()


class Analyzer:
    """VADER's scoring of one text, with a :class:`Domain` (lexicon entries, phrases, rules) on top."""

    def __init__(self, domain: Domain) -> None:
        stock = SentimentIntensityAnalyzer()
        self._lexicon: dict[str, float] = {**stock.lexicon, **domain.words}
        for word, valence in domain.words.items():
            if valence == 0.0:  # no valence at all: not a sentiment word, so capitals and boosters cannot give it one
                del self._lexicon[word]
        self._emojis = {k: v for k, v in stock.emojis.items() if len(k) == 1}  # VADER looks emojis up per character
        # first word -> second word -> (further words, valence), longest first
        self._phrases: dict[str, dict[str, list[tuple[tuple[str, ...], float]]]] = {}
        for phrase, valence in sorted(domain.phrases.items(), key=lambda kv: -len(kv[0].split())):
            first, second, *rest = phrase.split()
            self._phrases.setdefault(first, {}).setdefault(second, []).append((tuple(rest), valence))
        self._mute_handles = domain.mute_handles
        self._failures = domain.failures
        self._durations = domain.durations
        units = "|".join(sorted(domain.durations, key=len, reverse=True))
        self._glued_duration = re.compile(rf"\d+\+?({units})") if units else None  # "3hrs", "45mins"
        self._rule_words = frozenset(domain.failures) | frozenset(domain.durations)
        self._waiting_words = domain.waiting_words
        self._waiting_window = domain.waiting_window
        self._courtesy = domain.courtesy
        self._courtesy_weight = domain.courtesy_weight_in_complaint

    def _demojize(self, text: str) -> str:
        """VADER's emoji step: each emoji becomes its description (preceded, not followed, by a space)."""
        out: list[str] = []
        prev_space = True
        emojis = self._emojis
        for ch in text:
            description = emojis.get(ch)
            if description is None:
                out.append(ch)
                prev_space = ch == " "
            else:
                if not prev_space:
                    out.append(" ")
                out.append(description)
                prev_space = False
        return "".join(out)

    def polarity(self, text: str) -> Polarity:
        if not text.isascii():  # every emoji is non-ASCII: the common case skips VADER's per-character loop
            text = self._demojize(text)
        raw = text.split()
        words = [w if len(s := w.strip(_PUNCTUATION)) <= 2 else s for w in raw]  # VADER's stripping; keeps ':)'
        if self._mute_handles and "@" in text:
            words = [r if "@" in r and _HANDLE.match(r) else w for r, w in zip(raw, words, strict=True)]
        lower = [w.lower() for w in words]
        n = len(words)
        caps = sum(1 for w in words if w.isupper())
        is_cap_diff = 0 < n - caps < n
        lexicon, phrases, rule_words = self._lexicon, self._phrases, self._rule_words
        sentiments: list[float] = []
        courtesy: list[int] = []
        skip = 0
        for i, low in enumerate(lower):
            if skip:
                skip -= 1
                sentiments.append(0)
                continue
            if low in phrases and i < n - 1:
                match = self._match_phrase(lower, i)
                if match is not None:
                    skip, valence = match
                    sentiments.append(self._modified(valence, words, lower, i, is_cap_diff, False) if valence else 0)
                    continue
            if low in BOOSTER_DICT or (low == "kind" and i < n - 1 and lower[i + 1] == "of"):
                sentiments.append(0)
                continue
            valence = lexicon.get(low)
            if valence is None:
                ruled = low in rule_words or (low[:1].isdigit() and self._glued_duration is not None)
                sentiments.append(self._rule_valence(lower, i) if ruled else 0)
                continue
            if low in self._courtesy:
                courtesy.append(i)
            sentiments.append(self._modified(valence, words, lower, i, is_cap_diff, low == "no"))
        if courtesy and sum(s for i, s in enumerate(sentiments) if i not in courtesy) < 0:
            for i in courtesy:
                if sentiments[i] > 0:
                    sentiments[i] *= self._courtesy_weight
        if "but" in lower:
            _but_check(lower, sentiments)
        return _score_valence(sentiments, text)

    def _rule_valence(self, lower: Sequence[str], i: int) -> float:
        """The valence of a word outside the lexicon: a negated failure word, or a duration spent waiting."""
        low = lower[i]
        if low in self._failures:
            return self._failures[low] if any(_negated(lower[j]) for j in range(max(0, i - 3), i)) else 0
        if low in self._durations:
            unit = low if i > 0 and _is_amount(lower[i - 1]) else None
        elif low[:1].isdigit() and self._glued_duration is not None:
            glued = self._glued_duration.fullmatch(low)
            unit = glued.group(1) if glued else None
        else:
            return 0
        if unit is None:
            return 0
        before, after = self._waiting_window
        context = lower[max(0, i - before):i + after + 1]
        return self._durations[unit] if any(w.strip(_PUNCTUATION) in self._waiting_words for w in context) else 0

    def _match_phrase(self, lower: Sequence[str], i: int) -> tuple[int, float] | None:
        """The longest domain phrase starting at word i, as (number of further words, valence)."""
        seconds = self._phrases[lower[i]]
        candidates = seconds.get(lower[i + 1]) or seconds.get(lower[i + 1].strip(_PUNCTUATION))
        if candidates is None:
            return None
        for rest, valence in candidates:
            k = len(rest)
            if i + 1 + k < len(lower) and all(lower[i + 2 + j].strip(_PUNCTUATION) == w for j, w in enumerate(rest)):
                return k + 1, valence
        return None

    def _modified(self, valence: float, words: Sequence[str], lower: Sequence[str], i: int, is_cap_diff: bool,
                  is_no: bool) -> float:
        """A sentiment word's valence after VADER's rules: 'no', capitals, boosters, negation, idioms, 'least'."""
        lexicon = self._lexicon
        n = len(lower)
        base = valence
        if is_no and i != n - 1 and lower[i + 1] in lexicon:
            valence = 0.0
        if (i > 0 and lower[i - 1] == "no") or (i > 1 and lower[i - 2] == "no") \
                or (i > 2 and lower[i - 3] == "no" and lower[i - 1] in ("or", "nor")):
            valence = base * N_SCALAR
        if is_cap_diff and words[i].isupper():
            valence = valence + C_INCR if valence > 0 else valence - C_INCR
        for start_i in range(3):
            j = i - start_i - 1
            if j < 0 or lower[j] in lexicon:
                continue
            s = BOOSTER_DICT.get(lower[j], 0.0)
            if s:
                if valence < 0:
                    s = -s
                if is_cap_diff and words[j].isupper():
                    s = s + C_INCR if valence > 0 else s - C_INCR
                if start_i == 1:
                    s *= 0.95
                elif start_i == 2:
                    s *= 0.9
            valence = valence + s
            valence = _negation_check(valence, lower, start_i, i)
            if start_i == 2:
                valence = _special_idioms_check(valence, lower, i)
        if i > 0 and lower[i - 1] == "least" and "least" not in lexicon \
                and (i == 1 or lower[i - 2] not in ("at", "very")):
            valence *= N_SCALAR
        return valence


def _negation_check(valence: float, lower: Sequence[str], start_i: int, i: int) -> float:
    if start_i == 0:
        if _negated(lower[i - 1]):
            valence *= N_SCALAR
    elif start_i == 1:
        if lower[i - 2] == "never" and lower[i - 1] in _SO_THIS:
            valence *= 1.25
        elif lower[i - 2] == "without" and lower[i - 1] == "doubt":
            pass
        elif _negated(lower[i - 2]):
            valence *= N_SCALAR
    else:
        if (lower[i - 3] == "never" and lower[i - 2] in _SO_THIS) or lower[i - 1] in _SO_THIS:
            valence *= 1.25
        elif lower[i - 3] == "without" and (lower[i - 2] == "doubt" or lower[i - 1] == "doubt"):
            pass
        elif _negated(lower[i - 3]):
            valence *= N_SCALAR
    return valence


def _special_idioms_check(valence: float, lower: Sequence[str], i: int) -> float:
    w3, w2, w1, w0 = lower[i - 3], lower[i - 2], lower[i - 1], lower[i]
    for seq in ((w1, w0), (w2, w1, w0), (w2, w1), (w3, w2, w1), (w3, w2)):
        if seq in _SPECIAL:
            valence = _SPECIAL[seq]
            break
    n = len(lower)
    if n - 1 > i and (w0, lower[i + 1]) in _SPECIAL:
        valence = _SPECIAL[(w0, lower[i + 1])]
    if n - 1 > i + 1 and (w0, lower[i + 1], lower[i + 2]) in _SPECIAL:
        valence = _SPECIAL[(w0, lower[i + 1], lower[i + 2])]
    for seq in ((w3, w2, w1), (w3, w2), (w2, w1)):
        if seq in _BOOSTER_NGRAMS:
            valence = valence + _BOOSTER_NGRAMS[seq]
    return valence


def _but_check(lower: Sequence[str], sentiments: list[float]) -> None:
    """VADER's 'but' rule, kept literally (it finds each value by ``index``, which matters when values repeat)."""
    bi = lower.index("but")
    for sentiment in sentiments:
        si = sentiments.index(sentiment)
        if si < bi:
            sentiments.pop(si)
            sentiments.insert(si, sentiment * 0.5)
        elif si > bi:
            sentiments.pop(si)
            sentiments.insert(si, sentiment * 1.5)


def _score_valence(sentiments: Sequence[float], text: str) -> Polarity:
    if not sentiments:
        return Polarity(0.0, 0.0, 0.0, 0.0)
    sum_s = float(sum(sentiments))
    qm = text.count("?")
    punct = min(text.count("!"), 4) * 0.292 + (0 if qm <= 1 else qm * 0.18 if qm <= 3 else 0.96)
    if sum_s > 0:
        sum_s += punct
    elif sum_s < 0:
        sum_s -= punct
    compound = max(-1.0, min(1.0, sum_s / math.sqrt(sum_s * sum_s + 15)))
    pos_sum = neg_sum = 0.0
    neu_count = 0
    for s in sentiments:
        if s > 0:
            pos_sum += float(s) + 1
        elif s < 0:
            neg_sum += float(s) - 1
        else:
            neu_count += 1
    if pos_sum > -neg_sum:
        pos_sum += punct
    elif pos_sum < -neg_sum:
        neg_sum -= punct
    total = pos_sum - neg_sum + neu_count
    return Polarity(round(math.fabs(neg_sum / total), 3), round(neu_count / total, 3), round(pos_sum / total, 3),
                    round(compound, 4))


class Scorer:
    """Compound scores for texts: crisiswatch's complaint-aware VADER, or ``lexicon="stock"`` for vaderSentiment."""

    def __init__(self, lexicon: Literal["crisis", "stock"] = "crisis") -> None:
        self._polarity: Callable[[str], Polarity]
        if lexicon == "stock":
            vader = SentimentIntensityAnalyzer()
            self._polarity = lambda text: Polarity(**vader.polarity_scores(text))
        elif lexicon == "crisis":
            self._polarity = Analyzer(COMPLAINTS).polarity
        else:
            raise ValueError(f"unknown lexicon {lexicon!r}: expected 'crisis' or 'stock'")
        self.lexicon = lexicon

    def polarity(self, text: str) -> Polarity:
        return self._polarity(text)

    def score(self, text: str) -> float:
        return float(self._polarity(text).compound)

    def score_many(self, texts: Iterable[str]) -> list[float]:
        polarity = self._polarity
        return [polarity(t).compound for t in texts]
