"""One run per run directory: a lock while training, no silent overwrite, no leftovers of killed runs.

Two trainings started on one directory used to mix silently (the config of one seed beside the bundle of
the other, or the second deleting the first's checkpoints mid-training). `claim_run_directory` holds an
exclusive `flock` on `<run_dir>/.lock` for as long as the run lasts: the kernel drops it when the process
dies, so a SIGKILLed run never leaves a stale lock. It also refuses to start a fresh run in a directory
that already holds one unless asked to overwrite it, clears what a fresh run replaces (so a failed new run
cannot leave the old run's bundle beside its own config), and removes the temporary files and folders that
a killed run's atomic writes leave behind (`.last.ckpt.<8 hex>.tmp`, `.bundle.*`).

`--overwrite` deletes only what a run wrote: a fresh run leaves its marker (`.tailsynth-run`) in the
directory (runs from before the marker are recognised by their bundle's manifest), and an overwrite of a
directory without it is refused with the list of what it would have
deleted (a folder that merely holds a `config.yaml` or a `bundle/` of the user's is not a run). Temporary
files are removed only under the exact names our writers give them (`models.atomic.TEMPORARY`).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tailsynth.models.atomic import TEMPORARY
from tailsynth.models.errors import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, the overwrite check still applies
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"
MARKER = ".tailsynth-run"
"""Written by every fresh run: the proof that the directory's outputs are a run's, which --overwrite needs."""
RUN_OUTPUTS = ("config.yaml", "checkpoints", "bundle", "tb")
"""What a run writes; a directory holding any of them holds a run."""
MODEL_REPORTS = ("report.json", "report.md", "report_figures", "utility")
"""What `tailsynth evaluate report` and `evaluate utility` write beside a model. They describe that model, so
they are removed whenever it is replaced: with the rest of an overwritten run, and before a resumed run
writes its new bundle (`remove_model_reports`)."""


@contextmanager
def claim_run_directory(run_dir: Path, *, resume: bool, overwrite: bool) -> Iterator[Path]:
    """Lock `run_dir` for this run, refuse or clear an earlier run there, and remove stale temporaries.

    resume: the earlier run is continued (nothing is cleared but temporaries). Otherwise an existing run
    is a ConfigError unless `overwrite`, in which case its outputs are removed first.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK, "a+", encoding="utf-8") as handle:
        _lock(handle, run_dir)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        earlier = [name for name in RUN_OUTPUTS if (run_dir / name).exists()]
        if earlier and not resume:
            if not overwrite:
                raise ConfigError(f"run directory {run_dir} already holds a run ({', '.join(earlier)}); pass "
                                  f"--overwrite to replace it, --resume to continue it, or choose another --out")
            if not is_run(run_dir):
                doomed = earlier + [name for name in MODEL_REPORTS if (run_dir / name).exists()]
                raise ConfigError(f"--overwrite: {run_dir} was not written by tailsynth train (it has no "
                                  f"{MARKER} marker), so nothing in it is deleted; overwriting would have deleted "
                                  f"{', '.join(doomed)}. Choose another --out, or move those away yourself")
            for name in earlier:
                _remove(run_dir / name)
            remove_model_reports(run_dir)
        if not resume:
            (run_dir / MARKER).write_text("written by tailsynth train: --overwrite may replace this run\n",
                                          encoding="utf-8")
        remove_temporaries(run_dir)
        yield run_dir


def is_run(run_dir: Path) -> bool:
    """The directory carries a run's own marker: `.tailsynth-run`, or (runs trained before the marker) a
    `bundle/bundle.json` that is a tailsynth manifest."""
    if (run_dir / MARKER).is_file():
        return True
    try:
        manifest = json.loads((run_dir / "bundle" / "bundle.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and {"kind", "meta", "encoder"} <= set(manifest)


def remove_model_reports(run_dir: Path) -> list[str]:
    """Delete the reports of the model in `run_dir` (`MODEL_REPORTS`); returns the names removed."""
    removed = [name for name in MODEL_REPORTS if (run_dir / name).exists()]
    for name in removed:
        _remove(run_dir / name)
    return removed


def _remove(target: Path) -> None:
    shutil.rmtree(target) if target.is_dir() else target.unlink()


def _lock(handle: object, run_dir: Path) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # type: ignore[attr-defined]
    except BlockingIOError:
        handle.seek(0)  # type: ignore[attr-defined]
        holder = handle.read().strip() or "unknown"  # type: ignore[attr-defined]
        raise ConfigError(f"run directory {run_dir} is in use by another training (process {holder} holds "
                          f"{run_dir / LOCK}); wait for it to finish or choose another --out") from None


def remove_temporaries(run_dir: Path) -> list[Path]:
    """Delete what interrupted atomic writes leave in a run directory; returns what was removed.

    Only names our writers create: `.<name>.<8 hex>.tmp` files (`models.atomic`) in the run directory
    and `checkpoints/`, and `.bundle.<random>` / `.bundle.old` folders (`models.bundle.save_bundle`).
    """
    removed = []
    for folder in (run_dir, run_dir / "checkpoints"):
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            name = path.name
            if path.is_file() and TEMPORARY.match(name):
                path.unlink(missing_ok=True)
                removed.append(path)
            elif path.is_dir() and folder == run_dir and name.startswith(".bundle."):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed
