"""Property tests (hypothesis) of the table loader, the record builder and the config loader.

Whatever the input -- mixed types, nulls, empty strings, huge or negative numbers, unicode, duplicated or
missing columns, other separators and encodings -- the answer is valid output or the toolkit's own error,
never an unhandled exception, and a value that is read is read unchanged. Cases are small (a few rows, a
few dozen examples) so the file runs in seconds.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import typing
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tailsynth.models.errors import ConfigError, DataError  # noqa: E402
from tailsynth.train.config import DataConfig, RunConfig, from_dict, load_config  # noqa: E402
from tailsynth.train.io import read_table  # noqa: E402
from tailsynth.train.records import build_records  # noqa: E402

# hypothesis keeps caches in ./.hypothesis by default: keep them out of the working tree.
set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "tailsynth-hypothesis"))
# Seeded (derandomize) and without an example database, so nothing is written to the working tree.
SMALL = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])

cells = st.one_of(
    st.none(), st.just(""), st.integers(-(2**70), 2**70), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8), st.sampled_from(["2011-01-01", "01/13/2011", "13/01/2011", "1e308", "NaN", "é", "\u00a0"]),
)
names = st.text(alphabet="abcxyzé_1 ", min_size=1, max_size=4)


@SMALL
@given(columns=st.lists(names, min_size=1, max_size=4), rows=st.lists(st.lists(cells, min_size=4, max_size=4),
                                                                      min_size=0, max_size=5),
       separator=st.sampled_from([",", ";", "\t"]), encoding=st.sampled_from(["utf-8", "latin-1", "utf-16"]))
def test_table_loader_gives_a_frame_or_a_data_error(tmp_path_factory: pytest.TempPathFactory, columns: list[str],
                                                    rows: list[list], separator: str, encoding: str) -> None:
    path = tmp_path_factory.mktemp("prop") / "table.csv"
    lines = [separator.join(columns)] + [separator.join("" if v is None else str(v) for v in row[: len(columns)])
                                         for row in rows]
    try:
        path.write_bytes("\n".join(lines).encode(encoding) + b"\n")
    except UnicodeEncodeError:
        return
    try:
        frame = read_table(path, role="items")
    except DataError as exc:
        assert str(exc).startswith(f"items table {path}")
        return
    assert frame.columns.is_unique
    texts = columns + ["" if v is None else str(v) for row in rows for v in row[: len(columns)]]
    plain = separator == "," and not any(ch in text for text in texts for ch in ",\n\r\"")
    if plain and len(columns) > 1:  # no quoting, no embedded line breaks: one line is one row
        assert len(frame) == len(rows)
    # (in a one-column file a row holding a null is a blank line, which CSV readers skip)


@SMALL
@given(numbers=st.lists(st.integers(-(10**15), 10**15), min_size=1, max_size=6),
       words=st.lists(st.text(alphabet=st.characters(categories=["L"]), min_size=1, max_size=6), min_size=6,
                      max_size=6))
def test_values_are_read_unchanged(tmp_path_factory: pytest.TempPathFactory, numbers: list[int],
                                   words: list[str]) -> None:
    frame = pd.DataFrame({"n": numbers, "w": words[: len(numbers)]})
    path = tmp_path_factory.mktemp("prop") / "table.csv"
    frame.to_csv(path, index=False)
    back = read_table(path, role="items")
    assert back["n"].tolist() == numbers
    # A word pandas would read as a number or a null ("nan", "NA", "inf") is not text to begin with.
    if back["w"].dtype == object:
        assert back["w"].tolist() == words[: len(numbers)]


_EDITS = st.tuples(st.sampled_from(["interactions", "users", "items"]), st.integers(0, 18), st.integers(0, 4),
                   cells)


@SMALL
@given(edits=st.lists(_EDITS, min_size=1, max_size=3), drop=st.booleans())
def test_record_builder_gives_records_or_a_data_error(tiny_frames: dict[str, pd.DataFrame],
                                                      tmp_path_factory: pytest.TempPathFactory,
                                                      tiny_config: typing.Callable, edits: list, drop: bool) -> None:
    frames = {role: frame.astype(object) for role, frame in tiny_frames.items()}
    for role, row, column, value in edits:
        frame = frames[role]
        frame.iat[row % len(frame), column % frame.shape[1]] = value
    folder = tmp_path_factory.mktemp("records")
    paths = {}
    for role, frame in frames.items():
        paths[role] = folder / f"{role}.csv"
        frame.to_csv(paths[role], index=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            records = build_records(tiny_config(paths, missing_keys="drop" if drop else "error"))
    except DataError as exc:
        assert "table" in str(exc) or "column" in str(exc)
        return
    assert [column.name for column in records.columns] == list(records.table.columns)
    assert records.table["pop_bucket"].notna().all()
    assert (records.table["price"].abs() <= 1e15).all()


# ---------------------------------------------------------------------------------------------------------
# config loader


def _numeric_keys() -> list[str]:
    keys = []

    def walk(cls: type, prefix: str) -> None:
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            hint = hints[f.name]
            inner = [hint, *typing.get_args(hint)]
            nested = [t for t in inner if dataclasses.is_dataclass(t)]
            if nested:
                if f.name not in ("interactions", "users", "items"):
                    walk(nested[0], f"{prefix}{f.name}.")
            elif any(t in (int, float) for t in inner):
                keys.append(prefix + f.name)

    walk(RunConfig, "")
    return keys


NUMERIC_KEYS = _numeric_keys()
MINIMAL = {"data": {"interactions": {"path": "x.csv", "user_id": "u", "item_id": "i", "timestamp": "t"}}}
values = st.one_of(st.integers(-(2**40), 2**40), st.floats(allow_nan=True, allow_infinity=True), st.booleans(),
                   st.none(), st.text(max_size=5), st.lists(st.integers(-3, 3), max_size=2))


def _get(config: object, key: str) -> object:
    for part in key.split("."):
        config = getattr(config, part)
    return config


@SMALL
@given(key=st.sampled_from(NUMERIC_KEYS), value=values)
def test_config_loader_gives_a_config_or_a_config_error(tmp_path_factory: pytest.TempPathFactory, key: str,
                                                        value: object) -> None:
    path = tmp_path_factory.mktemp("cfg") / "run.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    try:
        config = load_config(path, [f"{key}={yaml.safe_dump(value, default_flow_style=True).strip()}"])
    except ConfigError as exc:
        assert key.split(".")[-1] in str(exc) or "name" in str(exc) or "pac" in str(exc)
        return
    loaded = _get(config, key)
    if isinstance(value, list):
        assert list(loaded) == value
    elif isinstance(value, float) and math.isnan(value):
        pytest.fail(f"{key}: NaN accepted")
    else:
        assert loaded == value, f"{key}: {value!r} became {loaded!r}"


@SMALL
@given(raw=st.recursive(st.one_of(st.none(), st.integers(), st.floats(), st.text(max_size=4)),
                        lambda inner: st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6))
def test_from_dict_never_raises_anything_but_config_error(raw: object) -> None:
    try:
        from_dict(DataConfig, raw)
    except ConfigError:
        pass


def test_numeric_key_list_is_the_real_one() -> None:
    assert "model.ctgan.generator_lr" in NUMERIC_KEYS and "gate.rare_k" in NUMERIC_KEYS and "seed" in NUMERIC_KEYS
    assert np.unique(NUMERIC_KEYS).size == len(NUMERIC_KEYS)
