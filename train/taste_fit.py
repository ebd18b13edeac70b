"""The taste space and the content->taste predictor of a run, fitted from its training rows (`fit_taste`).

Called at the end of `train.fit`; the result is stored in the bundle (`TASTE_FILE`, tensors and lists only)
and read back by `gen.load(...).taste` / `.content`. Only the training rows enter: no held-out or cold-start
row is seen by either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from tailsynth.models.content_taste import ContentTaste
from tailsynth.models.taste import TasteSpace, fit_taste_space
from tailsynth.train.config import RunConfig
from tailsynth.train.records import Records

TASTE_FILE = "taste.pt"


@dataclass(frozen=True, eq=False)
class FittedTaste:
    """What `fit_taste` returns: the space, the predictor (None without item content) and a summary."""

    space: TasteSpace
    content: ContentTaste | None
    summary: dict[str, Any]
    """Manifest entry: file, dim, users, items, predictor method, fit seconds."""

    def state(self) -> dict[str, Any]:
        """What `TASTE_FILE` holds: {"space": ..., "content": ... or None}."""
        return {"space": self.space.state(), "content": self.content.state() if self.content else None}


def fit_taste(config: RunConfig, records: Records, train_rows: pd.DataFrame,
              device: str | torch.device = "cpu") -> FittedTaste:
    """Fit `TasteSpace` on `train_rows` (user and item ids) and, when the items table has categorical
    feature columns or a text column, `ContentTaste` on its warm items."""
    started = time.perf_counter()
    user_column, item_column = records.column("user_id")[0], records.column("item_id")[0]
    users, items = _ids(train_rows[user_column]), _ids(train_rows[item_column])
    space = fit_taste_space(users, items, dim=config.taste.dim, seed=config.seed, device=device)
    space_s = time.perf_counter() - started
    content = None
    items_config = config.data.items
    feature_columns = [name for name, sdtype in items_config.columns.items() if sdtype == "categorical"] \
        if items_config is not None else []
    if records.items is not None and (feature_columns or items_config.text):
        content = ContentTaste.fit(records.items, items_config.id, feature_columns, items_config.text or None,
                                   space, config.seed, method=config.taste.method,
                                   neighbours=config.taste.neighbours, blend=config.taste.blend,
                                   pairs=(users, items), device=device)
    summary = {"file": TASTE_FILE, "dim": space.dim, "users": len(space.user_ids), "items": len(space.item_ids),
               "predictor": content.method if content else None,
               "predictor_features": [*feature_columns, *([items_config.text] if content and items_config.text else [])],
               "space_fit_s": round(space_s, 3), "fit_s": round(time.perf_counter() - started, 3)}
    return FittedTaste(space, content, summary)


def _ids(column: pd.Series) -> np.ndarray:
    """Ids as numpy values: integers as int64 (a nullable Int64 column has no missing id here), text as
    Python strings."""
    if pd.api.types.is_integer_dtype(column.dtype):
        return column.to_numpy(dtype=np.int64)
    if pd.api.types.is_float_dtype(column.dtype):
        return column.to_numpy(dtype=np.float64)
    return column.astype(object).map(str).to_numpy(dtype=object)
