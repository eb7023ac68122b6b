"""Which brands a post is about.

Each brand is configured with keywords, handles, hashtags and exclusions::

    [[brands]]
    name = "apple"
    keywords = ["apple", "iphone", "macbook"]
    handles = ["@apple", "@AppleSupport"]
    hashtags = ["#apple"]
    exclude = ["apple pie", "apple juice", "big apple"]

Matching is case-insensitive (Unicode case folding) and on word boundaries
(``apple`` does not match ``pineapple`` or ``applesauce``; ``café`` matches
``Café!``), and one post can match several brands.  An exclusion phrase
anywhere in the post cancels that brand's keyword matches — but not an explicit
handle or hashtag, which are unambiguous.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .mention import MentionError, check_name


class BrandConfigError(ValueError):
    pass


@dataclass(frozen=True)
class BrandRule:
    name: str
    keywords: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    hashtags: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    """Any of the phrases as whole words (not inside a word, a handle or a hashtag)."""
    parts = [r"\s+".join(re.escape(w) for w in p.casefold().split()) for p in phrases if p.split()]
    if not parts:
        return None
    parts.sort(key=len, reverse=True)
    return re.compile(r"(?<![\w@#])(?:" + "|".join(parts) + r")(?!\w)")


class _Compiled:
    __slots__ = ("name", "keywords", "tags", "exclude")

    def __init__(self, rule: BrandRule) -> None:
        self.name = rule.name
        self.keywords = _phrase_pattern(rule.keywords)
        tags = [h if h.startswith("@") else "@" + h for h in rule.handles]
        tags += [h if h.startswith("#") else "#" + h for h in rule.hashtags]
        self.tags = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(t.casefold()) for t in tags) + r")(?!\w)") \
            if tags else None
        self.exclude = _phrase_pattern(rule.exclude)


class BrandMatcher:
    def __init__(self, rules: Sequence[BrandRule]) -> None:
        names = [r.name for r in rules]
        if len(set(names)) != len(names):
            raise BrandConfigError(f"brand names must be unique: {names}")
        self._rules = [_Compiled(r) for r in rules]
        self.unmatched = 0

    @property
    def brands(self) -> list[str]:
        return [r.name for r in self._rules]

    def match(self, text: str) -> list[str]:
        """Names of the brands the text is about, in configuration order (counts unmatched texts)."""
        folded = text.casefold()
        out = []
        for r in self._rules:
            if r.tags is not None and r.tags.search(folded):
                out.append(r.name)
            elif r.keywords is not None and r.keywords.search(folded):
                if r.exclude is None or not r.exclude.search(folded):
                    out.append(r.name)
        if not out:
            self.unmatched += 1
        return out


def rules_from_config(tables: Sequence[Mapping[str, Any]]) -> list[BrandRule]:
    """``[[brands]]`` tables to rules, with errors that name the key."""
    rules = []
    for i, t in enumerate(tables):
        where = f"brands[{i}]"
        known = ("name", "keywords", "handles", "hashtags", "exclude")
        unknown = sorted(set(t) - set(known))
        if unknown:
            close = difflib.get_close_matches(unknown[0], known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise BrandConfigError(f"unknown key {where}.{unknown[0]}: {hint}(known keys are {', '.join(known)})")
        name = t.get("name")
        if not isinstance(name, str) or not name.strip():
            raise BrandConfigError(f"{where}.name is required (the brand's key on the mentions topic)")
        try:
            check_name("name", name)  # the wire format's rule: a brand its own mentions could not carry is a typo
        except MentionError as exc:
            raise BrandConfigError(f"{where}.{exc}") from None
        lists = {}
        for key in ("keywords", "handles", "hashtags", "exclude"):
            value = t.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
                raise BrandConfigError(f"{where}.{key} must be a list of non-empty strings")
            lists[key] = tuple(value)
        if not (lists["keywords"] or lists["handles"] or lists["hashtags"]):
            raise BrandConfigError(f"{where} ({name}) needs at least one of keywords, handles, hashtags")
        rules.append(BrandRule(name=name, **lists))
    return rules
