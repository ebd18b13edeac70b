"""A cheap discriminator AUC: one network fitted on part of each side, scored on the rest.

`detection.discriminator_auc` fits one network per fold (three by default) and is what a verdict needs:
the gate refuses on it. A report table or a training-time monitor needs a reading, not a verdict, and one
held-out split gives it for a third of the cost. The estimate is noisier (a third of the rows score it), so
it is never used to pass or refuse anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from tailsynth.evaluate.measures.detection import RowDiscriminator, roc_auc
from tailsynth.evaluate.measures.metrics import ColumnTypes, check_columns

MIN_ROWS = 10
"""Fewer rows than this on either side: no AUC (None), as `fidelity.measure` does below MIN_AUC_ROWS."""


def holdout_auc(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    columns: ColumnTypes,
    *,
    seed: int = 0,
    test_share: float = 1 / 3,
    epochs: int = 30,
    max_rows: int = 20_000,
    device: str | torch.device | None = None,
) -> float | None:
    """ROC AUC of one `RowDiscriminator` fitted on (1 - test_share) of each side, scored on the rest.

    Sides are split at random (seeded), each side on its own, so both the fitted and the scored rows hold
    both classes. 0.5: the network cannot tell the tables apart. None below `MIN_ROWS` rows per side.
    """
    scored = _scored(real, synth, columns, seed=seed, test_share=test_share, epochs=epochs, max_rows=max_rows,
                     device=device)
    return None if scored is None else roc_auc(scored[0], scored[1])


def holdout_auc_by_group(
    real: pd.DataFrame,
    synth: pd.DataFrame,
    columns: ColumnTypes,
    by: str,
    *,
    seed: int = 0,
    test_share: float = 1 / 3,
    device: str | torch.device | None = None,
) -> tuple[float | None, dict[str, float | None]]:
    """(`holdout_auc`, {group: the same network's AUC on that group's scored rows}): one network for a table
    and all its groups (column `by`, which need not be judged). A group's AUC is None below `MIN_ROWS` scored
    rows on either side. The network sees every group's rows, so within a group it is a weaker judge than one
    fitted on that group alone: use it where a reading suffices (the real-vs-real floor), not for a verdict."""
    scored = _scored(real, synth, columns, seed=seed, test_share=test_share, device=device, by=by)
    if scored is None:
        return None, {}
    labels, scores, groups = scored
    by_group = {}
    for group in pd.unique(groups):
        inside = groups == group
        enough = min(int((labels[inside] == 0).sum()), int((labels[inside] == 1).sum())) >= MIN_ROWS
        by_group[str(group)] = roc_auc(labels[inside], scores[inside]) if enough else None
    return roc_auc(labels, scores), by_group


def _scored(
    real: pd.DataFrame, synth: pd.DataFrame, columns: ColumnTypes, *, seed: int, test_share: float,
    epochs: int = 30, max_rows: int = 20_000, device: str | torch.device | None = None, by: str | None = None,
) -> tuple[np.ndarray, ...] | None:
    """(labels [m] 0 real / 1 synthetic, scores [m], and with `by` the scored rows' groups [m]) of the rows
    held out of the fit; None below `MIN_ROWS` rows per side."""
    check_columns(real, columns, "real")
    check_columns(synth, columns, "synthetic")
    if not 0 < test_share < 1:
        raise ValueError(f"holdout_auc: test_share must lie in (0, 1), got {test_share}")
    if min(len(real), len(synth)) < MIN_ROWS:
        return None
    rng = np.random.default_rng(seed)

    def split(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        order = rng.permutation(len(table))
        cut = max(1, int(round(len(table) * test_share)))
        return table.iloc[np.sort(order[cut:])], table.iloc[np.sort(order[:cut])]

    (real_fit, real_test), (synth_fit, synth_test) = split(real), split(synth)
    judge = RowDiscriminator(columns, seed=seed, epochs=epochs, device=device, max_rows=max_rows)
    judge.fit(real_fit, synth_fit)
    scores = np.concatenate([judge.prob_fake(real_test), judge.prob_fake(synth_test)])
    labels = np.repeat([0, 1], [len(real_test), len(synth_test)])
    if by is None:
        return labels, scores
    groups = np.concatenate([real_test[by].astype(str).to_numpy(), synth_test[by].astype(str).to_numpy()])
    return labels, scores, groups
