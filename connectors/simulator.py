"""A deterministic simulator of brand mentions, with injectable crises.

Used by ``crisiswatch demo``, the tests and the benchmarks.  The same
:class:`Simulation` always yields the same mentions (ids, texts, times).

Volume per brand and minute is Poisson with a gamma-distributed rate
(overdispersed, as real social counts are), shaped by a daily rhythm (a
trough at night, a peak in the afternoon, UTC) and a quieter weekend.  Most
talk is neutral or positive with a steady share of ordinary complaints.  An
:class:`InjectedCrisis` adds, from its start, extra negative mentions about
one theme that ramp up, hold, and decay — the shape of a real storm.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import numpy as np

from .mention import Mention

PRODUCTS = ("app", "phone", "order", "delivery", "account", "subscription", "store", "support team", "update")

POSITIVE = (
    "Really happy with my {brand} {product}, works great!",
    "Shout out to the {brand} {product}, excellent experience today",
    "Love the new {brand} {product} :) best one yet",
    "{brand} {product} is awesome, thanks for the quick help",
    "Great job {brand}, the {product} is fantastic",
    "Got my {brand} {product} and I'm impressed. Nice work",
)
NEUTRAL = (
    "{brand} {product} announcement scheduled for next week",
    "Anyone know when the {brand} {product} opens on Sunday?",
    "Reading about the {brand} {product} roadmap",
    "{brand} posted their quarterly numbers for the {product}",
    "Switching my {product} to {brand} tomorrow",
    "Comparing the {brand} {product} with the other options",
)
NEGATIVE = (
    "My {brand} {product} is slow again, annoying",
    "Waited 40 minutes for {brand} {product}, bad service",
    "Not happy with the {brand} {product} lately",
    "{brand} {product} keeps crashing, frustrating",
    "Disappointed by the {brand} {product} price increase",
    "Why is the {brand} {product} so hard to use, terrible",
)

THEMES: dict[str, tuple[str, ...]] = {
    "data breach": (
        "{brand} data breach exposed my password and card details, this is outrageous",
        "Just got an email from {brand} about a data breach. My personal data leaked. Furious",
        "How did {brand} let a data breach happen?? Hackers have our passwords. Disgraceful",
        "{brand} hiding the data breach for weeks is unacceptable. Stolen credit card numbers everywhere",
        "Deleting my {brand} account after this data breach. Terrible security, awful response",
        "The {brand} data breach is a disaster, hackers stole customer passwords. Shame on you",
    ),
    "outage": (
        "{brand} outage again, nothing works and support is useless. Terrible",
        "Is {brand} down?? Outage for hours, I can't pay anything. Angry",
        "Third {brand} outage this month, lost a whole day of work. Awful",
        "{brand} outage means I missed my flight check-in. Ridiculous and unacceptable",
        "The {brand} outage is a joke, no status update, no apology. Worst service",
    ),
    "product recall": (
        "{brand} product recall: my charger overheated and burned the desk. Dangerous!",
        "Scary. {brand} recall says the charger can catch fire. Why sell unsafe products?",
        "{brand} recall notice came too late, the battery exploded. Horrible",
        "Furious about the {brand} recall, unsafe chargers in every home. Disgusting",
        "The {brand} product recall proves they knew the charger was dangerous. Shameful",
    ),
}

SOURCES = ("twitter", "reddit", "mastodon", "bluesky", "news")


@dataclass(frozen=True)
class BrandProfile:
    name: str
    mentions_per_minute: float = 3.0
    """Average over a weekday; the daily rhythm swings around it."""
    negative_share: float = 0.15
    positive_share: float = 0.35


@dataclass(frozen=True)
class InjectedCrisis:
    brand: str
    start: datetime
    theme: str = "data breach"
    duration_minutes: int = 120
    peak_per_minute: float = 12.0
    """Extra negative mentions per minute at the height of the crisis."""
    ramp_minutes: int = 8

    def extra_rate(self, minutes_since_start: float) -> float:
        t = minutes_since_start
        if t < 0 or t >= self.duration_minutes:
            return 0.0
        if t < self.ramp_minutes:
            return self.peak_per_minute * (t + 1) / self.ramp_minutes
        hold = self.duration_minutes / 3
        if t < self.ramp_minutes + hold:
            return self.peak_per_minute
        # exponential decay over the remaining time
        rest = t - self.ramp_minutes - hold
        return self.peak_per_minute * math.exp(-3.0 * rest / max(self.duration_minutes - self.ramp_minutes - hold, 1))


@dataclass(frozen=True)
class Simulation:
    brands: Sequence[BrandProfile]
    start: datetime
    minutes: int
    seed: int = 7
    crises: Sequence[InjectedCrisis] = field(default_factory=tuple)
    dispersion_shape: float = 20.0
    """Gamma shape of the per-minute rate; lower = burstier."""
    name: str = "simulator"

    def items(self) -> Iterator[Mention]:
        return simulate(self)


def rhythm(moment: datetime) -> float:
    """Relative volume at a moment: daily cycle (peak 15:00 UTC) times a quieter weekend."""
    hour = moment.hour + moment.minute / 60
    daily = 1.0 + 0.6 * math.cos(2 * math.pi * (hour - 15) / 24)
    weekly = 0.75 if moment.weekday() >= 5 else 1.0
    return daily * weekly


def simulate(sim: Simulation) -> Iterator[Mention]:
    """Yield the simulation's mentions in event-time order."""
    rng = np.random.default_rng(sim.seed)
    start = sim.start.astimezone(timezone.utc).replace(second=0, microsecond=0)
    counter = 0
    for minute in range(sim.minutes):
        at = start + timedelta(minutes=minute)
        shape = rhythm(at)
        batch: list[tuple[float, Mention]] = []
        for brand in sim.brands:
            mean = brand.mentions_per_minute * shape
            rate = rng.gamma(sim.dispersion_shape, mean / sim.dispersion_shape) if mean > 0 else 0.0
            n = int(rng.poisson(rate))
            for _ in range(n):
                roll = rng.random()
                if roll < brand.negative_share:
                    template = NEGATIVE[rng.integers(len(NEGATIVE))]
                elif roll < brand.negative_share + brand.positive_share:
                    template = POSITIVE[rng.integers(len(POSITIVE))]
                else:
                    template = NEUTRAL[rng.integers(len(NEUTRAL))]
                counter += 1
                batch.append(_mention(rng, sim.seed, counter, brand.name, template, at, crisis=False))
            for crisis in sim.crises:
                if crisis.brand != brand.name:
                    continue
                since = (at - crisis.start.astimezone(timezone.utc)).total_seconds() / 60
                extra = int(rng.poisson(crisis.extra_rate(since)))
                themed = THEMES[crisis.theme]
                for _ in range(extra):
                    counter += 1
                    batch.append(_mention(rng, sim.seed, counter, brand.name, themed[rng.integers(len(themed))],
                                          at, crisis=True))
        batch.sort(key=lambda pair: pair[0])
        for _, mention in batch:
            yield mention


