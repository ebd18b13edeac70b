"""The `tailsynth` console script: `tailsynth train|gen|evaluate ...`, one entry point for the three commands.

    tailsynth train --config configs/online_retail_tvae.yaml
    tailsynth gen augment --bundle runs/online_retail_tvae --bucket tail --per-item 3 --out tail_rows.parquet
    tailsynth evaluate report --bundle runs/online_retail_tvae

Each subcommand is the same parser and handler as `python -m tailsynth.<command>`; this module only chooses
which one and imports it on demand, so `tailsynth --help` starts no model code. It lives in `evaluate/`
because that is the top layer, the one allowed to import `train` and `gen`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

COMMANDS = {
    "train": ("tailsynth.train.__main__", "train a conditional tabular generator (CTGAN or TVAE) into a run directory"),
    "gen": ("tailsynth.gen.__main__", "sample / augment / cold-start: gated synthetic interactions from a bundle"),
    "evaluate": ("tailsynth.evaluate.__main__", "report / fidelity / utility / bench: measure a bundle or any table"),
}


def usage() -> str:
    lines = ["usage: tailsynth {train,gen,evaluate} ...", "", "commands:"]
    lines += [f"  {name:<9} {summary}" for name, (_, summary) in COMMANDS.items()]
    lines += ["", "`tailsynth COMMAND --help` shows a command's options."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"{usage()}\n\nerror: unknown command {name!r}: expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
