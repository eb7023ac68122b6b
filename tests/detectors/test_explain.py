from __future__ import annotations

from detectors.buckets import MentionDigest
from detectors.explain import TermBackground, distinctive_terms, representative, terms_of


def test_terms_drop_stop_words_brand_urls_and_handles() -> None:
    terms = terms_of("The @Acme data breach is HUGE https://t.co/x #fail acme", frozenset({"acme"}))
    assert "data breach" in terms and "breach" in terms and "#fail" in terms
    assert not {"the", "is", "acme", "@acme", "https"} & terms


def test_distinctive_terms_name_the_new_issue_and_prefer_phrases() -> None:
    bg = TermBackground()
    for text in ["slow app again", "bad support today", "price increase annoying"] * 50:
        bg.add(text)
    fg = [terms_of(t) for t in ["product recall of the charger", "charger recall is scary",
                                "product recall, dangerous charger", "slow app again"] * 5]
    terms = [t["term"] for t in distinctive_terms(fg, bg)]
    assert terms[0] in ("product recall", "charger", "recall")
    assert "product recall" in terms
    assert "slow app" not in terms and "slow" not in terms
    assert len(terms) == len(set(terms))


def test_background_is_bounded() -> None:
    bg = TermBackground(capacity=3)
    for t in ["a1 b1", "a2 b2", "a3 b3", "a4 b4"]:
        bg.add(t)
    assert len(bg) == 3 and "a1" not in bg.counts and bg.counts["a4"] == 1
    bg.add("a4 b5")
    assert bg.counts["a4"] == 2 and "a2" not in bg.counts


def test_representative_prefers_on_topic_distinct_reached_mentions() -> None:
    samples = [
        MentionDigest("1", "slow app", "x", reach=10_000),
        MentionDigest("2", "the recall is scary", "x", reach=50),
        MentionDigest("3", "The recall is scary", "y", reach=40),
        MentionDigest("4", "recall again!", "y", reach=500),
    ]
    reps = representative(samples, ["recall"])
    assert [r["id"] for r in reps] == ["4", "2", "1"]


def test_a_copy_paste_burst_counts_once_and_cannot_name_the_crisis() -> None:
    from detectors.explain import TermBackground, distinctive_terms, documents

    copies = ["How did Acme let this happen?? Hackers everywhere. Disgraceful"] * 8
    different = [f"Acme data breach: my card number {i} was stolen, awful" for i in range(6)] + \
        ["another data breach at acme", "data breach again", "acme data breach is a disgrace"]
    docs, counts = documents(copies + different)
    assert len(docs) == len(different) + 1 and counts[0] == 8 and sum(counts) == len(copies) + len(different)
    background = TermBackground()
    for i in range(50):
        background.add(f"acme store slow today {i}")
    found = distinctive_terms(docs, background, copies=counts)
    terms = [t["term"] for t in found]
    assert terms[0] == "data breach" and not any("happen" in t or "hackers" in t for t in terms)
    assert found[0]["mentions"] == 9 and found[0]["share"] == round(9 / 17, 3)
