"""Benchmark of the taste space and the content->taste predictor on the built-in data (issue 19, parts 1-2).

    python -m tailsynth.evaluate.bench.taste_bench [--seeds 0 1 2] [--device cpu] [--part ...] [--with-mlp]

Factorisation: the built-in interactions are split at random (80/20 by row, seeded); on the warm items,
every candidate ranks all items a user has not bought in training and is scored by held-out pair
Recall@20 (hits among the top 20 / min(20, the user's held-out items); `--split time`: the latest 20% of
rows instead), and the other way round: every
warm item ranks the users who have not bought it (how the generator chooses users), next to the fit time.
Candidates: `fit_taste_space` (randomized SVD of D_u^-e B D_i^-e at e = 0.25, the default, 0.5 and 0),
implicit's ALS (64 factors, 15 iterations, the purchase counts as confidence) and popularity/activity.

Predictor: 15% of the warm items with at least 5 interactions are held out of the predictor's fit (never a
scored split of the downstream benchmark); each candidate predicts their vectors from content alone.
Measured: cosine to the item's true vector (space of all rows), and "cold-only" Recall@20 in a space
refitted without the held items' rows -- rank only the held items for each user by u . v_hat, against their
real buyers (chance = 20 / held items); `--with-mlp` adds a BPR-trained MLP (GAR-style). Blend: held warm items thinned to n buyers, vector
(n * own + m * predicted) / (n + m) in the space refitted on the thinned rows, against the removed buyers.
Prints one table per part; figures go in the commit message / report.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import torch
from scipy import stats

from tailsynth.models.content_taste import ContentTaste
from tailsynth.models.taste import TasteSpace, fit_taste_space
from tailsynth.train.retail import load_online_retail

TOP = 20


def recall_at(scores: torch.Tensor, seen: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over users with held-out items of hits in the top `TOP` / min(TOP, held-out). Dense [U, I]."""
    scores = scores.masked_fill(seen, float("-inf"))
    top = scores.topk(TOP, dim=1).indices
    hits = truth.gather(1, top).sum(dim=1).float()
    wanted = truth.sum(dim=1).float()
    keep = wanted > 0
    return float((hits[keep] / wanted[keep].clamp(max=TOP)).mean())


def both_ways(scores: torch.Tensor, seen: torch.Tensor, truth: torch.Tensor) -> dict[str, float]:
    """Recall@20 ranking items for each user, and ranking users for each item (how the generator uses it)."""
    return {"items per user": recall_at(scores, seen, truth),
            "users per item": recall_at(scores.T.contiguous(), seen.T.contiguous(), truth.T.contiguous())}


