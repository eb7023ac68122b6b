"""The complaint and crisis lexicon that crisiswatch adds to VADER, and why each part exists.

VADER's lexicon was rated by people reading general social-media text.  Mentions of a brand are a narrower genre:
most negative ones are complaints, and complaints are written in the vocabulary of service failures (delays,
outages, being on hold) and in a polite register ("please help", "thanks") that VADER reads as praise.  Each group
below answers one such gap.  Valences are on VADER's -4..+4 scale and were set by analogy with entries VADER's
raters scored (for instance "stranded" next to VADER's "stuck" -1.0 and "broken" -2.1), not fitted to labels.

Words (:attr:`Domain.words`, single tokens, matched lower-case after VADER's punctuation stripping):

- *inflections VADER lacks* — it rates "delay", "cancel", "crash", "injury" but not "delays", "canceled",
  "crashing", "injuries"; these take the rated form's valence.
- *disruption* (travel, delivery, any booked service) — being stranded, overbooked, diverted, late.
- *service failure* — unhelpful or unresponsive staff, the runaround, disconnected calls, nightmares and hassles.
- *outages and software* — outage, downtime, glitches, unreliable systems: the vocabulary of an IT incident.
- *security and privacy* — breach, compromised, phishing, unauthorized, theft: the vocabulary of a data breach.
- *safety and recalls* — recall, unsafe, overheating, exploded, contaminated, hazard: the vocabulary of a recall.
  In brand talk "recall" is far more often a product recall than remembering.
- *money* — overcharged, rip-offs.
- *loyalty is a preface, not praise* — "loyal" (VADER +2.1) carries no valence: in brand talk it opens a complaint
  ("I am a loyal customer and…"; 16 of the 20 airline dev tweets with "loyal" are negative, all 16 scored
  positive by stock VADER).
- *requests, not praise* — "please", "help", "pls", "plz" make a request; VADER scores them +0.3..+1.7, so a plea
  for help with a cancelled flight came out positive.  Here they carry no valence ("helpful", "helped" keep theirs).

Phrases (:attr:`Domain.phrases`, consecutive words; VADER splits on spaces, so it can never match these itself):

- *VADER's own multi-word entries* ("fed up", "screwed up", "can't stand"): rated, but unreachable by its tokenizer.
- *complaint idioms* — on hold, hung up, still waiting, thanks for nothing, "a joke", "kidding me", what gives,
  "how you treat" (VADER's "treat" +1.7; all 3 airline dev tweets with it are negative), "rip off" (6 of 6).
- *churn intent* — never again, never flying/using/buying, lost a customer, taking my business elsewhere.
- *outages* — "is down", "went down", "still down", locked out, timed out.
- *money* — double charged, charged twice, hidden fees, want a refund, want my money back; price increases and
  hikes (VADER's "increase" is +1.3: "another price increase" came out positive).  The labelled sets hold no
  price increase, so this entry rests on the domain alone: a customer reading of a price rise is bad news.
- *fire and safety* — caught fire, catch fire.
- *names that are not praise* (valence 0): "customer care", "support team", "tech support", "credit card", "gift
  card"… name departments and things; VADER scores "care", "support", "credit", "gift" positive.
- *"like" as a preposition* (valence 0): "feels like", "looks like", "more like", "would like" compare or request;
  VADER scores every "like" +1.5, so "feels like a cattle car" came out positive.

Rules:

- *handles carry no sentiment* (:attr:`Domain.mute_handles`): ``@united`` is a name, but VADER strips the "@" and
  scores the word "united" (+1.8), so every tweet to United started positive.
- *failure when negated* (:attr:`Domain.failures`): "working", "arrived", "refunded", "answered"… are neutral on
  their own, but negated ("not working", "never arrived", "hasn't been refunded") they are the complaint itself.
  The negation test is VADER's own (a negation word or "n't" within the three words before).
- *time lost waiting* (:attr:`Domain.durations`): an amount of time ("2 hours", "45 mins", "an hour", "3hrs") near
  a word of waiting ("on hold", "waited", "delayed", "stuck", "still"…) is time a customer lost.  Without the
  waiting context durations are neutral ("sat at IHOP for three hours").
- *politeness does not turn a complaint into praise* (:attr:`Domain.courtesy`): when the rest of a message is
  negative, its thanks and hopes count :attr:`Domain.courtesy_weight_in_complaint` of their valence — "thanks for
  the update, still stuck for 3 hours" is a complaint, "thanks, great flight" is unchanged.

How it was checked: ``benchmarks/sentiment.py``.  The groups above came from reading why stock VADER missed the
complaints of a development split (half of the airline tweets, chosen by a hash of the tweet id, and SemEval's val
split).  Choices made by comparing scores there: the courtesy weight (0.25, against 0.5 and 0) and its trigger
(the rest of the message negative, against any negative word), making requests neutral, and requiring a waiting
word next to a duration (without one, general tweets lost precision; "sat" was dropped from the waiting words for
the same reason).  The benchmark reports the other halves, which were not looked at while writing this, and
checks that VADER's correlation with human ratings holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Domain:
    """What crisiswatch adds to VADER.  The empty Domain gives stock VADER's scores exactly."""

    words: dict[str, float] = field(default_factory=dict)  # added to VADER's lexicon; 0.0 removes a word from it
    phrases: dict[str, float] = field(default_factory=dict)  # two or more words, scored like one lexicon word
    mute_handles: bool = False  # @handles are names, never sentiment words
    failures: dict[str, float] = field(default_factory=dict)  # valence of a word outside the lexicon when negated
    durations: dict[str, float] = field(default_factory=dict)  # time unit -> valence, after an amount, when waiting
    waiting_words: frozenset[str] = frozenset()
    waiting_window: tuple[int, int] = (8, 3)  # words before and after a duration searched for a waiting word
    courtesy: frozenset[str] = frozenset()
    courtesy_weight_in_complaint: float = 1.0


