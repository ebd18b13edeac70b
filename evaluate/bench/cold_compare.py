"""Two `cold_choice` runs compared on the calls both emitted in full.

    python -m tailsynth.evaluate.bench.cold_compare --base base_0.json base_3.json --trial trial_0.json trial_3.json \\
        [--arm LABEL] [--trial-arm LABEL] [--out compare.json]

With `--gated`, a pseudo-cold call the gate refuses scores 0 on its items, and one that loses a feature group
scores what its other groups carry. On three to six seeds, a difference of 0.02 between two settings is then
mostly a difference in which seeds were refused (see the bench README, "The validation at the product's counts").
This reads the runs' written JSON (each argument a block of seeds, `cold_choice --first-seed`; a seed may
appear in one block of a side only; the two sides may hold different settings, e.g. two temperatures, named by
`--arm` and `--trial-arm`) and reports, per split:
- every call's outcome on each side: emitted in full (no refusal in its report), partial (some groups refused),
  refused (no row);
- over the seeds where BOTH sides emitted in full, each recommender's cold-only Recall@20 and the ALS overall
  figure, each side's mean over those seeds and their difference (trial - base);
- the plain means over every seed each side ran, beside them.
No setting is chosen here: a rule written before the runs reads these figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tailsynth.models.atomic import write_json

OUTCOMES = ("full", "partial", "refused")


class CompareError(ValueError):
    """The runs cannot be compared; the message names the file and what was expected."""


def outcomes(split: dict[str, Any], arm: str, where: str) -> list[str]:
    """Each seed's call outcome for `arm` on one split of a run ("full" for every seed of an ungated run)."""
    info = split["info"]
    rows = info["rows_added"].get(arm)
    if rows is None:
        raise CompareError(f"{where}: no setting {arm!r}; the run holds {sorted(info['rows_added'])}")
    if not info.get("gated", False):
        return ["full"] * len(rows)
    refusals = info.get("refusals", {}).get(arm)
    if refusals is None:
        raise CompareError(f"{where}: a gated split without the calls' refusals (written before cold_choice "
                           "recorded them for this split); rerun it")
    return ["refused" if not added else "partial" if refused else "full" for added, refused in zip(rows, refusals)]


def by_seed(runs: list[tuple[str, dict[str, Any]]], arm: str) -> dict[str, dict[int, dict[str, Any]]]:
    """{split: {seed: {"outcome", "figures": {name: mean}}}} over one side's blocks; a seed twice is an error."""
    out: dict[str, dict[int, dict[str, Any]]] = {}
    for path, run in runs:
        for name, split in run["splits"].items():
            where = f"{path} split {name!r}"
            states = outcomes(split, arm, where)
            figures = split["per_seed"].get(arm, {})
            for index, seed in enumerate(run["seeds"]):
                if seed in out.setdefault(name, {}):
                    raise CompareError(f"{where}: seed {seed} is also in another block of the same side")
                out[name][seed] = {"outcome": states[index],
                                   "figures": {k: v[index] for k, v in figures.items()}}
    return out


def _mean(values: list[float | None]) -> float | None:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def compare(base: list[tuple[str, dict[str, Any]]], trial: list[tuple[str, dict[str, Any]]],
            arm: str | None = None, trial_arm: str | None = None) -> dict[str, Any]:
    """Per split present on both sides: outcomes, and figures on the seeds both emitted in full (module docstring).
    base, trial: (path, loaded JSON) per block; arm: the setting's label (default: the one every run holds);
    trial_arm: the trial side's, when it differs (default: arm)."""
    if arm is None:
        labels = [set(split["info"]["rows_added"]) for _, run in [*base, *trial] for split in run["splits"].values()]
        common = set.intersection(*labels) if labels else set()
        if len(common) != 1:
            raise CompareError(f"expected one setting common to every run, found {sorted(common)}: name it with --arm")
        arm = common.pop()
    trial_arm = trial_arm or arm
    sides = {"base": by_seed(base, arm), "trial": by_seed(trial, trial_arm)}
    out: dict[str, Any] = {"arm": arm, "trial_arm": trial_arm, "splits": {}}
    for name in sorted(set(sides["base"]) & set(sides["trial"])):
        seeds = {side: sides[side][name] for side in sides}
        counts = {side: {o: sum(s["outcome"] == o for s in seeds[side].values()) for o in OUTCOMES} for side in seeds}
        paired = sorted(seed for seed in set(seeds["base"]) & set(seeds["trial"])
                        if seeds["base"][seed]["outcome"] == seeds["trial"][seed]["outcome"] == "full")
        figures: dict[str, Any] = {}
        for figure in sorted(set.intersection(*(set(s["figures"]) for side in seeds.values() for s in side.values()))):
            both = {side: _mean([seeds[side][seed]["figures"][figure] for seed in paired]) for side in seeds}
            every = {side: _mean([s["figures"][figure] for s in seeds[side].values()]) for side in seeds}
            figures[figure] = {"paired": {**both, "difference": None if None in both.values()
                                          else both["trial"] - both["base"]},
                               "every_seed": every}
        out["splits"][name] = {"calls": counts, "paired_seeds": paired, "figures": figures}
    return out


def load(paths: list[str]) -> list[tuple[str, dict[str, Any]]]:
    runs = []
    for path in paths:
        try:
            runs.append((path, json.loads(Path(path).read_text())))
        except (OSError, json.JSONDecodeError) as exc:
            raise CompareError(f"{path}: expected a cold_choice result JSON ({exc})") from None
        if "splits" not in runs[-1][1] or "seeds" not in runs[-1][1]:
            raise CompareError(f"{path}: expected a cold_choice result JSON (keys 'splits' and 'seeds')")
    return runs


def lines(result: dict[str, Any]) -> list[str]:
    """The comparison as text, a line per split and figure."""
    text = [f"setting: {result['arm']}" + (f"; trial: {result['trial_arm']}"
                                          if result["trial_arm"] != result["arm"] else "")]
    for name, split in result["splits"].items():
        calls = "; ".join(f"{side} " + " / ".join(f"{n} {o}" for o, n in c.items()) for side, c in split["calls"].items())
        text.append(f"{name}: {calls}; both in full on seeds {split['paired_seeds']}")
        for figure, values in split["figures"].items():
            paired = values["paired"]
            shown = " ".join(f"{k} {'-' if v is None else f'{v:+.4f}' if k == 'difference' else f'{v:.4f}'}"
                             for k, v in paired.items())
            every = " ".join(f"{k} {'-' if v is None else f'{v:.4f}'}" for k, v in values["every_seed"].items())
            text.append(f"  {figure}: {shown} (every seed: {every})")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tailsynth.evaluate.bench.cold_compare",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--base", nargs="+", required=True, help="cold_choice JSON, one per seed block")
    parser.add_argument("--trial", nargs="+", required=True, help="cold_choice JSON, one per seed block")
    parser.add_argument("--arm", help="the setting's label (default: the one every run holds)")
    parser.add_argument("--trial-arm", help="the trial side's setting, when it differs from --arm")
    parser.add_argument("--out", help="write the comparison as JSON here")
    args = parser.parse_args(argv)
    try:
        result = compare(load(args.base), load(args.trial), args.arm, args.trial_arm)
    except CompareError as exc:
        print(f"cold_compare: {exc}", file=sys.stderr)
        return 2
    result["inputs"] = {"base": args.base, "trial": args.trial}
    print("\n".join(lines(result)))
    if args.out:
        write_json(Path(args.out), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
