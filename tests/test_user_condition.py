"""`model.condition.user`: the generator conditioned on the row's user, chosen by taste before its events.

Taste decides who; the generator decides what that user does. These tests check the config's checks, that
the spec and the training values carry each row's own user's features, and that `gen augment` generates
every candidate for the very user it is written to (the property the condition exists for).
"""

from __future__ import annotations

import numpy as np
import pytest

from tailsynth import gen
from tailsynth.gen.bundle import load
from tailsynth.gen.items import written
from tailsynth.models.errors import ConfigError
from tailsynth.train.config import GateConfig, load_config
from tailsynth.train.fit import fit
from tailsynth.train.item_levels import condition_values

FAST = ["trainer.max_epochs=1", "trainer.limit_train_batches=2", "monitor.enabled=false"]


@pytest.mark.parametrize(("override", "message"), [
    ("model.condition.user=[Quantity]", r"model.condition.user: 'Quantity' is not a user-table column \(its role is "
                                        r"event\); expected one of"),
    ("model.condition.user=[nope]", r"model.condition.user: 'nope' is not a column of the records"),
    ("model.condition.user=[Country, Country]", r"model.condition.user: 'Country' is listed twice"),
    ("model.condition.columns=[category, Country]\nmodel.condition.user=[Country]",
     r"'Country' is also in model.condition.columns"),
])
def test_config_takes_only_user_table_columns(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config("configs/tiny.yaml", override.split("\n"))
    config = load_config("configs/tiny.yaml", ["model.condition.user=[Country, frequency]"])
    assert config.model.condition.user == ("Country", "frequency")


def _generated_and_written(bundle, monkeypatch) -> tuple[np.ndarray, np.ndarray, dict]:  # noqa: ANN001
    """Run an ungated augment; the generated rows' (Country, frequency) and their written users', row by row
    (writes that dropped rows whose item ran out of users are left out: their rows no longer align)."""
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    write = written.Writer.write

    def spy(self, drafts, item_codes, rng, pool=None, chosen=None):  # noqa: ANN001, ANN202
        records, stats = write(self, drafts, item_codes, rng, pool, chosen)
        if len(records) == len(drafts):
            seen.append((drafts[COLUMNS].to_numpy(dtype=object), records[COLUMNS].to_numpy(dtype=object)))
        return records, stats

    monkeypatch.setattr(written.Writer, "write", spy)
    result = gen.augment(bundle, per_item=2, gate=False, progress=False)
    assert result.rows is not None and len(result.rows) > 0 and seen
    return np.concatenate([g for g, _ in seen]), np.concatenate([u for _, u in seen]), result.report


COLUMNS = ["Country", "frequency"]


def test_each_row_is_generated_for_the_user_it_is_written_to(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """With the user's Country and frequency as conditions, the generator's own values of those columns are the
    written user's, row by row; the categorical joins the one-hot blocks, the number the continuous
    conditions, and the training values are each row's own user's. Without the condition they are not (so the
    check can fail)."""
    config = load_config("configs/tiny.yaml", ["model.condition.user=[Country, frequency]", f"out_dir={tmp_path}",
                                               "name=user", *FAST])
    bundle = load(fit(config), device="cpu")
    assert bundle.spec.columns[-1] == "Country" and bundle.spec.continuous_names == ("frequency",)
    train = bundle.table("train")
    values = condition_values(train, config.model.condition, "StockCode", ("frequency",))
    assert values is not None and np.array_equal(values[:, 0].numpy(), train["frequency"].to_numpy(dtype=float))
    generated, users, report = _generated_and_written(bundle, monkeypatch)
    assert len(generated) > 100
    assert (generated[:, 0].astype(str) == users[:, 0].astype(str)).all()
    assert np.allclose(generated[:, 1].astype(float), users[:, 1].astype(float))

    plain = load(fit(load_config("configs/tiny.yaml", [f"out_dir={tmp_path}", "name=plain", *FAST])), device="cpu")
    assert plain.user_conditions == ()
    generated, users, plain_report = _generated_and_written(plain, monkeypatch)
    assert (generated[:, 0].astype(str) != users[:, 0].astype(str)).mean() > 0.1
    # The user's columns are not item features: the items form the same feature groups with and without them,
    # and new items need only their own features.
    assert bundle.item_features == plain.item_features == ("category", "price_band")
    assert report["totals"]["groups"] == plain_report["totals"]["groups"]
    items = bundle.table("items").head(4).assign(StockCode=lambda f: "new-" + f["StockCode"].astype(str))
    cold = gen.cold_start(bundle, items, per_item=2, gate=False, progress=False)
    assert cold.rows is not None and len(cold.rows) == 8


def test_gated_candidates_try_each_chosen_user_several_times() -> None:
    """`tried_users`: an item's candidates take ceil(n / tries) users, in order, each `tries` times running (fresh
    events each time), so the filter's rejections do not push the draw deeper into the taste ranking."""
    from tailsynth.gen.items.pipeline import tried_users

    codes = np.array([5, 5, 5, 5, 5, 2, 2, 9])
    users_of, slot = tried_users(codes, 3)
    assert users_of.tolist() == [2, 5, 5, 9]
    assert users_of[slot].tolist() == codes.tolist()  # every candidate's user is chosen for its own item
    assert slot[:5].tolist() == [1, 1, 1, 2, 2] and slot[5:].tolist() == [0, 0, 3]
    once, identity = tried_users(codes, 1)
    assert once.tolist() == sorted(codes.tolist()) and once[identity].tolist() == codes.tolist()
    assert len(set(identity.tolist())) == len(codes)  # one try: every candidate a user of its own


def test_gated_user_conditioned_call_emits_each_pair_once(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """Gated with several tries per user (`EVENT_TRIES`), a user-conditioned stream writes each chosen user several
    times with other events; the emitted rows still hold each (user, item) pair once."""
    from tailsynth.gen.items import pipeline

    monkeypatch.setattr(pipeline, "EVENT_TRIES", 3)

    config = load_config("configs/tiny.yaml", ["model.condition.user=[Country, frequency]", f"out_dir={tmp_path}",
                                               "name=user", *FAST])
    bundle = load(fit(config), device="cpu")
    repeats: list[int] = []
    draw = pipeline.ItemStream.draw

    def spy(self, want):  # noqa: ANN001, ANN202
        records = draw(self, want)
        repeats.append(int(records.duplicated(["_item", "CustomerID"]).sum()))
        return records

    monkeypatch.setattr(pipeline.ItemStream, "draw", spy)
    gate = GateConfig(alpha=1e-100, max_auc=1.0, min_holdout_rows=10, max_candidates_factor=50, chunk_rows=2000)
    result = gen.augment(bundle, per_item=3, seed=0, gate=gate, min_lift=0.0, progress=False)  # loose, as test_augment
    assert sum(repeats) > 0  # candidates repeat their user
    rows = result.rows
    assert rows is not None and len(rows) > 0, result.report.get("refusals")
    assert not rows.duplicated(["CustomerID", "StockCode"]).any()


def test_new_items_gated_stream_tries_each_user_three_times(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """A user-conditioned stream tries each chosen user `NEW_ITEMS_EVENT_TRIES` times for a new-items request,
    `EVENT_TRIES` times for existing items, once ungated."""
    from tailsynth.gen.items import pipeline

    made: list[int] = []
    init = pipeline.ItemStream.__init__

    def spy(self, *args, **kwargs):  # noqa: ANN001, ANN202
        init(self, *args, **kwargs)
        made.append(self.tries)

    monkeypatch.setattr(pipeline.ItemStream, "__init__", spy)
    gate = GateConfig(alpha=1e-100, max_auc=1.0, min_holdout_rows=10, max_candidates_factor=50, chunk_rows=2000)
    config = load_config("configs/tiny.yaml", ["model.condition.user=[Country, frequency]", f"out_dir={tmp_path}",
                                               "name=tries", *FAST])
    bundle = load(fit(config), device="cpu")
    items = bundle.table("items").head(4).assign(StockCode=lambda f: "new-" + f["StockCode"].astype(str))
    gen.cold_start(bundle, items, per_item=2, seed=0, gate=gate, min_lift=0.0, progress=False)
    gen.cold_start(bundle, items, per_item=2, seed=0, gate=False, progress=False)
    gen.augment(bundle, per_item=2, seed=0, gate=gate, min_lift=0.0, progress=False)
    assert made == [pipeline.NEW_ITEMS_EVENT_TRIES, 1, pipeline.EVENT_TRIES]
    assert pipeline.NEW_ITEMS_EVENT_TRIES == 3 and pipeline.EVENT_TRIES == 1