def _mention(rng: np.random.Generator, seed: int, counter: int, brand: str, template: str, minute: datetime,
             crisis: bool) -> tuple[float, Mention]:
    offset = float(rng.random() * 60)
    product = PRODUCTS[rng.integers(len(PRODUCTS))]
    author_pool = 50_000 if crisis else 5_000
    author = f"user{int(rng.integers(author_pool))}"
    reach = int(rng.lognormal(5.0, 1.6))
    source = SOURCES[rng.integers(len(SOURCES))]
    created = minute + timedelta(seconds=int(offset))
    mention = Mention(
        id=f"sim{seed}:{counter}",
        source=source,
        brand=brand,
        text=template.format(brand=brand.capitalize(), product=product),
        created_at=created,
        author=f"@{author}",
        url=f"https://example.com/{source}/{seed}/{counter}",
        lang="en",
        reach=reach,
        is_repost=bool(rng.random() < 0.1),
    )
    return created.timestamp() + (offset % 1), mention


def demo_simulation(seed: int = 7) -> Simulation:
    """The demo's stream: three brands over 32 hours, a data breach at acme on day two (and its resolution)."""
    start = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
    return Simulation(
        brands=(
            BrandProfile("acme", mentions_per_minute=4.0),
            BrandProfile("globex", mentions_per_minute=6.0),
            BrandProfile("initech", mentions_per_minute=1.5),
        ),
        start=start,
        minutes=32 * 60,
        seed=seed,
        crises=(InjectedCrisis("acme", start + timedelta(hours=26, minutes=0), "data breach", 150, 14.0),),
    )