def dense(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> torch.Tensor:
    out = torch.zeros(n_users, n_items, dtype=torch.bool)
    out[torch.as_tensor(users), torch.as_tensor(items)] = True
    return out


def factorisation(interactions: pd.DataFrame, seed: int, device: str, split: str = "random") -> list[dict]:
    rng = np.random.default_rng(seed)
    if split == "time":  # the latest 20% of rows (the same for every seed; the SVD's and ALS's seeds vary)
        test_mask = interactions["InvoiceDate"].rank(method="first").to_numpy() > 0.8 * len(interactions)
    else:
        test_mask = rng.random(len(interactions)) < 0.2
    train, test = interactions[~test_mask], interactions[test_mask]
    users = train["CustomerID"].to_numpy("int64")
    items = train["StockCode"].to_numpy()
    rows = []
    for exponent in (0.25, 0.5, 0.0):
        started = time.perf_counter()
        space = fit_taste_space(users, items, dim=64, seed=seed, device=device, normalisation=exponent)
        fit_s = time.perf_counter() - started
        if exponent == 0.25:
            u_pos, i_pos = space.user_positions(users), space.item_positions(items)
            t_u = space.user_positions(test["CustomerID"].to_numpy("int64"))
            t_i = space.item_positions(test["StockCode"])
            known = (t_u >= 0) & (t_i >= 0)
            seen = dense(u_pos, i_pos, len(space.user_ids), len(space.item_ids))
            truth = dense(t_u[known], t_i[known], len(space.user_ids), len(space.item_ids)) & ~seen
        scores = space.user_vectors @ space.item_vectors.T
        rows.append({"seed": seed, "method": f"svd D^-{exponent} B D^-{exponent}", **both_ways(scores, seen, truth),
                     "fit_s": fit_s})
    degree = torch.as_tensor(space.item_counts, dtype=torch.float32)
    rows.append({"seed": seed, "method": "popularity (items) / activity (users)",
                 "items per user": recall_at(degree.expand_as(scores).clone(), seen, truth),
                 "users per item": recall_at(seen.sum(1).float().expand(len(degree), -1).clone(), seen.T.contiguous(),
                                             truth.T.contiguous()), "fit_s": 0.0})
    try:
        rows.append({"seed": seed, **_als(u_pos, i_pos, space, seen, truth, seed)})
    except ImportError:
        print("implicit is not installed (pip install tailsynth[utility]): ALS skipped")
    return rows


def _als(u_pos: np.ndarray, i_pos: np.ndarray, space: TasteSpace, seen: torch.Tensor, truth: torch.Tensor,
         seed: int) -> dict:
    import scipy.sparse as sp
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    matrix = sp.csr_matrix((np.ones(len(u_pos), dtype=np.float32), (u_pos, i_pos)),
                           shape=(len(space.user_ids), len(space.item_ids)))
    matrix.sum_duplicates()
    model = AlternatingLeastSquares(factors=64, regularization=0.05, iterations=15, random_state=seed,
                                    num_threads=1, calculate_training_loss=False)
    with threadpool_limits(1, "blas"):
        started = time.perf_counter()
        model.fit(matrix, show_progress=False)
        fit_s = time.perf_counter() - started
    scores = torch.as_tensor(np.asarray(model.user_factors)) @ torch.as_tensor(np.asarray(model.item_factors)).T
    return {"method": "implicit ALS 64", **both_ways(scores, seen, truth), "fit_s": fit_s}


def ranking_mlp(knn: ContentTaste, pairs: torch.Tensor, held_content: torch.Tensor, seed: int,
                steps: int = 600, mse_weight: float = 0.1) -> torch.Tensor:
    """A GAR-style candidate without the adversary: an MLP content -> vector (256 hidden units) trained
    with BPR on the warm items' real buyers against uniform random users (+ mse_weight x squared error to
    the item's own vector), Adam 1e-3, 600 steps of 4,096 pairs. Returns the held items' vectors."""
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = torch.nn.Sequential(torch.nn.Linear(knn.features.dim, 256), torch.nn.ReLU(),
                                  torch.nn.Linear(256, knn.space.dim))
    users, vectors, content = knn.space.user_vectors, knn.space.item_vectors, knn.warm_content
    pairs = pairs[content[pairs[:, 1]].abs().sum(dim=1) > 0]
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-5)
    for _ in range(steps):
        batch = pairs[torch.randint(len(pairs), (4096,), generator=generator)]
        negative = torch.randint(len(users), (4096,), generator=generator)
        predicted = net(content[batch[:, 1]])
        margin = (users[batch[:, 0]] * predicted).sum(dim=1) - (users[negative] * predicted).sum(dim=1)
        loss = -torch.nn.functional.logsigmoid(margin).mean() + \
            mse_weight * ((predicted - vectors[batch[:, 1]]) ** 2).sum(dim=1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        return net(held_content)


@dataclass(frozen=True)
class ColdSplit:
    """15% of the warm items with >= 5 interactions held out of the predictor's fit, and a space refitted
    without their rows (the cold protocol)."""

    space: TasteSpace
    cold_space: TasteSpace
    held: np.ndarray
    held_items: pd.DataFrame
    warm: pd.DataFrame
    pairs: tuple[np.ndarray, np.ndarray]
    """(users, items) of the rows the cold space was fitted on."""
    truth: torch.Tensor


def cold_split(interactions: pd.DataFrame, items_table: pd.DataFrame, seed: int, device: str) -> ColdSplit:
    users = interactions["CustomerID"].to_numpy("int64")
    item_ids = interactions["StockCode"].to_numpy()
    space = fit_taste_space(users, item_ids, dim=64, seed=seed, device=device)
    rng = np.random.default_rng([seed, 7])
    eligible = np.flatnonzero(space.item_counts >= 5)
    held = np.sort(rng.choice(eligible, size=int(0.15 * len(eligible)), replace=False))
    held_ids = pd.Index(space.item_ids[held])
    catalogue = items_table.set_index("StockCode").loc[space.item_ids].reset_index()
    cold_rows = np.asarray(pd.Index(item_ids).isin(held_ids))
    cold_space = fit_taste_space(users[~cold_rows], item_ids[~cold_rows], dim=64, seed=seed, device=device)
    truth = dense(cold_space.user_positions(users[cold_rows]), held_ids.get_indexer(item_ids[cold_rows]),
                  len(cold_space.user_ids), len(held))
    warm = catalogue[~catalogue["StockCode"].isin(held_ids)]
    return ColdSplit(space, cold_space, held, catalogue.iloc[held].reset_index(drop=True), warm,
                     (users[~cold_rows], item_ids[~cold_rows]), truth)


def predictor(interactions: pd.DataFrame, items_table: pd.DataFrame, seed: int, device: str,
              with_mlp: bool = False, with_generator: bool = False) -> list[dict]:
    split = cold_split(interactions, items_table, seed, device)
    space, cold_space, held, held_items, warm, truth = (split.space, split.cold_space, split.held, split.held_items,
                                                         split.warm, split.truth)
    true_vectors = space.item_vectors[torch.as_tensor(held)]
    no_seen = torch.zeros_like(truth)
    rows = [{"seed": seed, "method": "chance", "cosine": 0.0, "cold-only recall@20": TOP / len(held), "fit_s": 0.0}]
    for method, neighbours in (("knn", 5), ("knn", 10), ("knn", 20), ("knn", 50), ("ridge", 0)):
        started = time.perf_counter()
        content = ContentTaste.fit(warm, "StockCode", ["category", "price_band"], "description", space, seed=seed,
                                   method=method, neighbours=max(neighbours, 1))
        fit_s = time.perf_counter() - started
        cosine = torch.nn.functional.cosine_similarity(content.predict(held_items), true_vectors, dim=1).mean()
        cold = ContentTaste.fit(warm, "StockCode", ["category", "price_band"], "description", cold_space, seed=seed,
                                method=method, neighbours=max(neighbours, 1))
        name = f"content-kNN k={neighbours}" if method == "knn" else "ridge"
        rows.append({"seed": seed, "method": name, "cosine": float(cosine),
                     "cold-only recall@20": recall_at(cold_space.user_vectors @ cold.predict(held_items).T, no_seen,
                                                      truth), "fit_s": fit_s})
    if with_mlp or with_generator:  # both are set beside the default kNN's vectors in the cold space
        knn = ContentTaste.fit(warm, "StockCode", ["category", "price_band"], "description", cold_space, seed=seed)
    if with_mlp:
        pairs = torch.as_tensor(np.unique(np.stack([cold_space.user_positions(split.pairs[0]),
                                                    cold_space.item_positions(split.pairs[1])], axis=1), axis=0))
        started = time.perf_counter()
        predicted = ranking_mlp(knn, pairs, knn.features.transform(held_items), seed)
        rows.append({"seed": seed, "method": "ranking MLP (BPR, GAR-style)", "cosine": float("nan"),
                     "cold-only recall@20": recall_at(cold_space.user_vectors @ predicted.T, no_seen, truth),
                     "fit_s": time.perf_counter() - started})
    if with_generator:
        started = time.perf_counter()
        generator = ContentTaste.fit(warm, "StockCode", ["category", "price_band"], "description", cold_space,
                                     seed=seed, method="generator", pairs=split.pairs, device=device)
        fit_s = time.perf_counter() - started
        predicted = generator.predict(held_items)
        for name, vectors in (("generator (CVAR + BPR, Lightning)", predicted),
                              ("mean of generator and content-kNN k=10", (predicted + knn.predict(held_items)) / 2)):
            rows.append({"seed": seed, "method": name, "cosine": float("nan"),
                         "cold-only recall@20": recall_at(cold_space.user_vectors @ vectors.T, no_seen, truth),
                         "fit_s": fit_s})
    return rows


def popularity(interactions: pd.DataFrame, items_table: pd.DataFrame, seed: int, device: str) -> list[dict]:
    """How many buyers a held item has, predicted from content (`ContentTaste.predicted_counts`, what
    `gen cold-start --per-item auto` gives a new item) against a draw from the warm items' counts (the
    earlier rule): Spearman rho with the true count and the median |log2(predicted / true)|."""
    split = cold_split(interactions, items_table, seed, device)
    true = split.space.item_counts[split.held].astype(np.float64)
    knn = ContentTaste.fit(split.warm, "StockCode", ["category", "price_band"], "description", split.cold_space,
                           seed=seed)
    warm_counts = split.cold_space.item_counts[split.cold_space.item_counts >= 5]
    draw = np.random.default_rng([seed, 13]).choice(warm_counts, size=len(true))
    return [{"seed": seed, "rule": rule, "spearman rho": float(stats.spearmanr(counts, true).statistic),
             "median |log2 ratio|": float(np.median(np.abs(np.log2(counts / true))))}
            for rule, counts in (("content neighbours (auto)", knn.predicted_counts(split.held_items).astype(float)),
                                 ("draw from warm counts", draw.astype(float)))]


def blend(interactions: pd.DataFrame, items_table: pd.DataFrame, seed: int, device: str) -> list[dict]:
    """Pseudo-tail: held-out warm items thinned to n buyers; their vector blended with m in the space refit
    on the thinned rows; Recall@20 ranking only the held items for each user against the removed buyers."""
    pairs = interactions[["CustomerID", "StockCode"]].drop_duplicates()
    pairs = pairs.assign(CustomerID=pairs["CustomerID"].to_numpy("int64"))
    buyers = pairs["StockCode"].value_counts()
    rng = np.random.default_rng([seed, 11])
    eligible = np.sort(buyers.index[buyers >= 10].to_numpy())
    held = pd.Index(rng.choice(eligible, size=int(0.15 * len(eligible)), replace=False))
    rank = pd.Series(rng.random(len(pairs)), index=pairs.index).groupby(pairs["StockCode"]).rank(method="first")
    rows = []
    for n in (1, 3, 5):
        removed = pairs["StockCode"].isin(held) & (rank > n)
        kept = pairs[~removed]
        space = fit_taste_space(kept["CustomerID"].to_numpy(), kept["StockCode"].to_numpy(), seed=seed, device=device)
        catalogue = items_table.set_index("StockCode").loc[space.item_ids].reset_index()
        content = ContentTaste.fit(catalogue[~catalogue["StockCode"].isin(held)], "StockCode",
                                   ["category", "price_band"], "description", space, seed=seed)
        held_items = catalogue[catalogue["StockCode"].isin(held)].reset_index(drop=True)
        columns = torch.as_tensor(space.item_positions(held_items["StockCode"]))
        kept_held = kept[kept["StockCode"].isin(held)]
        seen = dense(space.user_positions(kept_held["CustomerID"]), space.item_positions(kept_held["StockCode"]),
                     len(space.user_ids), len(space.item_ids))[:, columns]
        gone = pairs[removed]
        truth = dense(space.user_positions(gone["CustomerID"]), space.item_positions(gone["StockCode"]),
                      len(space.user_ids), len(space.item_ids))[:, columns]
        counts = np.full(len(held_items), n)
        for m in (0.0, 1.0, 3.0, 5.0, 10.0, 20.0, float("inf")):
            vectors = (replace(content, blend=m).vectors_for(held_items, counts) if np.isfinite(m)
                       else content.predict(held_items))
            rows.append({"seed": seed, "n": n, "m": m,
                         "pseudo-tail recall@20": recall_at(space.user_vectors @ vectors.T, seen, truth)})
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--split", choices=["random", "time"], default="random",
                        help="factorisation: 20%% of rows at random, or the latest 20%%")
    parser.add_argument("--with-mlp", action="store_true", help="also train the ranking MLP (about 15 s a seed)")
    parser.add_argument("--with-generator", action="store_true",
                        help="also train the Lightning content->taste generator (models.taste_generator)")
    parser.add_argument("--part", choices=["all", "factorisation", "predictor", "popularity", "blend"], default="all")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    retail = load_online_retail()
    interactions = retail.interactions
    for part, run in (("factorisation", lambda s: factorisation(interactions, s, args.device, args.split)),
                      ("predictor", lambda s: predictor(interactions, retail.items, s, args.device, args.with_mlp,
                                                                   args.with_generator)),
                      ("popularity", lambda s: popularity(interactions, retail.items, s, args.device)),
                      ("blend", lambda s: blend(interactions, retail.items, s, args.device))):
        if args.part not in ("all", part):
            continue
        table = pd.DataFrame([row for seed in args.seeds for row in run(seed)])
        keys = {"blend": ["n", "m"], "popularity": ["rule"]}.get(part, ["method"])
        summary = table.groupby(keys, sort=False).agg(["mean", "std"]).drop(columns="seed")
        print(f"\n## {part} ({len(args.seeds)} seeds)\n{summary.round(4).to_string()}", flush=True)


if __name__ == "__main__":
    main()
