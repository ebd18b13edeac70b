"""`python -m train --config configs/X.yaml [--max-epochs N] [--out DIR] [--resume | --overwrite] [--summary] [--set K=V ...]`"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from models.errors import TailsynthError, TrainingInterrupted


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m train", description="Train a conditional tabular generator.")
    parser.add_argument("--config", required=True, help="YAML run config (see configs/)")
    parser.add_argument("--max-epochs", type=int, help="override trainer.max_epochs")
    parser.add_argument("--out", help="run directory to write (default: <out_dir>/<name> from the config)")
    parser.add_argument("--resume", action="store_true", help="continue from the run directory's last checkpoint")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run in the run directory")
    parser.add_argument("--summary", action="store_true", help="build the behaviour records, print the bucket summary, do not train")
    # action="extend": `--set a=1 --set b=2` keeps both (with nargs alone, the last --set would replace the first).
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override any config key, e.g. trainer.batch_size=1000 (repeatable)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from train.config import load_config

        overrides = list(args.set)
        if args.max_epochs is not None:
            overrides.append(f"trainer.max_epochs={args.max_epochs}")
        config = load_config(args.config, overrides)
        if args.out:
            out = Path(args.out)
            config = replace(config, out_dir=str(out.parent), name=out.name)
        if args.summary:
            from train.summary import print_summary
            from train.records import build_records

            print_summary(build_records(config.data))
            return 0
        from train.fit import fit

        run_dir = fit(config, resume=args.resume, overwrite=args.overwrite)
        print(f"run directory: {run_dir}")
        return 0
    except TrainingInterrupted as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return 143  # 128 + SIGTERM, as a shell reports a terminated process
    except TailsynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
