"""The analyst notebook runs end to end on the real detector's output, so it never rots.

The inputs are produced by the same code as ``crisiswatch simulate`` and
``crisiswatch detect``; the notebook is executed in a real ``python3`` kernel
(ipykernel's, from the environment running the tests) with its parameters in
environment variables, which the kernel inherits.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from connectors.mention import encode
from connectors.simulator import demo_simulation
from listener.offline import detect_file
from listener.pipeline import PipelineSettings

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "crisis_review.ipynb"
PARAMS = ("CRISISWATCH_ALERTS", "CRISISWATCH_SERIES", "CRISISWATCH_BRAND", "CRISISWATCH_CRISIS",
          "CRISISWATCH_FIGURES")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The demo stream's mentions, alerts and per-minute series (one data breach at acme)."""
    d = tmp_path_factory.mktemp("inputs")
    mentions = d / "mentions.jsonl"
    with mentions.open("wb") as f:
        for m in demo_simulation().items():
            f.write(encode(m) + b"\n")
    alerts, series = d / "alerts.jsonl", d / "series.csv"
    result = detect_file(mentions, alerts, PipelineSettings(), series_path=series)
    assert result.events, "the demo stream must produce at least one crisis"
    return {"alerts": alerts, "series": series}


def _triggered(alerts: Path) -> dict:
    events = [json.loads(line) for line in alerts.read_text(encoding="utf-8").splitlines() if line.strip()]
    return next(e for e in events if e["status"] == "triggered")


def _execute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> nbformat.NotebookNode:
    for name in PARAMS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return nb


def _outputs(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]


def _text(nb: nbformat.NotebookNode) -> str:
    parts: list[str] = []
    for o in _outputs(nb):
        if o.output_type == "stream":
            parts.append(o.text)
        elif o.output_type in ("display_data", "execute_result"):
            parts.extend(str(o.data[k]) for k in ("text/plain", "text/markdown", "text/html") if k in o.data)
    return "\n".join(parts)


def _errors(nb: nbformat.NotebookNode) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for o in _outputs(nb) if o.output_type == "error"]


def test_notebook_reviews_the_crisis_with_figures(inputs: dict[str, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    figures = tmp_path / "fig"
    nb = _execute(tmp_path, monkeypatch, CRISISWATCH_ALERTS=str(inputs["alerts"]),
                  CRISISWATCH_SERIES=str(inputs["series"]), CRISISWATCH_FIGURES=str(figures))

    assert _errors(nb) == []
    text = _text(nb)
    triggered = _triggered(inputs["alerts"])
    assert triggered["crisis_id"] in text
    terms = [t["term"] for t in triggered["evidence"]["terms"]]
    assert terms and any(term in text for term in terms)
    assert triggered["playbook"][0] in text
    assert any("image/png" in o.get("data", {}) for o in _outputs(nb))
    saved = sorted(p.name for p in figures.glob("*.png"))
    assert saved, "CRISISWATCH_FIGURES should receive the figures"
    assert all((figures / name).stat().st_size > 10_000 for name in saved)
    assert "series is not available" not in text


def test_notebook_without_series_still_lists_crises_and_evidence(inputs: dict[str, Path], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    figures = tmp_path / "fig"
    nb = _execute(tmp_path, monkeypatch, CRISISWATCH_ALERTS=str(inputs["alerts"]),
                  CRISISWATCH_SERIES=str(tmp_path / "no-such-series.csv"), CRISISWATCH_FIGURES=str(figures))

    assert _errors(nb) == []
    text = _text(nb)
    assert "series is not available" in text
    triggered = _triggered(inputs["alerts"])
    assert triggered["crisis_id"] in text
    assert any(t["term"] in text for t in triggered["evidence"]["terms"])
    assert not list(figures.glob("*.png"))


def test_volume_notices_are_listed_apart_not_reviewed_as_crises(inputs: dict[str, Path], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A notice from the real detector (a viral spike after two days) added to the demo's alerts."""
    import numpy as np

    from detectors import CrisisDetector, Status
    from tests.detectors.helpers import bucket
    from tests.detectors.test_detector import DAY, feed, normal_minutes

    det = CrisisDetector("acme")
    feed(det, normal_minutes(np.random.default_rng(3), 0, 2 * DAY + 600))
    (notice,) = feed(det, [bucket(i, 200, 4) for i in range(2 * DAY + 600, 2 * DAY + 660)])
    assert notice.status is Status.NOTICE
    alerts = tmp_path / "alerts.jsonl"
    alerts.write_text(inputs["alerts"].read_text(encoding="utf-8") + json.dumps(notice.to_dict()) + "\n",
                      encoding="utf-8")
    nb = _execute(tmp_path, monkeypatch, CRISISWATCH_ALERTS=str(alerts),
                  CRISISWATCH_SERIES=str(inputs["series"]), CRISISWATCH_FIGURES=str(tmp_path / "fig"))

    assert _errors(nb) == []
    text = _text(nb)
    assert "1 crises, 1 volume notices" in text and notice.summary in text
    assert _triggered(inputs["alerts"])["crisis_id"] in text
    assert notice.crisis_id not in text  # not reviewed as a crisis
