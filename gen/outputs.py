"""Where a `gen` command writes: checked before any work, locked, rows and report written as one unit.

    with claim_output(args.out, inputs=[args.items], bundle=args.bundle) as output:
        ...generate...
        output.write(rows, report)            # rows None: a refusal (the report alone is written)

Every command of `tailsynth gen` goes through here, so each promise holds for all of them:

- **Checked first.** `check_output` refuses, before a bundle is loaded: an output whose folder is missing, is
  not a folder or is not writable; an output that is a directory or not a regular file; an output (or its
  `.report.json`) that is one of the call's inputs (resolved paths and inode numbers compared, so a link or
  a second path to the same file is caught); an output inside a bundle or inside a folder of a run
  directory (`bundle/`, `checkpoints/`, ...; the run's top level, where the main job writes its rows beside
  `report.md`, is allowed). The error names the path and what was expected (`OutputError`, exit 2).
- **Never destroy what this call did not create.** A refusal writes only the report; a rows file an
  earlier call left at the path stays (the new report says `"rows": null`, so it does not describe it).
  Nothing but our own temporaries, our journal and our lock is ever deleted.
- **Rows and report as one unit.** Both are written to temporary files beside the output and fsynced; a
  journal (`.<name>.commit`) naming both is written; then the rows and the report are renamed into place and
  the journal removed. A call killed before the journal leaves the previous pair; one killed after it is
  completed by the next call on the same output (`recover`), and until then the report's
  `output.rows_sha256` lets a reader tell whether the rows beside it are the ones it describes (`matches`).
- **One writer per output.** An exclusive `flock` on `.<name>.lock` for the whole call; a second call on
  the same output stops with an error naming the process. The kernel drops the lock of a killed process;
  the file is removed when the call ends.
- **No litter.** The temporaries a killed call left (`.<name>.<8 hex>.tmp`) are removed by the next call.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tailsynth.models.atomic import fsync_directory, json_text, prepared, stale_temporaries, table_writer
from tailsynth.models.errors import TailsynthError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks; every other check still applies
    fcntl = None  # type: ignore[assignment]

OUT_SUFFIXES = (".parquet", ".pq", ".csv", ".csv.gz")
REPORT_SUFFIX = ".report.json"
BUNDLE_MARKER = "bundle.json"
"""A folder holding this is a bundle (`models.bundle.MANIFEST`)."""
RUN_MARKER = ".tailsynth-run"
"""A folder holding this (`train.run_dir.MARKER`), or a `bundle/bundle.json`, is a run directory."""


class OutputError(TailsynthError):
    """An output path that cannot or must not be written: the message names it and what was expected."""


def report_path(out: str | Path) -> Path:
    """`tail.parquet` -> `tail.parquet.report.json` (the full name is kept so CSV and parquet never clash)."""
    out = Path(out)
    return out.with_name(out.name + REPORT_SUFFIX)


def check_output(out: str | Path, *, inputs: Iterable[str | Path | None] = (), bundle: str | Path | None = None,
                 option: str = "--out") -> Path:
    """The output path, refused (OutputError) for every reason of the module docstring; nothing is written."""
    path = Path(out)
    if not path.name.lower().endswith(OUT_SUFFIXES):
        raise OutputError(f"{option} {out}: expected a .parquet, .pq, .csv or .csv.gz path for the rows")
    folder = path.parent
    if not folder.exists():
        raise OutputError(f"{option} {out}: the folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise OutputError(f"{option} {out}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {out}: the folder {folder} is not writable")
    for target in (path, report_path(path)):
        if target.is_dir():
            raise OutputError(f"{option} {out}: {target} is an existing directory; give a file path")
        if target.exists() and not target.is_file():
            raise OutputError(f"{option} {out}: {target} exists and is not a regular file")
    _not_an_input(path, option, inputs, bundle)
    _not_in_a_model(path, option)
    return path


def _not_an_input(path: Path, option: str, inputs: Iterable[str | Path | None], bundle: str | Path | None) -> None:
    given = [Path(p) for p in inputs if p is not None]
    for target in (path, report_path(path)):
        for source in given:
            if _same_file(target, source):
                raise OutputError(f"{option} {path}: {target} is the input {source}; writing there would destroy "
                                  f"it. Choose another output path")
        if bundle is not None and _inside(target, _bundle_folder(Path(bundle))):
            raise OutputError(f"{option} {path}: {target} lies inside the bundle {bundle}; choose a path outside it")


def _bundle_folder(bundle: Path) -> Path:
    """The folder of the bundle's files: `RUN/bundle` for a run directory (as `gen.load` reads it)."""
    return bundle / "bundle" if (bundle / "bundle").is_dir() else bundle


def _not_in_a_model(path: Path, option: str) -> None:
    """Refuse an output inside any bundle, or inside a folder of a run directory (`bundle/`, `checkpoints/`,
    `tb/`, the reports' folders): later calls read those. A run's top level is allowed, beside its
    `report.md`: no file a run writes there has a rows suffix, and the main job writes its rows there."""
    folder = path.resolve().parent
    for ancestor in (folder, *folder.parents):
        if (ancestor / BUNDLE_MARKER).exists():
            raise OutputError(f"{option} {path}: {ancestor} is a model bundle; writing into it would corrupt it. "
                              f"Choose a path outside it")
        is_run = (ancestor / RUN_MARKER).exists() or (ancestor / "bundle" / BUNDLE_MARKER).exists()
        if is_run and ancestor != folder:
            raise OutputError(f"{option} {path}: {folder} is a folder of the run directory {ancestor}; write "
                              f"the rows outside it, or at its top level")


