"""The complaint-aware scorer: complaints stock VADER misses, what must not change, and VADER kept exact."""

from __future__ import annotations

import csv
import io
import json
from itertools import islice
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

from connectors.simulator import NEGATIVE, NEUTRAL, POSITIVE, PRODUCTS, THEMES
from listener.lexicon import COMPLAINTS, Domain
from listener.sentiment import NEGATIVE_AT, POSITIVE_AT, Analyzer, Polarity, Scorer, label
from listener.sentiment_cli import main

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
VADER = SentimentIntensityAnalyzer()
CRISIS = Scorer()
STOCK = Scorer(lexicon="stock")

# Written for this test (not taken from the benchmark sets); each is a complaint stock VADER scores non-negative.
MISSED_COMPLAINTS = (
    "@united still waiting for my bag, on hold for 2 hours now",  # handle read as "united", no complaint words
    "@acme please help, my order never arrived",  # a plea read as praise; a negated outcome
    "Thanks for nothing @acme",  # sarcasm
    "@acme flight Cancelled and now we are stranded in Denver, please help",
    "Your app is not working again",
    "@acme outage for 3 hours and still no word from support",
    "The login page keeps timing out, what gives",
    "Been waiting 45 mins for a refund call back. Thanks @acme",  # politeness wrapped around a complaint
    "@acme your customer care hung up on me twice",
    "Data breach at @acme, my account was compromised",
    "Thanks for the update. Still stuck at the gate for 3 hours",
    "Thank you for the reply, my bag has still not arrived",
    "I have been a loyal customer for 12 years and you lost my booking",  # a preface read as praise
    "Is this how you treat your customers?",
    "Another @acme price increase. Same plan, 20% more.",  # "increase" is +1.3 in VADER
    "They are raising prices again, what a rip off",
)
CLEAR_POSITIVES = (
    "Thanks @acme, great flight and friendly crew!",
    "Love the new app, works great",
    "@acme thank you for the quick refund, excellent service",
    "Got my bag back today, thanks so much for your help!",
    "thanks!",
    "Loyal customer here and @acme support sorted it in five minutes, great job",
)


@pytest.mark.parametrize("text", MISSED_COMPLAINTS)
def test_complaints_stock_vader_misses_are_negative(text: str) -> None:
    assert STOCK.score(text) > NEGATIVE_AT
    assert CRISIS.score(text) <= NEGATIVE_AT


@pytest.mark.parametrize("text", CLEAR_POSITIVES)
def test_clear_positives_stay_positive(text: str) -> None:
    assert CRISIS.score(text) >= POSITIVE_AT


@pytest.mark.parametrize("text, expected", [
    ("Your app is not working", "negative"),  # a negated outcome is the complaint
    ("my parcel never arrived", "negative"),
    ("the app is working again", "neutral"),  # the same words, not negated, say nothing
    ("my parcel arrived today", "neutral"),
    ("it was not helpful", "negative"),  # VADER's own negation still works
    ("Not bad at all", "positive"),
    ("I can't complain", "positive"),
    ("no help at all", "negative"),
])
def test_negation(text: str, expected: str) -> None:
    assert label(CRISIS.score(text)) == expected


def test_handles_and_names_carry_no_sentiment() -> None:
    assert STOCK.score("@united") > POSITIVE_AT and CRISIS.score("@united") == 0.0
    assert CRISIS.score(".@united") == 0.0
    assert CRISIS.score("called the support team") == 0.0
    assert CRISIS.score("I would like a window seat") == 0.0
    assert CRISIS.score("I like it") == STOCK.score("I like it") > 0


def test_durations_count_only_when_someone_waited() -> None:
    assert CRISIS.score("on the tarmac for 3hrs") <= NEGATIVE_AT
    assert CRISIS.score("we talked at the diner for three hours") == 0.0


def test_crisis_vocabulary_is_negative() -> None:
    for text in ("acme outage", "acme data breach", "acme product recall", "the charger can catch fire"):
        assert CRISIS.score(text) <= NEGATIVE_AT, text


def test_simulated_mentions_keep_their_intended_sentiment() -> None:
    """The demo and the tests build crises from these templates: negatives must count, neutrals must not."""
    groups = {"positive": POSITIVE, "neutral": NEUTRAL, "negative": NEGATIVE + sum(THEMES.values(), ())}
    for expected, templates in groups.items():
        for template in templates:
            for product in PRODUCTS:
                text = template.format(brand="Acme", product=product)
                assert label(CRISIS.score(text)) == expected, text


