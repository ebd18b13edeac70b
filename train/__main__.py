"""`tailsynth train --config configs/X.yaml [--max-epochs N] [--out DIR] [--resume | --overwrite] [--summary] [--set K=V ...]`

Exit codes: 0 trained; 2 bad input (the message names the file, column or key); 143 stopped by SIGTERM and
130 by Ctrl-C (the message names the checkpoint and prints the `--resume` command that continues the run).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace
from pathlib import Path

from tailsynth.models.errors import TailsynthError, TrainingInterrupted


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tailsynth train", description="Train a conditional tabular generator.")
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


def resume_command(argv: list[str]) -> str:
    """This command line with --resume instead of --overwrite: what continues a stopped run."""
    kept = [arg for arg in argv if arg not in ("--overwrite", "--resume")]
    return shlex.join(["tailsynth", "train", *kept, "--resume"])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        from tailsynth.train.config import load_config

        overrides = list(args.set)
        if args.max_epochs is not None:
            overrides.append(f"trainer.max_epochs={args.max_epochs}")
        config = load_config(args.config, overrides)
        if args.out:
            out = Path(args.out)
            config = replace(config, out_dir=str(out.parent), name=out.name)
        if args.summary:
            from tailsynth.train.summary import print_summary
            from tailsynth.train.records import build_records

            print_summary(build_records(config.data))
            return 0
        from tailsynth.train.fit import fit

        run_dir = fit(config, resume=args.resume, overwrite=args.overwrite)
        print(f"run directory: {run_dir}")
        return 0
    except TrainingInterrupted as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        if "--resume" in str(exc):
            print(f"resume with: {resume_command(sys.argv[1:] if argv is None else argv)}", file=sys.stderr)
        return 128 + exc.signal_number  # 143 for SIGTERM, 130 for Ctrl-C, as a shell reports them
    except TailsynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
