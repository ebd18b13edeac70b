"""The encoded layout: which slice of the model's float matrix holds which column, and how it is activated.

The encoder (`models.encoder.TableEncoder`) fits it once; the generator's output activation, the losses,
the condition vector and the decoder all read this one description instead of re-deriving widths.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Activation = Literal["tanh", "softmax"]
EncodedSdType = Literal["categorical", "numerical", "datetime"]


@dataclass(frozen=True)
class SpanInfo:
    """A contiguous block of the encoded row: one scalar in [-1, 1] (tanh) or a one-hot (softmax)."""

    dim: int
    activation: Activation


@dataclass(frozen=True)
class ColumnLayout:
    """Where one column lives in the encoded matrix.

    Continuous (numerical/datetime) columns: spans = (tanh 1, softmax n_modes + n_spikes) plus (softmax 2)
    when the column had nulls at fit time (index 1 of that block = null). Categorical columns: one softmax span over
    `categories` (a null, if seen, is a category of its own).
    """

    name: str
    sdtype: EncodedSdType
    start: int
    spans: tuple[SpanInfo, ...]
    categories: tuple = ()

    @property
    def width(self) -> int:
        return sum(span.dim for span in self.spans)

    @property
    def stop(self) -> int:
        return self.start + self.width

    @property
    def is_discrete(self) -> bool:
        return self.sdtype == "categorical"


def all_spans(layout: tuple[ColumnLayout, ...]) -> tuple[SpanInfo, ...]:
    """Every span of every column, in matrix order."""
    return tuple(span for column in layout for span in column.spans)
