"""report.md layout (evaluate/markdown.py): bucket order, separate ungated and gated tables, figure links."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tailsynth.evaluate.measures.fidelity import fidelity_report
from tailsynth.evaluate.report.markdown import GATED_HEADING, UNGATED_HEADING, report_markdown

COLUMNS = {"price": "numerical", "country": "categorical"}


def _table(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    return pd.DataFrame({
        "price": rng.normal(10, 2, rows),
        "country": rng.choice(["uk", "fr"], rows),
        "pop_bucket": rng.choice(["head", "torso", "tail"], rows),
    })


def _gate_outcome(passed: bool, mean_ks: float | None) -> dict:
    headline = {"mean_ks": mean_ks, "mean_tvd": None, "corr_diff": None, "contingency_distance": None, "auc": 0.55}
    return {"passed": passed, "verdict": "passed" if passed else "failed", "requested_rows": 1000,
            "candidates": 12345, "accepted": 1000 if passed else 10, "acceptance_rate": 0.5,
            "rejected": {"support": 3, "discriminator": 7, "privacy": 0},
            "failures": [] if passed else ["column price: KS 0.5"],
            "before": dict(headline), "after": headline if passed else dict.fromkeys(headline),
            "floor": {**headline, "mean_ks": 0.031}}


def _report() -> dict:
    rng = np.random.default_rng(0)
    report = fidelity_report(_table(rng, 600), _table(rng, 600), COLUMNS, holdout=_table(rng, 600), auc=False)
    report["bucket_order"] = ["head", "torso", "tail"]
    # Insertion order deliberately not head, torso, tail: the Markdown must follow bucket_order.
    report["gate"] = {"tail": _gate_outcome(False, None), "head": _gate_outcome(True, 0.0421),
                      "torso": _gate_outcome(True, 0.0512)}
    return report


def test_buckets_follow_the_configured_order_in_both_parts() -> None:
    report = _report()
    assert list(report["by_bucket"]) == ["head", "tail", "torso"]  # fidelity_report sorts by name
    text = report_markdown(report, "Demo")
    ungated = [text.index(f"### Bucket {b}") for b in ("head", "torso", "tail")]
    gated = [text.index(f"### Gated {b}:") for b in ("head", "torso", "tail")]
    assert ungated == sorted(ungated) and gated == sorted(gated)


def test_ungated_and_gated_measures_sit_in_separate_labelled_tables() -> None:
    text = report_markdown(_report(), "Demo")
    ungated_at, gated_at = text.index(UNGATED_HEADING), text.index(GATED_HEADING)
    assert ungated_at < text.index("### Overall") < text.index("### Bucket head") < gated_at
    ungated, gated = text[:gated_at], text[gated_at:]
    assert "| measure | synthetic | real-vs-real floor |" in ungated and "gated rows" not in ungated
    assert "| measure | gated rows | real-vs-real floor |" in gated
    assert "| mean KS distance (numerical) | 0.0421 | 0.031 |" in gated  # head's gated rows, not "before"
    assert "before gating" not in text
    tail = gated[gated.index("### Gated tail"):]
    assert tail.startswith("### Gated tail: refused (failed)")
    assert "No gated rows were measured" in tail and "- column price: KS 0.5" in tail
    assert "1,000 of 12,345 candidates passed the filters (requested 1,000)" in gated
    assert "3 by support, 7 by discriminator, 0 by privacy" in gated


def test_figures_are_linked_relative_to_the_report() -> None:
    text = report_markdown(_report(), "Demo", figures={"price": "report_figures/hist_price.png"})
    assert "![price](report_figures/hist_price.png)" in text
    assert text.index("## Figures") > text.index(GATED_HEADING)
    assert "## Figures" not in report_markdown(_report(), "Demo")


def test_a_report_without_a_gate_keeps_plain_sections() -> None:
    report = _report()
    del report["gate"]
    text = report_markdown(report, "Demo")
    assert UNGATED_HEADING not in text and "## Overall" in text and "## Bucket torso" in text
