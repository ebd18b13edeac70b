"""Content features of items: one-hot categorical columns and TF-IDF + truncated SVD of a text column.

`ContentFeatures.fit(items, feature_columns, text_column, seed)` learns the vocabularies; `transform(items)`
gives one row per item, [n, d] float32, each part scaled so a row has unit norm when all its parts are
present (a dot product is then the cosine of two items' content). Missing or unseen values contribute zeros:
an item whose every part is zero has no usable content (`has_content`).

Stored without pickle (`state`): the category vocabularies and the TF-IDF vocabulary as lists of strings,
the idf weights and the SVD components as tensors. The TF-IDF transform is recomputed from them
(`scikit-learn`'s CountVectorizer with a fixed vocabulary, then the idf and the L2 norm as TfidfVectorizer
applies them), so loading needs no fitted scikit-learn object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from tailsynth.models.errors import DataError

TEXT_DIM = 64
"""Components of the text's truncated SVD (fewer when the vocabulary or the table is smaller)."""
TEXT_WEIGHT = 0.5
"""Share of a row's squared norm given to the text; the categorical columns share the rest equally."""


@dataclass(frozen=True)
class ContentFeatures:
    """A fitted featuriser (see module docstring)."""

    feature_columns: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    """Per feature column, its known values as strings (the one-hot order)."""
    text_column: str | None
    vocabulary: tuple[str, ...]
    idf: torch.Tensor
    """[V] float64 idf weights of the vocabulary."""
    components: torch.Tensor
    """[c, V] float64: the truncated SVD's components."""

    @classmethod
    def fit(cls, items: pd.DataFrame, feature_columns: list[str], text_column: str | None,
            seed: int) -> ContentFeatures:
        """Vocabularies of `items`' feature columns and text (missing columns: a DataError naming them)."""
        missing = [c for c in [*feature_columns, *([text_column] if text_column else [])] if c not in items.columns]
        if missing:
            raise DataError(f"content features: items table has no column(s) {missing}; it has {list(items.columns)}")
        categories = tuple(tuple(sorted(set(_as_text(items[c]).dropna()))) for c in feature_columns)
        vocabulary, idf, components = (), torch.zeros(0, dtype=torch.float64), torch.zeros(0, 0, dtype=torch.float64)
        texts = _as_text(items[text_column]).fillna("") if text_column else None
        if texts is not None and texts.str.strip().ne("").any():
            vectorizer = TfidfVectorizer(lowercase=True, sublinear_tf=True, dtype=np.float64)
            try:
                tfidf = vectorizer.fit_transform(texts.to_numpy())
            except ValueError:  # no token in any text (only stop words or single characters)
                tfidf = None
            if tfidf is not None:
                vocabulary = tuple(vectorizer.get_feature_names_out().tolist())
                idf = torch.as_tensor(vectorizer.idf_)
                rank = min(TEXT_DIM, len(vocabulary) - 1, tfidf.shape[0] - 1)
                if rank >= 1:
                    svd = TruncatedSVD(n_components=rank, algorithm="randomized", n_iter=7, random_state=seed)
                    svd.fit(tfidf)
                    components = torch.as_tensor(svd.components_)
                else:  # one word or one item: the tf-idf itself is the text feature
                    components = torch.eye(len(vocabulary), dtype=torch.float64)
        return cls(tuple(feature_columns), categories, text_column, vocabulary, idf, components)

    @property
    def dim(self) -> int:
        return sum(len(values) for values in self.categories) + int(self.components.shape[0])

    def transform(self, items: pd.DataFrame) -> torch.Tensor:
        """[n, dim] float32 content rows of `items` (see module docstring for the scaling)."""
        parts: list[torch.Tensor] = []
        category_weight = (1.0 - TEXT_WEIGHT) if self.components.shape[0] else 1.0
        for column, values in zip(self.feature_columns, self.categories):
            if column not in items.columns:
                raise DataError(f"content features: items table has no column {column!r}")
            codes = pd.Index(values).get_indexer(_as_text(items[column]).fillna("\0missing"))
            block = torch.zeros(len(items), len(values))
            known = torch.as_tensor(codes >= 0)
            block[known, torch.as_tensor(codes[codes >= 0], dtype=torch.long)] = 1.0
            parts.append(block * float(np.sqrt(category_weight / max(len(self.feature_columns), 1))))
        if self.components.shape[0]:
            text = self._text(items)
            parts.append(text * float(np.sqrt(TEXT_WEIGHT if self.feature_columns else 1.0)))
        return torch.cat(parts, dim=1) if parts else torch.zeros(len(items), 0)

    def _text(self, items: pd.DataFrame) -> torch.Tensor:
        """The text's SVD coordinates, each row L2-normalised (zeros for an empty or all-unknown text)."""
        if self.text_column not in items.columns:
            raise DataError(f"content features: items table has no text column {self.text_column!r}")
        texts = _as_text(items[self.text_column]).fillna("").to_numpy()
        counts = CountVectorizer(lowercase=True, vocabulary=list(self.vocabulary), dtype=np.float64).transform(texts)
        counts = counts.tocsr()
        counts.data = 1.0 + np.log(counts.data)  # sublinear tf, as TfidfVectorizer(sublinear_tf=True)
        tfidf = counts @ sp.diags(self.idf.numpy())
        norms = np.sqrt(np.asarray(tfidf.multiply(tfidf).sum(axis=1))).ravel()
        tfidf = sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ tfidf
        reduced = torch.as_tensor(np.asarray(tfidf @ self.components.numpy().T), dtype=torch.float32)
        return torch.nn.functional.normalize(reduced, dim=1)

    def state(self) -> dict[str, Any]:
        """Lists of strings and float64 tensors only (safe for `torch.load(weights_only=True)`)."""
        return {"feature_columns": list(self.feature_columns), "categories": [list(v) for v in self.categories],
                "text_column": self.text_column or "", "vocabulary": list(self.vocabulary),
                "idf": self.idf.clone(), "components": self.components.clone()}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ContentFeatures:
        return cls(tuple(str(c) for c in state["feature_columns"]),
                   tuple(tuple(str(v) for v in values) for values in state["categories"]),
                   str(state["text_column"]) or None, tuple(str(t) for t in state["vocabulary"]),
                   state["idf"].double(), state["components"].double())


def _as_text(column: pd.Series) -> pd.Series:
    """Values as Python strings (object dtype), nulls kept as nulls."""
    values = column.astype(object)
    return values.map(str).where(values.notna(), None)
