from __future__ import annotations

import pytest

from connectors.brands import BrandConfigError, BrandMatcher, BrandRule, rules_from_config

APPLE = BrandRule("apple", keywords=("apple", "iphone"), handles=("@Apple",), hashtags=("apple",),
                  exclude=("apple pie", "big apple"))
ACME = BrandRule("acme", keywords=("acme corp", "acme"))
CAFE = BrandRule("cafe", keywords=("Café Noir",))


@pytest.mark.parametrize("text, brands", [
    ("My iPhone died again", ["apple"]),
    ("APPLE support is slow", ["apple"]),
    ("baked an apple pie today", []),
    ("apple pie recipe, thanks @Apple!", ["apple"]),  # an explicit handle beats an exclusion
    ("#Apple event tonight", ["apple"]),
    ("pineapple and applesauce", []),
    ("iphones", []),
    ("acme and apple both down", ["apple", "acme"]),
    ("ACME Corp. recall", ["acme"]),
    ("@acmefan says hi", []),
    ("met at CAFÉ noir!", ["cafe"]),
    ("café   noir", ["cafe"]),
    ("nothing to see", []),
])
def test_match(text: str, brands: list[str]) -> None:
    m = BrandMatcher([APPLE, ACME, CAFE])
    assert m.match(text) == brands


def test_unmatched_are_counted() -> None:
    m = BrandMatcher([ACME])
    m.match("acme")
    m.match("zzz")
    m.match("yyy")
    assert m.unmatched == 2


def test_rules_from_config_and_errors() -> None:
    (rule,) = rules_from_config([{"name": "apple", "keywords": ["apple"], "exclude": ["apple pie"]}])
    assert rule == BrandRule("apple", keywords=("apple",), exclude=("apple pie",))
    with pytest.raises(BrandConfigError, match=r"brands\[0\]\.name"):
        rules_from_config([{"keywords": ["x"]}])
    with pytest.raises(BrandConfigError, match=r"brands\[0\]\.keywrds"):
        rules_from_config([{"name": "x", "keywrds": ["x"]}])
    with pytest.raises(BrandConfigError, match="at least one of keywords"):
        rules_from_config([{"name": "x", "exclude": ["y"]}])
    with pytest.raises(BrandConfigError, match=r"brands\[0\]\.keywords must be a list"):
        rules_from_config([{"name": "x", "keywords": "x"}])
    with pytest.raises(BrandConfigError, match="unique"):
        BrandMatcher([ACME, ACME])
    for name in ("..", "a/b", "ac\u200bme", "acme\u202e"):  # names the wire format refuses (see test_mention)
        with pytest.raises(BrandConfigError, match=r"brands\[0\]\.name must not contain"):
            rules_from_config([{"name": name, "keywords": ["x"]}])
