"""What Lightning and torch print that tells a user nothing, hidden while our code drives them."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

RANK_ZERO_LOG = "lightning.pytorch.utilities.rank_zero"


class _DropLitLoggerTip(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


@contextmanager
def quiet_third_party(start_lines: bool = True) -> Iterator[None]:
    """Hide the litlogger advert and the deprecation notices raised inside Lightning and torch about their
    own internals; `start_lines=False` also hides the Trainer's start-up lines (GPU available, ...), for a
    small fit inside a larger step. Warnings from our code, and every other Lightning message, still show."""
    tip = _DropLitLoggerTip()
    rank_zero_log = logging.getLogger(RANK_ZERO_LOG)
    level = rank_zero_log.level
    rank_zero_log.addFilter(tip)
    if not start_lines:
        rank_zero_log.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning):
                warnings.filterwarnings("ignore", category=category,
                                        module=r"(lightning|lightning_utilities|torch)(\.|$)")
            yield
    finally:
        rank_zero_log.removeFilter(tip)
        rank_zero_log.setLevel(level)
