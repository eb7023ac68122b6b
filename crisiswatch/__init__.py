"""crisiswatch: the distribution's own name, for ``python -m crisiswatch`` and ``crisiswatch.__version__``.

The code lives in three top-level packages, ``connectors`` (sources and the Kafka adapter), ``listener`` (the
service roles) and ``detectors`` (the pure detection core); see docs/design.md.  Why they are not (yet)
installed under this namespace: README, "Dependencies", "Packaging".
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("crisiswatch")
except PackageNotFoundError:  # pragma: no cover - a checkout on sys.path without any install
    __version__ = "0+unknown"