def _same_file(first: Path, second: Path) -> bool:
    if first.resolve() == second.resolve():
        return True
    try:
        a, b = first.stat(), second.stat()
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _inside(target: Path, folder: Path) -> bool:
    folder = folder.resolve()
    if folder.is_file():
        folder = folder.parent
    return folder in (target.resolve(), *target.resolve().parents)


@dataclass
class Output:
    """A claimed output: `write(rows, report)` writes the pair (see module docstring)."""

    rows_path: Path
    written: list[Path]
    """What this call put in place (the rows and/or the report), for messages and tests."""

    @property
    def report_path(self) -> Path:
        return report_path(self.rows_path)

    def write(self, rows: pd.DataFrame | None, report: dict[str, Any]) -> None:
        """Rows (None on a refusal) and the report, which gains `output`: what was written and its digest."""
        out, journal = self.rows_path, _journal(self.rows_path)
        pending: dict[str, str] = {}
        try:
            if rows is not None:
                pending[out.name] = prepared(out, table_writer(out, rows)).name
            digest = _sha256(out.with_name(pending[out.name])) if rows is not None else None
            report = {**report, "output": {"rows": out.name if rows is not None else None, "rows_sha256": digest,
                                           "rule": "the rows file beside this report is the one it describes "
                                                   "only when its sha256 is rows_sha256"}}
            pending[self.report_path.name] = prepared(self.report_path, lambda tmp: tmp.write_text(
                json_text(report), encoding="utf-8")).name
            journal_tmp = prepared(journal, lambda tmp: tmp.write_text(json.dumps(pending), encoding="utf-8"))
            os.replace(journal_tmp, journal)
            fsync_directory(out.parent)
        except BaseException:
            for name in pending.values():
                out.with_name(name).unlink(missing_ok=True)
            raise
        # From here a kill is completed by the next call (`recover`): the journal names both renames.
        self.written = _commit(out.parent, pending, journal)


def _commit(folder: Path, pending: dict[str, str], journal: Path) -> list[Path]:
    done = []
    for target, tmp in pending.items():  # rows first, then the report
        if (folder / tmp).exists():
            os.replace(folder / tmp, folder / target)
        done.append(folder / target)
    fsync_directory(folder)
    journal.unlink(missing_ok=True)
    fsync_directory(folder)
    return done


def _journal(out: Path) -> Path:
    return out.with_name(f".{out.name}.commit")


def _lock_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.lock")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def recover(out: str | Path) -> list[Path]:
    """Finish or clean what a killed call on `out` left: complete a committed pair (its journal), then
    remove the temporaries of unfinished writes. Returns the paths removed or renamed into place."""
    out = Path(out)
    touched: list[Path] = []
    journal = _journal(out)
    if journal.is_file():
        try:
            pending = json.loads(journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pending = {}
        names = {out.name, report_path(out).name}
        pending = {t: s for t, s in pending.items() if t in names and isinstance(s, str) and "/" not in s}
        touched += _commit(out.parent, pending, journal)
    for name in (out.name, report_path(out).name, journal.name):
        for tmp in stale_temporaries(out.parent, name):
            tmp.unlink(missing_ok=True)
            touched.append(tmp)
    return touched


def matches(out: str | Path) -> bool:
    """Whether the report at `out` describes the rows file beside it (False when either is missing)."""
    out = Path(out)
    try:
        report = json.loads(report_path(out).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    expected = (report.get("output") or {}).get("rows_sha256")
    if expected is None:
        return False
    return out.is_file() and _sha256(out) == expected


@contextmanager
def claim_output(out: str | Path, *, inputs: Iterable[str | Path | None] = (), bundle: str | Path | None = None,
                 option: str = "--out") -> Iterator[Output]:
    """Check `out` (`check_output`), lock it, recover what a killed call left, and yield an `Output`."""
    path = check_output(out, inputs=inputs, bundle=bundle, option=option)
    lock = _lock_path(path)
    try:
        handle = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole call
    except OSError as exc:
        raise OutputError(f"{option} {out}: cannot write in {path.parent} ({exc.strerror})") from None
    _take(handle, lock, path, option)  # closes the handle when it raises
    try:
        recover(path)
        yield Output(path, [])
    finally:
        # Removed while still held, so a waiting call that opened the old file sees it is gone (`_take`).
        lock.unlink(missing_ok=True)
        handle.close()


def _take(handle: Any, lock: Path, out: Path, option: str) -> None:
    if fcntl is None:
        return
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise OutputError(f"{option} {out}: another tailsynth call (process {holder}) is writing this output "
                          f"({lock}); wait for it to finish or choose another path") from None
    try:
        same = os.fstat(handle.fileno()).st_ino == os.stat(lock).st_ino
    except FileNotFoundError:
        same = False
    if not same:  # the previous holder removed the file after we opened it: the lock we hold guards nothing
        handle.close()
        raise OutputError(f"{option} {out}: another tailsynth call was finishing on this output; run again")
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