def test_score_many_equals_score_and_stays_in_range() -> None:
    texts = [*MISSED_COMPLAINTS, *CLEAR_POSITIVES, "", "WORST. AIRLINE. EVER!!!!"]
    scores = CRISIS.score_many(texts)
    assert scores == [CRISIS.score(t) for t in texts]
    assert all(-1.0 <= s <= 1.0 for s in scores)


def test_unknown_lexicon_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown lexicon"):
        Scorer(lexicon="nope")  # type: ignore[arg-type]


# --- VADER itself is kept exactly --------------------------------------------

TRICKY = (
    "VADER is VERY SMART, uber handsome, and FRIGGIN FUNNY!!!", "VADER is not smart, handsome, nor funny.",
    "At least it isn't a horrible book.", "The book was only kind of good.",
    "Today only kinda sux! But I'll get by, lol",
    "The plot was good, but the characters are uncompelling and the dialog is not great.",
    "Make sure you :) or :D today!", "Catch utf-8 emoji such as 💘 and 💋 and 😁", "Not bad at all",
    "Sentiment analysis has never been this good!", "Most automated sentiment analysis tools are shit.",
    "With VADER, sentiment analysis is the shit!", "On the other hand, VADER is quite bad ass",
    "Without a doubt, excellent idea.", "Roger Dodger is one of the least compelling variations on this theme.",
    "no no good", "good but bad but good", "yeah right, great", "kiss of death", "it is not that kind of bad",
    "x😀y😀", "", "   ", "???", "GOOD good",
)
VOCABULARY = ("good", "bad", "great", "hate", "love", "not", "no", "never", "but", "very", "kind", "of", "least",
              "at", "so", "this", "without", "doubt", "the", "shit", "bomb", "yeah", "right", "GOOD", "BAD",
              "isn't", "sort", "just", "enough", "!", "?", ":)", "😁", "💔", "@united", "thanks", "please", "or")


def assert_same(text: str) -> None:
    expected = VADER.polarity_scores(text)
    got = Analyzer(Domain()).polarity(text)
    assert json.dumps(got._asdict()) == json.dumps(expected), text  # also tells -0.0 from 0.0


@pytest.mark.parametrize("text", TRICKY)
def test_reimplementation_with_the_empty_domain_is_vader(text: str) -> None:
    assert_same(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VOCABULARY), max_size=14).map(" ".join))
def test_reimplementation_is_vader_on_generated_text(text: str) -> None:
    assert_same(text)


@pytest.mark.skipif(not (DATA / "twitter_us_airline_sentiment").exists(), reason="shared data not present")
def test_reimplementation_is_vader_on_real_tweets() -> None:
    bare = Analyzer(Domain())
    with open(DATA / "twitter_us_airline_sentiment" / "Tweets.csv", encoding="utf-8", newline="") as f:
        for row in islice(csv.DictReader(f), 1500):
            assert bare.polarity(row["text"]) == Polarity(**VADER.polarity_scores(row["text"])), row["text"]


def test_stock_mode_is_vadersentiment() -> None:
    for text in (*MISSED_COMPLAINTS, *CLEAR_POSITIVES, *TRICKY):
        assert STOCK.score(text) == VADER.polarity_scores(text)["compound"]
        assert STOCK.polarity(text) == Polarity(**VADER.polarity_scores(text))


def test_default_scorer_uses_the_complaint_domain() -> None:
    text = "@acme still waiting, on hold for 2 hours"
    assert CRISIS.score(text) == Analyzer(COMPLAINTS).polarity(text).compound


# --- the command -------------------------------------------------------------


def run_cli(text: str, stock: bool = False) -> list[dict]:
    out = io.StringIO()
    assert main(io.StringIO(text), out, stock=stock) == 0
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_cli_prints_one_json_object_per_input_line() -> None:
    rows = run_cli("@acme on hold for 2 hours\n\nGreat service, thanks!\r\n   \nlast line without newline")
    assert len(rows) == 5
    assert [r["label"] for r in rows] == ["negative", "neutral", "positive", "neutral", "neutral"]
    assert rows[1] == {"compound": 0.0, "label": "neutral", "neg": 0.0, "neu": 0.0, "pos": 0.0}
    assert rows[0]["compound"] == CRISIS.score("@acme on hold for 2 hours")
    assert all(set(r) == {"compound", "label", "neg", "neu", "pos"} for r in rows)


def test_cli_stock_mode() -> None:
    [row] = run_cli("@acme on hold for 2 hours\n", stock=True)
    assert row["compound"] == VADER.polarity_scores("@acme on hold for 2 hours")["compound"]


def test_cli_with_no_input_prints_nothing() -> None:
    assert run_cli("") == []
