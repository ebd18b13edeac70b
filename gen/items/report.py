"""The cold-start report's comparison of generated rows with the real interactions of held-out items.

`held_out_section` answers "how close do the generated interactions of a new item come to the real ones?"
for the items the bundle kept out of training (`data.split.cold_items`, table `cold_holdout`): it runs
`evaluate.fidelity.measure(real rows of those items, generated rows for them)` next to a noise floor,
`measure(real rows of those items, a same-size sample of real TRAINING rows of the bucket with the same
feature values)` - i.e. how close real rows of similar known items come. Where the training rows with a
combination's feature values are fewer than the real rows to match, that part of the floor is sampled
from the whole bucket instead, and the section says so per combination.

Judged columns: the generated columns present in both tables, less the condition columns (equal by
construction) and the timestamp (cold start replaces it with one in the output window; the generated time
parts stay judged). The floor's copy_rate / dcr_median are those of the real held-out rows themselves
against the training rows (a sample OF the training rows would trivially copy them).

`taste`: `evaluate.measures.taste.pair_lift` of the generated rows' users against the held-out items' real
users -- the taste lift on items the model never trained on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from tailsynth.evaluate.measures import privacy
from tailsynth.evaluate.measures.fidelity import DCR_ROWS, measure
from tailsynth.evaluate.measures.taste import pair_lift
from tailsynth.gen.sampling import rows_where
from tailsynth.models.errors import BundleError

if TYPE_CHECKING:
    from tailsynth.gen.bundle import Bundle

def held_out_section(
    bundle: Bundle, generated: pd.DataFrame, valid: pd.DataFrame, bucket: str, *, seed: int, device: Any = None
) -> dict | None:
    """Generated vs real interactions of the new items that the bundle held out (see module docstring).

    generated: the model's rows for all new items, with the item id column. None when no item is held out.
    """
    try:
        cold = bundle.table("cold_holdout")
    except BundleError:
        return None
    id_column, features = bundle.role("item_id")[0], list(bundle.item_features)
    held = valid[valid[id_column].isin(cold[id_column])]
    if held.empty:
        return None
    real = cold[cold[id_column].isin(held[id_column])].reset_index(drop=True)
    synth = generated[generated[id_column].isin(held[id_column])].reset_index(drop=True)
    excluded = set(bundle.spec.columns) | set(bundle.role("timestamp"))
    columns = {name: kind for name, kind in bundle.columns.items()
               if name not in excluded and name in real.columns and name in synth.columns}
    if not columns:
        return None
    train = rows_where(bundle.table("train"), {bundle.spec.columns[0]: bucket})
    floor_rows, floor_parts = _floor_sample(train, real, features, np.random.default_rng(seed))
    floor = measure(real, floor_rows, columns, seed=seed, reference=train, device=device)
    sample = real if len(real) <= DCR_ROWS else real.sample(n=DCR_ROWS, random_state=seed)
    floor.update(copy_rate=privacy.copy_rate(real, train, columns),
                 dcr_median=float(np.median(privacy.dcr(sample, train, columns, device=device))),
                 copy_note="copy_rate and dcr_median of the real held-out rows against the training rows")
    real_counts = real[id_column].value_counts()
    synth_counts = synth[id_column].value_counts()
    return {
        "items": [{"item": item, "real_rows": int(real_counts.get(item, 0)),
                   "generated_rows": int(synth_counts.get(item, 0))}
                  for item in held[id_column]],  # held-out items (a handful), for the report
        "columns": list(columns),
        "note": ("measure(real interactions of the held-out items, generated rows for them) beside the floor "
                 "measure(the same real rows, a same-size sample of real training rows of the bucket with the "
                 "same feature values); timestamp not judged (replaced by the output window)"),
        "generated": measure(real, synth, columns, seed=seed, reference=train, device=device),
        "floor": floor,
        "floor_reference": floor_parts,
        "taste": held_out_taste(bundle, synth, real, seed),
    }


def held_out_taste(bundle: Bundle, synth: pd.DataFrame, real: pd.DataFrame, seed: int) -> dict | None:
    """`pair_lift` of the generated rows' users against the real users of the same held-out items (users
    positions in the taste space; activity-weighted random users as the baseline). None without a taste
    space. A report figure on items the bundle never trained on, never a setting's source."""
    try:
        space = bundle.taste
    except BundleError:
        return None
    user, item = bundle.role("user_id")[0], bundle.role("item_id")[0]
    generated_users, real_users = space.user_positions(synth[user].to_numpy()), space.user_positions(real[user].to_numpy())
    codes = pd.Index(pd.unique(real[item].astype(str)))
    generated_items, real_items = codes.get_indexer(synth[item].astype(str)), codes.get_indexer(real[item].astype(str))
    kept, known = (generated_users >= 0) & (generated_items >= 0), real_users >= 0
    lift = pair_lift(generated_users[kept], generated_items[kept], real_users[known], real_items[known],
                     space.user_activity, len(space.user_ids), seed)
    return {**lift, "note": ("share of generated (user, item) pairs that are real held-out pairs of these cold items, "
                             "over the share for activity-weighted random users (users without training rows "
                             "left out on both sides)")}


def _floor_sample(
    train: pd.DataFrame, real: pd.DataFrame, features: list[str], rng: np.random.Generator
) -> tuple[pd.DataFrame, list[dict]]:
    """As many training rows as `real` has, per feature combination: same features if enough, else the bucket."""
    if not features:
        return _take(train, len(real), rng), [{"features": {}, "real_rows": len(real), "reference": "bucket"}]
    keys = real[features].astype(object).where(real[features].notna(), None)
    parts, info = [], []
    for key, members in keys.groupby(features, sort=False, dropna=False).indices.items():  # combinations
        key = key if isinstance(key, tuple) else (key,)
        combo = {name: (None if pd.isna(value) else value) for name, value in zip(features, key)}
        same = rows_where(train, combo)
        enough = len(same) >= len(members)
        parts.append(_take(same if enough else train, len(members), rng))
        info.append({"features": combo, "real_rows": len(members), "same_feature_train_rows": len(same),
                     "reference": "same_features" if enough else "bucket"})
    return pd.concat(parts, ignore_index=True), info


def _take(table: pd.DataFrame, k: int, rng: np.random.Generator) -> pd.DataFrame:
    """k rows of `table`, without replacement when it has enough."""
    picks = rng.choice(len(table), size=k, replace=len(table) < k)
    return table.iloc[np.sort(picks)]
