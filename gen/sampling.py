"""`gen.sample` / `gen.sample_gated`: feature rows for a condition, straight from the conditioned generator.

`sample` returns exactly n decoded, ungated rows (the generator is conditioned directly, never by
rejection). `sample_gated` draws candidates in chunks and filters them (`gen.gate.run_gate`); its
`GateResult` holds exactly n rows when the gate passes and `rows=None` with the reasons when it refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from tailsynth.gen.bundle import Bundle
from tailsynth.gen.gate.core import GateResult, run_gate
from tailsynth.models.errors import EncodingError, GateError
from tailsynth.models.synthesize import condition_codes, synthesize
from tailsynth.train.config import GateConfig, from_dict


def sample(
    bundle: Bundle,
    n: int,
    conditions: Mapping[str, Any] | None = None,
    *,
    gate: Any = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Exactly `n` UNGATED rows conditioned on `conditions` (e.g. `{"pop_bucket": "tail"}`).

    Condition columns not given (the item columns, for a bucket-only request) are drawn per row from real
    training rows that agree with the given ones (`models.synthesize.condition_codes`).

    Gated rows come from `sample_gated`, which - like `gen.augment` and `gen.cold_start` - returns a result
    (`passed`, `rows`, `report`) instead of raising on refusal: one convention for every gated call.
    """
    if gate not in (None, False):
        raise GateError("gen.sample returns ungated rows; for gated rows call gen.sample_gated(bundle, n, conditions, "
                        "gate=...), which returns a GateResult (passed, rows, report) like gen.augment and "
                        "gen.cold_start")
    rows, _ = synthesize(
        bundle.module, bundle.encoder, bundle.spec, n, conditions,
        generator=_generator(bundle, seed), pool=bundle.pool, pool_values=bundle.pool_values,
    )
    return rows


def sample_gated(
    bundle: Bundle,
    n: int,
    conditions: Mapping[str, Any] | None = None,
    *,
    gate: GateConfig | None = None,
    seed: int = 0,
    progress: bool = True,
) -> GateResult:
    """Draw candidates for `conditions` and run them through the fidelity gate; the result holds the report."""
    conditions = dict(conditions or {})
    for column, label in conditions.items():
        if np.ndim(label) != 0:
            raise EncodingError(f"condition {column!r}: the gate needs one label per column, got a sequence")
    condition_codes(bundle.encoder, bundle.spec, 1, conditions, pool=bundle.pool)  # unknown labels fail here, clearly
    config = gate or from_dict(GateConfig, bundle.config.get("gate", {}), where=f"{bundle.path} gate config")
    generator = _generator(bundle, seed)

    def draw(k: int) -> pd.DataFrame:
        rows, _ = synthesize(
            bundle.module, bundle.encoder, bundle.spec, k, conditions, generator=generator, pool=bundle.pool, pool_values=bundle.pool_values,
            batch_size=config.chunk_rows,
        )
        return rows

    train_rows = rows_where(bundle.table("train"), conditions)
    holdout_rows = rows_where(bundle.table("holdout"), conditions)
    columns = {name: kind for name, kind in bundle.columns.items() if name not in conditions}
    label = ", ".join(f"{k}={v}" for k, v in conditions.items()) or "all"
    result = run_gate(
        draw, n, train=train_rows, holdout=holdout_rows, columns=columns, config=config,
        seed=seed, device=next(bundle.module.parameters()).device, progress=progress, label=label,
    )
    result.report["provenance"] = bundle.provenance()
    return result


def rows_where(table: pd.DataFrame, conditions: Mapping[str, Any]) -> pd.DataFrame:
    """Real rows equal to every condition (a None condition matches nulls), vectorised: the rows synthetic
    ones for those conditions are judged against."""
    keep = np.ones(len(table), dtype=bool)
    for column, label in conditions.items():
        if label is None:
            keep &= table[column].isna().to_numpy()
        else:
            keep &= (table[column] == label).to_numpy(dtype=bool, na_value=False)
    return table.loc[keep]


def _generator(bundle: Bundle, seed: int) -> torch.Generator:
    device = next(bundle.module.parameters()).device
    return torch.Generator(device=device).manual_seed(seed)
