"""Throughput of the taste chooser (issue 19 target: every tail item of the built-in data scored and drawn in
under 10 s on the 2-core CPU).

    python -m tailsynth.evaluate.bench.taste_users [--items 2500] [--users 4000] [--device cpu] [--out FILE]

Synthetic vectors of the built-in data's size (64 factors, ~4,000 users, ~2,500 tail items, 3-50 rows each,
long-tailed activity, 20 training pairs per item to exclude) -- the timing depends on the sizes, not on the
values. Times `choose_users` with the default settings, once with the co-occurrence evidence and once
without, and the fitting of existing items' mix weights (`TasteUsers.match`, `like_first_buyers`) (best of
`--repeats`), and writes a JSON record (`models.atomic.write_json`).
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import pandas as pd
import torch

from tailsynth.gen.items.taste_mix import ROUNDS, UserMix
from tailsynth.gen.items.taste_users import Evidence, TasteSettings, TasteUsers, choose_users
from tailsynth.models.atomic import write_json
from tailsynth.models.taste import TasteSpace


def synthetic_space(users: int, items: int, dim: int, seed: int) -> tuple[TasteSpace, np.ndarray, np.ndarray]:
    """A space of the given size, and (item, user) training pairs: 20 per item, activity-weighted users."""
    generator = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    activity = np.maximum(1, rng.lognormal(3.0, 1.2, users).astype(np.int64))
    space = TasteSpace(np.arange(users), np.arange(items), torch.randn(users, dim, generator=generator) / dim ** 0.5,
                       torch.randn(items, dim, generator=generator) / dim ** 0.5, activity,
                       rng.integers(1, 30, items).astype(np.int64))
    pair_items = np.repeat(np.arange(items), 20)
    pair_users = rng.choice(users, size=len(pair_items), p=activity / activity.sum())
    return space, pair_items, pair_users


def run(users: int, items: int, dim: int, device: str, repeats: int, seed: int) -> dict:
    space, pair_items, pair_users = synthetic_space(users, items, dim, seed)
    counts = np.random.default_rng(seed + 1).integers(3, 51, items)
    evidence = Evidence.fit(space, pair_users, pair_items)
    results = {}
    for name, settings, with_evidence in (("default (evidence 0.3)", TasteSettings(), evidence),
                                          ("no evidence", TasteSettings(evidence_weight=0.0), None)):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            choice = choose_users(space.item_vectors, counts, space, owned=(pair_items, pair_users),
                                  settings=settings, evidence=with_evidence,
                                  generator=torch.Generator(device=device).manual_seed(seed), device=device)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        results[name] = {"seconds": round(min(times), 3), "all_seconds": [round(t, 3) for t in times],
                         "rows": int(len(choice.users)), "rows_per_second": round(len(choice.users) / min(times)),
                         "rounds": choice.stats["rounds"], "rows_missing": choice.stats["rows_missing"],
                         "settings": settings.plain()}
    # Existing items' default (`TasteSettings.like_first_buyers`): the draw's prior raked to a users' feature mix,
    # ROUNDS + 1 uncapped draws of every item, done once per generation call before its first row.
    rng = np.random.default_rng(seed + 2)
    users_table = pd.DataFrame({"user": space.user_ids, "frequency": space.user_activity.astype(float),
                                "Country": rng.choice(["A", "B", "C"], users, p=[0.8, 0.15, 0.05])})
    light = space.user_activity <= np.median(space.user_activity)
    target = rng.choice(np.flatnonzero(light), int(counts.sum()))
    mix = UserMix.of(users_table, ["Country"], ["frequency"], target)
    times = []
    for _ in range(repeats):
        chooser = TasteUsers(space, space.item_vectors, (pair_items, pair_users), np.arange(users),
                             TasteSettings(like_first_buyers=True), device, evidence)
        started = time.perf_counter()
        chooser.match(mix, counts, seed)
        times.append(time.perf_counter() - started)
    results["like_first_buyers: fitting the mix weights (once per call)"] = {
        "seconds": round(min(times), 3), "all_seconds": [round(t, 3) for t in times], "draws": ROUNDS + 1,
        "binned_ks_before": chooser.mix_stats["binned_ks_before"],
        "binned_ks_after": chooser.mix_stats["binned_ks_after"]}
    return {"benchmark": "taste_users", "users": users, "items": items, "dim": dim, "rows_requested": int(counts.sum()),
            "device": device, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(), "target_seconds": 10.0, "results": results}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=4000, help="real users to score (built-in data: ~4,000)")
    parser.add_argument("--items", type=int, default=2500, help="tail items to draw for (built-in: ~2,500)")
    parser.add_argument("--dim", type=int, default=64, help="taste space factors")
    parser.add_argument("--device", default="cpu", help="torch device for the products (cpu, cuda)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting; the best is reported")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic space and the draws")
    parser.add_argument("--out", default=None, help="JSON file for the record (default: print only)")
    args = parser.parse_args(argv)
    record = run(args.users, args.items, args.dim, args.device, args.repeats, args.seed)
    if args.out:
        write_json(args.out, record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
