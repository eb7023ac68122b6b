"""The pure detection core: baselines, signals, crisis lifecycle, explanation.

No Kafka, no network, no wall clock, no files: given a brand's minute buckets
in event-time order it produces the same alert events every time.
"""

from .buckets import MentionDigest, MinuteBucket
from .detector import CrisisDetector, DetectorConfig, Reading
from .events import AlertEvent, Severity, Status

__all__ = ["AlertEvent", "CrisisDetector", "DetectorConfig", "MentionDigest", "MinuteBucket", "Reading",
           "Severity", "Status"]