INFLECTIONS = {"delays": -1.3, "canceled": -1.0, "cancelling": -1.0, "canceling": -1.0, "cancellation": -1.0,
               "cancellations": -1.0, "crashed": -1.7, "crashes": -1.7, "crashing": -1.7, "injuries": -1.8,
               "inconvenienced": -1.5, "disgraceful": -2.2, "lacking": -1.3}
DISRUPTION = {"stranded": -2.0, "overbooked": -1.5, "oversold": -1.2, "diverted": -0.8, "late": -0.9,
              "mishandled": -1.5, "undelivered": -1.5}
SERVICE = {"unhelpful": -1.8, "unresponsive": -1.6, "runaround": -1.5, "disconnected": -1.0, "understaffed": -1.2,
           "nightmare": -2.5, "hassle": -1.5}
OUTAGES = {"outage": -2.0, "outages": -2.0, "downtime": -1.5, "glitch": -1.2, "glitches": -1.2, "glitchy": -1.5,
           "buggy": -1.5, "unreliable": -1.8}
SECURITY = {"breach": -2.0, "breached": -2.0, "compromised": -1.8, "phishing": -1.8, "unauthorized": -1.5,
            "theft": -2.0}
SAFETY = {"recall": -1.0, "recalled": -1.5, "recalls": -1.5, "unsafe": -2.0, "overheated": -1.5, "overheating": -1.5,
          "exploded": -2.0, "contaminated": -2.0, "hazard": -1.5}
MONEY = {"overcharged": -1.8, "ripoff": -2.2}
LOYALTY = {"loyal": 0.0}
REQUESTS = {"please": 0.0, "help": 0.0, "pls": 0.0, "plz": 0.0}

VADER_MULTIWORD = {"fed up": -1.8, "screwed up": -1.5, "can't stand": -2.0}
COMPLAINT_IDIOMS = {"on hold": -1.2, "hung up": -1.5, "hang up": -1.2, "hangs up": -1.5, "hanging up": -1.5,
                    "still waiting": -1.5, "thanks for nothing": -2.5, "a joke": -1.5, "kidding me": -1.5,
                    "what gives": -1.2, "how you treat": -1.5, "how they treat": -1.5, "rip off": -2.2}
CHURN = {"never again": -2.0, "never fly": -1.5, "never flying": -1.5, "never use": -1.5, "never using": -1.5,
         "never buy": -1.5, "never buying": -1.5, "never order": -1.5, "never ordering": -1.5,
         "lost a customer": -1.8, "lost my business": -1.8, "my business elsewhere": -1.8}
OUTAGE_PHRASES = {"is down": -1.2, "are down": -1.2, "was down": -1.2, "went down": -1.2, "still down": -1.5,
                  "been down": -1.2, "locked out": -1.5, "timed out": -1.0, "timing out": -1.0}
MONEY_PHRASES = {"double charged": -1.8, "charged twice": -1.8, "hidden fees": -1.5, "want a refund": -1.2,
                 "want my money back": -1.5,
                 **{f"{what} {rise}": -1.5 for what in ("price", "prices", "fee", "fees", "rate")
                    for rise in ("increase", "increases", "hike", "hikes", "rise", "rises")},
                 **{f"{verb} {what}": -1.5 for verb in ("raising", "raised", "raise", "raises", "hiking", "hiked")
                    for what in ("prices", "the price", "their prices", "fees")}}
FIRE = {"caught fire": -2.5, "catch fire": -2.5, "catches fire": -2.5}
NAMES = {name: 0.0 for name in ("customer care", "customer support", "tech support", "support team", "support staff",
                                 "support desk", "support line", "support agent", "credit card", "gift card")}
LIKE_AS_PREPOSITION = {f"{verb} like": 0.0 for verb in (
    "feel", "feels", "felt", "feeling", "look", "looks", "looked", "looking", "seem", "seems", "seemed", "sound",
    "sounds", "sounded", "more", "just", "would", "is", "was")}

FAILURES = {**{w: -1.5 for w in ("work", "works", "working", "worked", "function", "functioning", "load", "loading",
                                 "received", "arrived", "delivered", "answered", "responded", "replied", "resolved",
                                 "fixed", "refunded", "heard", "found")},
            **{w: -1.0 for w in ("able", "available")}}
DURATIONS = {unit: -0.8 for unit in ("minutes", "mins", "min", "hour", "hours", "hrs", "hr", "h", "days", "weeks")}
WAITING = frozenset(("wait", "waiting", "waited", "hold", "holding", "delay", "delayed", "delays", "late", "stuck",
                     "sitting", "tarmac", "line", "queue", "still", "been"))
COURTESY = frozenset(("thanks", "thank", "thx", "ty", "appreciate", "appreciated", "hope", "hopefully", "hoping"))

COMPLAINTS = Domain(
    words={**INFLECTIONS, **DISRUPTION, **SERVICE, **OUTAGES, **SECURITY, **SAFETY, **MONEY, **LOYALTY, **REQUESTS},
    phrases={**VADER_MULTIWORD, **COMPLAINT_IDIOMS, **CHURN, **OUTAGE_PHRASES, **MONEY_PHRASES, **FIRE, **NAMES,
             **LIKE_AS_PREPOSITION},
    mute_handles=True,
    failures=FAILURES,
    durations=DURATIONS,
    waiting_words=WAITING,
    courtesy=COURTESY,
    courtesy_weight_in_complaint=0.25,
)
"""The domain :class:`listener.sentiment.Scorer` uses by default."""
