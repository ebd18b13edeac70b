"""Users chosen by taste: which real users a tail or new item's synthetic interactions go to (issue 19, part 3).

    choice = choose_users(item_vectors, counts, space, owned=pairs, generator=g)
    # choice.users [m]: positions in space.user_ids; choice.items [m]: the row's item (0..n_items-1)

The rule, for each item i with taste vector v_i (`ContentTaste.vectors_for`) and every real user u:
1. Score: s(u, i) = cos(u, v_i) (`COSINE`; u . v_i when off), standardised over the users (z-score per item), so that the temperature is in
   standard deviations of the item's own score spread and means the same on any data set and any space.
   With `evidence` (the buyers of the item's nearest warm items, `Evidence`), the score is the blend
   (1 - w) z(u . v) + w z(evidence), w = `evidence_weight`.
2. Draw WITHOUT replacement with probability proportional to softmax(s / tau) x activity^power: the
   Gumbel-top-k trick (keys = s / tau + power log activity + Gumbel noise; each item takes its highest
   keys), which is exactly successive sampling without replacement and, unlike `torch.multinomial`, lets
   every item take its own number of rows from one [chunk, users] top-k.
3. Never a user who already has the item (`owned`, the training pairs) or one who is not eligible.
4. A cap on rows per user across the whole call: rounds; after each, the rows of users over the cap beyond
   it (their lowest keys) are released and their items draw again with those users masked.
5. UCC-style (Uncertainty-aware Consistency learning for Cold-start, SIGIR 2023): each item draws
   count / (1 - drop) users and keeps its `count` most certain. Certainty is the pair's score margin:
   the standardised score z(u, i), i.e. how many standard deviations the user sits above the item's mean
   user. Not the softmax probability: that depends on tau, on the activity prior and on how many users
   there are, so it is not comparable between items or data sets; the margin is, and an activity-heavy
   user drawn for the prior alone is exactly the uncertain pair to drop.

Torch matrix products in chunks of items on the given device; the only Python loops are over rounds (a
handful) and chunks of items.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from tailsynth.gen.items.taste_mix import MixWeights, UserMix, calibrate
from tailsynth.models.taste import TasteSpace

TEMPERATURE = 0.5
"""tau in standard deviations of an item's user scores. Chosen, with `SHORTLIST` and `EVIDENCE_WEIGHT`, by
DOWNSTREAM recall on validation items from the training rows only (`evaluate.bench.cold_choice`; never the
held-out rows or the scored cold items): the utility bundle (150 cold items held out, TVAE 10 epochs), 150
warm items hidden as pseudo-cold per split (tail bucket / any bucket, >= 3 buyers), taste space and content
predictor refitted without their rows, 50 ungated `gen.cold_start` rows per item, 3 seeds; ALS and item-kNN
cold-only Recall@20 on the items' own training buyers (chance 0.133). Grid tau {0.1, 0.25, 0.5, 1} x shortlist
{1, 4} x evidence {0, 0.3}. Tail ALS / tail item-kNN / any ALS / any item-kNN:
- tau 0.5, shortlist 1, evidence 0.3 (chosen): 0.403 / 0.414 / 0.412 / 0.403, the only setting within the
  95% interval of the best in all four cells (ALS: -0.007 [-0.017, +0.003] and -0.005 [-0.009, +0.001] to
  the best); neighbour transfer 0.332 / 0.169 / 0.330 / 0.076, content-kNN injection (ALS) 0.435 / 0.504;
- tau 0.25 / 0.1, shortlist 1, evidence 0.3: 0.410 / 0.394 / 0.413 / 0.364 and 0.406 / 0.376 / 0.411 / 0.334
  (item-kNN measurably lower); tau 1: 0.367 / 0.373 / 0.379 / 0.350 (lower everywhere);
- shortlist 4 (the previous default, tau 0.5, evidence 0.3): 0.374 / 0.179 / 0.398 / 0.116;
- evidence 0 (tau 0.5, shortlist 1): 0.402 / 0.353 / 0.416 / 0.238.
The earlier choice, on taste lift alone (`taste_check` validation split, dot products): tau <= 0.5 all within
the bootstrap interval of the best lift, tau = 1 worse (3.8-5.0x); activity power and drop inside the noise.
User features of taste rows against the items' training buyers (ungated augment, 3 rows per tail item; KS of
frequency / monetary / recency): dot products 0.42 / 0.45 / 0.38, cosine (`COSINE`) + activity power 1 0.19 /
0.21 / 0.18; shortlist 4 at tau 0.5 0.094 / 0.101 / 0.067, which shortlist 1 gives up (see `SHORTLIST`). The
demographic rule's rows: 0.022 / 0.035 / 0.029."""
ACTIVITY_POWER = 0.5
"""Exponent of the activity prior (`TasteSpace.user_activity`: distinct items a user bought in training); 0
ignores activity. Chosen on the validation items of `evaluate.bench.cold_choice` (training rows only; tau 0.5,
shortlist 1, evidence 0.3, 50 rows per item, 3 seeds; util_cold150 bundle), by the users' features, which the
fidelity gate judges: KS of frequency / monetary of the chosen users against the hidden real buyers, tail / any
split: power 1 0.110 / 0.116 and 0.128 / 0.133, power 0.5 0.049 / 0.054 and 0.071 / 0.074, power 0 0.057 / 0.064
and 0.050 / 0.050 (taste with power 1 draws users twice too active). Cold-only Recall@20, ALS: all three within
0.008 of the best; item-kNN tail / any: 1 0.408 / 0.387, 0.5 0.393 / 0.352, 0 0.378 / 0.292. Rule, stated after
the grid was run: of the powers within 0.04 of the best recall in every cell, the lowest mean user-feature KS
(0 falls out on item-kNN any, -0.095)."""
PER_USER_CAP = 50
"""Most rows one user gets: per `choose_users` call, and on the accepted rows of a generation call
(`item_gate.ItemGate._fresh_pairs`; with `like_first_buyers`, raised to the heaviest one-off buyer's share of
the rows when that is more: `ItemGate.user_cap`)."""
NEW_ITEMS_PER_USER_CAP = 150
"""`gen.cold_start`'s cap. Chosen on gated validation items from the training rows (`evaluate.bench.cold_choice
--gated`: the default gated call against the gate's half of the holdout; 150 pseudo-cold items x 2 splits, 50
rows each, 3 seeds; cold_spq bundle) by the validation's rule (`cold_choice.choose`; none admissible, so the
highest worst-case ratio to neighbour transfer). With the users table as the bundle holds it (the hidden
purchases counted in the hidden buyers' features), 150 emitted on 6 calls of 6 against 4 for 50 (ratio 1.18
against 0.80); with those features re-derived without the hidden purchases (the validation since), the two
caps are within noise (rows tail 1,950 / 6,750 / 6,750 for both, any 6,550 / 7,500 / 7,500 against 6,950 /
7,500 / 7,500; ALS 0.316 / 0.394 against 0.314 / 0.397; ratio 0.954 against 0.948). Existing items keep
`PER_USER_CAP` (raised to the heaviest one-off buyer's share: `ItemGate.user_cap`)."""
NEW_ITEMS_ACTIVITY_POWER = 1.0
"""`gen.cold_start`'s activity power, with `NEW_ITEMS_LIKE_FIRST_BUYERS`: see there for the choice. First chosen
alone on the gated validation without the new items' overall cost (`evaluate.bench.cold_choice --gated`, user
features re-derived without the hidden purchases; tau 0.5 and 1 x power 0 / 0.5 / 1, cap 150, 150 pseudo-cold
items x 2 splits, 50 rows each, 3 seeds; cold_spq bundle): cold-only Recall@20 tail ALS / item-kNN, any ALS /
item-kNN: power 1 0.356 / 0.230, 0.390 / 0.175; power 0.5 0.316 / 0.212, 0.394 / 0.155; power 0 0.357 / 0.233,
0.194 / 0.126. Scored once after that choice (evaluate/bench/README.md): overall -5.1% against -2.6% for power
0.5, which the pseudo-cold splits' overall figure could not foresee (their hidden buyers miss a real purchase,
which rows near it restore); the validation has measured the new items' own cost since. `ACTIVITY_POWER` (0.5)
was chosen ungated, by the users' feature distance from the hidden buyers. Existing items keep it."""
NEW_ITEMS_LIKE_FIRST_BUYERS = True
"""`gen.cold_start` draws its users raked to the feature mix of the one-off training pairs' users of the request's
bucket (`taste_plan.user_mix`; every one-off pair's before `pipeline.NEW_ITEMS_EVENT_TRIES`; new items' rows stay in
their window; `TasteSettings.like_first_buyers`). Chosen with `NEW_ITEMS_ACTIVITY_POWER`
on the gated validation with the new items' overall cost (`cold_choice --gated --splits tail any new_items`: tau
0.5, shortlist 1, evidence 0.3, cap 150, power 0.5 / 1 x first buyers off / on, 150 pseudo-cold items x 2 splits
and the bundle's 150 new items, 50 rows each, 3 seeds, torch and implicit on 2 threads; cold_spq bundle) by the
validation's rule (`cold_choice.choose`): power 1 with first buyers is the only setting never measurably below a
cell's best and within the 2% overall budget on every split. Cold-only Recall@20 tail ALS / item-kNN, any ALS /
item-kNN: 0.292 / 0.202, 0.402 / 0.173 (rows 1,200 / 7,500 / 6,100 and 7,500 x 3), against power 1 without
0.294 / 0.197, 0.258 / 0.111 (650 / 6,750 / 7,500 and 7,500 / 6,500 / 0) and power 0.5 0.225 / 0.140, 0.265 /
0.103 (0 / 6,750 / 6,750 and 6,950 / 0 / 7,500). ALS overall Recall@20 against no rows on the new items: -1.3%
(7,500 / 0 / 7,500 rows; -3.0% and -0.9% on the seeds that emitted), power 1 without -2.3%, power 0.5 -1.6%,
neighbour transfer -1.9%; the seed-to-seed spread of every arm's cost (transfer -0.7% to -3.4%) is as large as
these differences, and the gate's refusals (a group's hour, the union's Quantity or frequency) decide most of
the cold-only figures. On twelve seeds no benchmark scores (`cold_choice --pass-rate 12`) the default call emits
85% of the rows asked for, none refused; power 0.5 without first buyers 92% (evaluate/bench/README.md)."""
NEW_ITEMS_MIX_BY_GROUP = True
"""`gen.cold_start` rakes each feature group of the new items to its own one-off buyers' mix
(`TasteSettings.mix_by_group`), adopted as a reliability change by a rule set before its runs (T16,
evaluate/bench/README.md): the new-items call at 50 rows per item, normal gate, gate half, seeds 10-21, on four
trainings of the user-conditioned cold bundle emitted 95.5% of the rows with 2 of 48 calls refused, against 80.1%
and 5 with one target for the whole call (56% -> 99% on the worst training, where one group's countries failed
11 of 12 calls); at `auto` 99.5%, none refused. With the tests lifted (seeds 39-47, weight 0.75) cold-only recall
moved by -0.002 to +0.007 and the new items' overall cost from -1.2% to -1.5%. Scored once after the choice (the
README's cold study): ALS cold-only 2.998x -> 3.04x chance, item-kNN 2.83x -> 2.66x, overall -1.9% -> -1.8%.
Existing items keep one target (`augment.AUGMENT_TASTE`): per feature group, augment's pass rate rose on README
command 1's bundle (84% -> 99.96%) and fell on the user-conditioned one (77% -> 70%; T18); per unit the gate judges
it rose on three trainings of four and fell 5.3 points on the fourth (T19)."""
DROP_UNCERTAIN = 0.2
"""Share of each item's drawn pairs dropped as least certain (UCC)."""
EVIDENCE_WEIGHT = 0.3
"""Weight of the co-occurrence evidence in the blended score (0: the collaborative score alone). 0.3 against 0
at tau 0.5, shortlist 1 on the downstream validation (`TEMPERATURE`): item-kNN 0.414 / 0.403 against 0.353 /
0.238 (tail / any split), ALS 0.403 / 0.412 against 0.402 / 0.416 (inside the noise). For new items 0.5, 0.7 and 1
were measured on the gated validation (user-conditioned cold bundle, power 1, first buyers): where every call
emitted, item-kNN 0.30 against 0.28 at 0.3; the rule's fallback chose 1, whose new-items call at auto emitted 81%
with 2 of 12 calls refused against 99% and none at 0.3, so 0.3 stays (evaluate/bench/README.md, "Pass rates on
the gate half; ...")."""
COSINE = True
"""Score users by the cosine of their vector with the item's, not the dot product: a user's vector norm grows
with their activity, so dot products chose the heaviest, most recent buyers (built-in tail, training-only
comparison with the items' training buyers: frequency KS 0.42 with dot products, 0.19 with cosines, at
taste lift 9.0x vs 8.2x); how active the chosen users are is then the activity prior's job alone."""
SHORTLIST = 1
"""Users drawn by taste per row; with more than one, the row's generated user features pick one of them
(`users.nearest_of`). 1: taste alone decides, chosen on downstream recall (`TEMPERATURE`): at tau 0.5 and
evidence 0.3, shortlist 4 gave item-kNN 0.179 / 0.116 against 0.414 / 0.403 with 1 (tail / any validation
split; ALS 0.374 / 0.398 against 0.403 / 0.412): the feature pick moves each row from the item's best taste
user to whichever of four matches the generated features, and item-kNN, which learns only item-item
co-buyers, loses most of the signal. What it gives up: the shortlist pulled the users' feature mix towards
the items' real buyers (frequency / monetary / recency KS 0.094 / 0.101 / 0.067 at shortlist 4 against 0.19 /
0.21 / 0.18 with taste alone, tail items), so the fidelity gate's user-feature tests are harder to pass;
`TasteSettings(shortlist=4)` asks for it. The taste check scores all candidates (rows x shortlist)."""
NEIGHBOURS = 20
"""Warm items whose buyers make an item's co-occurrence evidence."""
CHUNK = 256
"""Items scored per step: bounds the [chunk, users] score block (256 x 4,000 floats: 4 MB)."""
MAX_ROUNDS = 16
"""Re-draw rounds for items whose users were capped; what is still missing after them is reported."""


@dataclass(frozen=True)
class TasteSettings:
    """The chooser's settings (defaults chosen on validation items from the training rows, see the constants above)."""

    temperature: float = TEMPERATURE
    activity_power: float = ACTIVITY_POWER
    per_user_cap: int = PER_USER_CAP
    drop_uncertain: float = DROP_UNCERTAIN
    evidence_weight: float = EVIDENCE_WEIGHT
    neighbours: int = NEIGHBOURS
    shortlist: int = SHORTLIST
    cosine: bool = COSINE
    stratify: bool = False
    """Draw each row among the users of its generated country (the first categorical user feature): `Strata`."""
    like_first_buyers: bool = False
    """Existing items (`gen.augment`'s default): make taste rows look like the items' real first purchases, which
    the gate judges them against: the draw's prior reweighted by bins of the user features until the drawn
    users match the items' one-off buyers (`gen.items.taste_mix`); the gate's discriminator filter told from
    one-off training rows; each row at its user's nearest purchase time (`gen.items.user_times`); item-level
    values tilted toward the user's habitual scale (`gen.items.user_values`); the per-user cap raised to the
    heaviest one-off buyer's share of the rows. New items (`NEW_ITEMS_LIKE_FIRST_BUYERS`): the prior and the filter
    only, the bucket's one-off training pairs' users the mix, each feature group to its own (`NEW_ITEMS_MIX_BY_GROUP`);
    their rows lie in a window after the training data."""
    mix_by_group: bool = False
    """With `like_first_buyers`: each feature group of the request's items raked to the one-off pairs of its own
    feature values, shrunk toward the whole target (`taste_mix.GROUP_PRIOR`), not the one target for all."""
    mix_units: bool = False
    """With `mix_by_group`, in a gated call: the groups the gate judges in one unit (its pooled small groups) share
    one target (`taste_plan.mix_groups`). An ungated call has no units: each feature group its own. Not a default
    (T19, evaluate/bench/README.md): augment per unit fell 5.3 points on one training of four; new items' call at
    50 rows per item (seeds 10-21) emitted 84.2% against 91.7% per feature group on one training."""

    def __post_init__(self) -> None:
        if not self.temperature > 0 or self.per_user_cap < 1 or not 0 <= self.drop_uncertain < 1 or \
                not 0 <= self.evidence_weight <= 1 or self.neighbours < 1 or self.shortlist < 1:
            raise ValueError(f"taste settings: temperature > 0, per_user_cap >= 1, 0 <= drop_uncertain < 1, "
                             f"0 <= evidence_weight <= 1, neighbours >= 1 and shortlist >= 1 expected, got {self}")

    def plain(self) -> dict[str, float | int]:
        return {"temperature": self.temperature, "activity_power": self.activity_power,
                "per_user_cap": self.per_user_cap, "drop_uncertain": self.drop_uncertain,
                "evidence_weight": self.evidence_weight, "neighbours": self.neighbours, "shortlist": self.shortlist,
                "cosine": self.cosine, "stratify": self.stratify, "like_first_buyers": self.like_first_buyers,
                "mix_by_group": self.mix_by_group, "mix_units": self.mix_units}


@dataclass(frozen=True)
class TasteChoice:
    """The chosen rows: user [m] (positions in the space's users) and item [m] (0..n_items-1), grouped by
    item; certainty [m] (the pair's standardised score); JSON-able stats."""

    users: np.ndarray
    items: np.ndarray
    certainty: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Evidence:
    """Co-occurrence evidence: for an item, the share of its `neighbours` nearest warm items (cosine in the
    taste space) that each user bought in training."""

    warm_vectors: torch.Tensor
    """[I, k] unit-length warm item vectors."""
    buyers: torch.Tensor
    """[I, U] sparse (CSR) float: 1 where the user bought the warm item in training."""
    neighbours: int

    @classmethod
    def fit(cls, space: TasteSpace, user_rows: np.ndarray, item_rows: np.ndarray,
            neighbours: int = NEIGHBOURS) -> Evidence:
        """user_rows / item_rows [n]: positions in the space of the training pairs."""
        index = torch.as_tensor(np.stack([item_rows, user_rows]).astype(np.int64))
        buyers = torch.sparse_coo_tensor(index, torch.ones(index.shape[1]), (len(space.item_ids), len(space.user_ids)),
                                         check_invariants=False).coalesce()
        buyers = torch.sparse_coo_tensor(buyers.indices(), torch.ones_like(buyers.values()), buyers.shape,
                                         check_invariants=False)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is stable
            warnings.simplefilter("ignore", UserWarning)
            buyers = buyers.to_sparse_csr()
        return cls(torch.nn.functional.normalize(space.item_vectors, dim=1), buyers, int(neighbours))

    def scores(self, vectors: torch.Tensor) -> torch.Tensor:
        """[c, U]: for each of `vectors` [c, k], the share of its nearest warm items each user bought."""
        similarity = torch.nn.functional.normalize(vectors, dim=1) @ self.warm_vectors.to(vectors.device).T
        k = min(self.neighbours, similarity.shape[1])
        nearest = similarity.topk(k, dim=1).indices
        rows = torch.arange(len(vectors), device=vectors.device).repeat_interleave(k)
        picks = torch.sparse_coo_tensor(torch.stack([rows, nearest.reshape(-1)]),
                                        torch.full((rows.numel(),), 1.0 / k, device=vectors.device),
                                        similarity.shape, check_invariants=False).to_sparse_csr()
        # [c, I] with k entries a row, times the sparse buyers [I, U]: sparse products throughout.
        return (picks @ self.buyers.to(vectors.device)).to_dense()


def choose_users(
    item_vectors: torch.Tensor,
    counts: np.ndarray,
    space: TasteSpace,
    *,
    owned: sp.spmatrix | tuple[np.ndarray, np.ndarray] | None = None,
    settings: TasteSettings = TasteSettings(),
    evidence: Evidence | None = None,
    eligible: np.ndarray | None = None,
    used: np.ndarray | None = None,
    offsets: np.ndarray | None = None,
    offset_groups: np.ndarray | None = None,
    generator: torch.Generator | None = None,
    device: str | torch.device = "cpu",
) -> TasteChoice:
    """Users for `counts[i]` rows of each item i (see module docstring).

    item_vectors [n, k]; counts [n] int >= 0; owned: (item, user) pairs that already exist — a sparse
    [n, U] matrix or two arrays of positions (items 0..n-1, users in `space`); eligible [U] bool: users that
    may be chosen (default all); used [U] int: rows the users already got earlier in the same generation
    (they count against the cap); offsets [U]: log-weights added to every user's prior (`taste_mix`, the
    users' feature mix matched to the real buyers'), or [G, U] with offset_groups [n]: item i's users take row
    offset_groups[i] (per feature group, `UserMix.targets`). Items with fewer eligible users than rows get what
    there is (stats `rows_missing`).
    """
    device = torch.device(device)
    counts = np.asarray(counts, dtype=np.int64)
    n_items, n_users = len(counts), len(space.user_ids)
    if item_vectors.shape != (n_items, space.dim):
        raise ValueError(f"choose_users: item_vectors of shape {tuple(item_vectors.shape)}, expected "
                         f"({n_items}, {space.dim}) for {n_items} counts in a {space.dim}-dimensional space")
    if (counts < 0).any():
        raise ValueError("choose_users: counts must be >= 0")
    owned_items, owned_users = _pairs(owned)
    prior = settings.activity_power * torch.log(torch.as_tensor(space.user_activity, dtype=torch.float32)
                                                .clamp_min(1)).to(device)
    per_group = None
    if offsets is not None:
        offsets = np.asarray(offsets, dtype=np.float32)
        if offsets.ndim == 2 and len(offsets) == 1:
            offsets = offsets[0]
        if offsets.ndim == 1:
            prior = prior + torch.as_tensor(offsets, device=device)
        else:
            if offset_groups is None or len(offset_groups) != n_items:
                raise ValueError("choose_users: offsets per group need offset_groups, one group per item")
            per_group = (torch.as_tensor(offsets, device=device), np.asarray(offset_groups, dtype=np.int64))
    if eligible is not None:
        prior = prior.masked_fill(~torch.as_tensor(np.asarray(eligible, dtype=bool), device=device), float("-inf"))
    taken = np.zeros(n_users, dtype=np.int64) if used is None else np.asarray(used, dtype=np.int64).copy()
    users_vectors = space.user_vectors.to(device)
    if settings.cosine:
        users_vectors = torch.nn.functional.normalize(users_vectors, dim=1)
    wanted = counts.copy()
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    rounds = 0
    while wanted.any() and rounds < MAX_ROUNDS:  # rounds (a handful): re-draws for capped users
        rounds += 1
        capped = taken >= settings.per_user_cap
        draw = np.flatnonzero(wanted > 0)
        items, users, keys, certainty = _draw(item_vectors, draw, wanted, users_vectors, prior, capped,
                                              owned_items, owned_users, settings, evidence, generator, device,
                                              per_group)
        if len(items) == 0:
            break
        keep = _within_cap(users, keys, settings.per_user_cap - taken)
        items, users, keys, certainty = items[keep], users[keep], keys[keep], certainty[keep]
        kept.append((items, users, keys, certainty))
        taken += np.bincount(users, minlength=n_users)
        wanted -= np.bincount(items, minlength=n_items)
        owned_items, owned_users = np.concatenate([owned_items, items]), np.concatenate([owned_users, users])
        if not keep.any():
            break
    items, users, _, certainty = (np.concatenate(parts) for parts in zip(*kept)) if kept else \
        (np.zeros(0, np.int64), np.zeros(0, np.int64), None, np.zeros(0, np.float32))
    order = np.lexsort((-certainty, items))
    items, users, certainty = items[order], users[order], certainty[order]
    stats = _stats(items, users, counts, space, settings, rounds, int(wanted.sum()))
    return TasteChoice(users.astype(np.int64), items.astype(np.int64), certainty.astype(np.float32), stats)


def _draw(item_vectors: torch.Tensor, draw: np.ndarray, wanted: np.ndarray, users_vectors: torch.Tensor,
          prior: torch.Tensor, capped: np.ndarray, owned_items: np.ndarray, owned_users: np.ndarray,
          settings: TasteSettings, evidence: Evidence | None, generator: torch.Generator | None,
          device: torch.device, per_group: tuple[torch.Tensor, np.ndarray] | None = None
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One round for the items `draw`: (item, user, key, certainty) of each item's `wanted` most certain of
    its wanted / (1 - drop) drawn users. per_group: ([G, U] offsets, [n] each item's row of them)."""
    order = np.argsort(owned_items, kind="stable")
    owned_items, owned_users = owned_items[order], owned_users[order]
    base = prior.masked_fill(torch.as_tensor(capped, device=device), float("-inf"))
    over = np.ceil(wanted / (1.0 - settings.drop_uncertain)).astype(np.int64)
    out: list[tuple[np.ndarray, ...]] = []
    for start in range(0, len(draw), CHUNK):  # chunks of items, not rows
        chunk = draw[start:start + CHUNK]
        vectors = item_vectors[torch.as_tensor(chunk)].to(device)
        score = _standardised(vectors @ users_vectors.T)
        if evidence is not None and settings.evidence_weight > 0:
            score = (1 - settings.evidence_weight) * score + \
                settings.evidence_weight * _standardised(evidence.scores(vectors))
        low, high = np.searchsorted(owned_items, [chunk[0], chunk[-1] + 1])
        mine = np.isin(owned_items[low:high], chunk)
        rows = torch.as_tensor(np.searchsorted(chunk, owned_items[low:high][mine]), device=device)
        logits = score / settings.temperature + base
        if per_group is not None:
            logits = logits + per_group[0][torch.as_tensor(per_group[1][chunk], device=device)]
        logits[rows, torch.as_tensor(owned_users[low:high][mine], device=device)] = float("-inf")
        uniform = torch.rand(logits.shape, generator=generator, device=device).clamp_(1e-12, 1.0)
        keys = logits - torch.log(-torch.log(uniform))  # Gumbel-top-k: sampling without replacement
        take = int(over[chunk].max())
        top_keys, top_users = keys.topk(min(take, keys.shape[1]), dim=1)
        top_certainty = score.gather(1, top_users)
        # Column j of item r counts when j < its draw and the key is finite (an eligible, unowned user).
        ranks = torch.arange(top_keys.shape[1], device=device).unsqueeze(0)
        valid = (ranks < torch.as_tensor(over[chunk], device=device).unsqueeze(1)) & torch.isfinite(top_keys)
        # The most certain `wanted` of the drawn ones: rank by certainty within the item.
        masked = top_certainty.masked_fill(~valid, float("-inf"))
        by_certainty = masked.argsort(dim=1, descending=True, stable=True)
        rank_of = torch.empty_like(by_certainty).scatter_(1, by_certainty, ranks.expand_as(by_certainty))
        keep = valid & (rank_of < torch.as_tensor(wanted[chunk], device=device).unsqueeze(1))
        row, column = keep.nonzero(as_tuple=True)
        out.append((chunk[row.cpu().numpy()], top_users[row, column].cpu().numpy(),
                    top_keys[row, column].cpu().numpy(), top_certainty[row, column].cpu().numpy()))
    return tuple(np.concatenate(parts) for parts in zip(*out))  # type: ignore[return-value]


def _standardised(score: torch.Tensor) -> torch.Tensor:
    """Each row's scores as z-scores over the users (a constant row: zeros)."""
    mean = score.mean(dim=1, keepdim=True)
    spread = score.std(dim=1, keepdim=True)
    return (score - mean) / torch.where(spread > 0, spread, torch.ones_like(spread))


def _within_cap(users: np.ndarray, keys: np.ndarray, room: np.ndarray) -> np.ndarray:
    """[m] bool: each user keeps its `room` rows with the highest keys (room [U] may be <= 0)."""
    order = np.lexsort((-keys, users))
    sorted_users = users[order]
    first = np.searchsorted(sorted_users, sorted_users, side="left")
    rank = np.arange(len(users)) - first
    keep = np.zeros(len(users), dtype=bool)
    keep[order] = rank < room[sorted_users]
    return keep


def _pairs(owned: sp.spmatrix | tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, np.ndarray]:
    if owned is None:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if sp.issparse(owned):
        coo = sp.coo_matrix(owned)
        nonzero = coo.data != 0
        return coo.row[nonzero].astype(np.int64), coo.col[nonzero].astype(np.int64)
    items, users = owned
    return np.asarray(items, dtype=np.int64), np.asarray(users, dtype=np.int64)


def distribution(values: np.ndarray) -> dict[str, float | int]:
    """A count distribution in a few figures (JSON-able)."""
    values = np.asarray(values)
    if values.size == 0:
        return {"n": 0}
    q = np.quantile(values, [0.5, 0.9, 0.99])
    return {"n": int(values.size), "mean": round(float(values.mean()), 3), "p50": float(q[0]), "p90": float(q[1]),
            "p99": float(q[2]), "max": int(values.max())}


def _stats(items: np.ndarray, users: np.ndarray, counts: np.ndarray, space: TasteSpace,
           settings: TasteSettings, rounds: int, missing: int) -> dict[str, Any]:
    per_user = np.bincount(users, minlength=len(space.user_ids))
    return {
        "rule": ("users drawn without replacement ∝ softmax(z(u·v)/tau) × activity^power, never one who has the "
                 "item, at most per_user_cap rows per user; each item keeps the most certain 1 - drop_uncertain "
                 "of its draws (certainty: the pair's standardised score)"),
        "settings": settings.plain(), "rows": int(len(users)), "rows_requested": int(counts.sum()),
        "rows_missing": missing, "rounds": rounds,
        "users_used": int((per_user > 0).sum()), "users": int(len(space.user_ids)),
        "synthetic_rows_per_user": distribution(per_user[per_user > 0]),
        "real_items_per_user": distribution(space.user_activity),
        "synthetic_rows_per_item": distribution(np.bincount(items, minlength=len(counts))[counts > 0]),
        "real_buyers_per_item": distribution(space.item_counts),
    }


MIN_STRATUM_USERS = 50
"""Users a country needs to be a stratum of its own (`Strata.of`); rarer countries share one."""


@dataclass(frozen=True)
class Strata:
    """Rows and users-table rows coded by one categorical user feature (rare values pooled into one code)."""

    name: str
    rows: np.ndarray
    """[n] int64: each generated row's stratum."""
    users: np.ndarray
    """[users-table rows] int64: each user's stratum."""

    @classmethod
    def of(cls, column: str, rows: pd.Series, users: pd.Series, min_users: int = MIN_STRATUM_USERS) -> Strata:
        """Strata of `column`: its values with at least `min_users` users, and one for all others (a generated
        value no user has included)."""
        sizes = users.astype(str).value_counts()
        kept = pd.Index(sorted(sizes.index[sizes >= min_users]))
        def code(values: pd.Series) -> np.ndarray:
            at = kept.get_indexer(values.astype(str))
            return np.where(at >= 0, at, len(kept)).astype(np.int64)
        return cls(column, code(rows), code(users))


class TasteUsers:
    """The Writer's side of `choose_users`: a shortlist of taste users for each candidate row of a call's items.

    Each `shortlist` call is one draw without replacement per item (no user twice in an item's shortlists,
    never a training buyer); which candidate a row takes is the Writer's (`users.nearest_of`). Pairs emitted
    twice across the gate's rounds and the per-user cap on emitted rows are the gate's (`gen.items.item_gate.ItemGate`).
    """

    def __init__(self, space: TasteSpace, vectors: torch.Tensor, owned: tuple[np.ndarray, np.ndarray],
                 table_positions: np.ndarray, settings: TasteSettings, device: str | torch.device,
                 evidence: Evidence | None = None) -> None:
        """vectors [n_items, k]; owned: (item code, space user) training pairs of the items; table_positions
        [U]: each space user's row in the users table (-1: absent there, never chosen)."""
        self.space, self.vectors, self.owned, self.settings, self.evidence = space, vectors, owned, settings, evidence
        self.device = torch.device(device)
        self.table_positions = np.asarray(table_positions, dtype=np.int64)
        self.offsets: np.ndarray | None = None
        """[groups, U] log-weights added to the prior (`match`)."""
        self.item_groups: np.ndarray | None = None
        """[n_items] each item's row of `offsets` (None: one row)."""
        self.group_rows: np.ndarray | None = None
        """[groups] the rows `match` was fitted for, per group."""
        self.mix_stats: dict[str, Any] | None = None
        self.weights: MixWeights | None = None

    def match(self, mix: UserMix, counts: np.ndarray, seed: int, item_groups: np.ndarray | None = None) -> None:
        """Fit `offsets` so that a draw of `counts` rows per item matches `mix`'s target (`taste_mix.calibrate`);
        item_groups [n_items]: each item's group in a grouped mix (`UserMix.targets`), whose draws are raked to
        their own group's target.

        The fitting draws have no per-user cap: generation draws a group's items at a time, where the cap
        rarely binds, so users near many items' vectors take rows across the calls that one capped draw of
        every item would have given to others (built-in tail, one-off buyers' frequency KS 0.016 for one
        capped draw, 0.17 for 60 draws of a group each)."""
        if mix.groups > 1 and (item_groups is None or len(item_groups) != len(self.vectors)):
            raise ValueError("match: a grouped mix needs each item's group")
        self.item_groups = None if mix.groups == 1 else np.asarray(item_groups, dtype=np.int64)
        eligible = self.table_positions >= 0
        uncapped = replace(self.settings, per_user_cap=int(counts.sum()) * self.settings.shortlist + 1)
        def draw(weights: MixWeights) -> tuple[np.ndarray, np.ndarray]:
            generator = torch.Generator(device=self.device).manual_seed(seed)
            choice = choose_users(self.vectors, counts * self.settings.shortlist, self.space, owned=self.owned,
                                  settings=uncapped, evidence=self.evidence, eligible=eligible,
                                  offsets=weights.offsets(self.table_positions), offset_groups=self.item_groups,
                                  generator=generator, device=self.device)
            return self.table_positions[choice.users], self._groups(choice.items)
        self.weights = calibrate(draw, mix)
        self.group_rows = np.bincount(self._groups(np.arange(len(counts))), weights=counts, minlength=mix.groups)
        self.offsets, self.mix_stats = self.weights.offsets(self.table_positions), self.weights.stats

    def after_filter(self, table_positions: np.ndarray, keep: np.ndarray, item_codes: np.ndarray) -> None:
        """One raking round on what the gate's filter keeps (`MixWeights.after_filter`): users-table positions
        [n] of a draw's rows, [n] each one's chance to pass the filter and [n] each row's item."""
        if self.weights is None:
            raise ValueError("after_filter: the chooser has no feature-mix weights (match first)")
        self.weights = self.weights.after_filter(np.asarray(table_positions, dtype=np.int64), keep,
                                                 self._groups(np.asarray(item_codes, dtype=np.int64)))
        self.offsets, self.mix_stats = self.weights.offsets(self.table_positions), self.weights.stats

    def pooled_offsets(self) -> np.ndarray | None:
        """[U] the offsets averaged over the groups by the rows each asks for (all of them: one group)."""
        if self.offsets is None:
            return None
        rows = self.group_rows if self.group_rows is not None and self.group_rows.sum() > 0 else \
            np.ones(len(self.offsets))
        return (rows @ self.offsets / rows.sum()).astype(np.float32)

    def _groups(self, item_codes: np.ndarray) -> np.ndarray:
        return np.zeros(len(item_codes), np.int64) if self.item_groups is None else self.item_groups[item_codes]

    def shortlist(self, item_codes: np.ndarray, rng: np.random.Generator,
                  strata: Strata | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """[n, shortlist] users-table positions for the rows of items `item_codes[n]` (-1 where the item ran
        out of eligible users; a row whose first entry is -1 has none), and summable stats.

        Row r of an item with n_i rows takes the item's draws r, r + n_i, r + 2 n_i, ...: every shortlist
        spans the item's range of certainty. strata: each row is drawn by taste among the users of its
        stratum only (the row's generated country): the generator decides the rows' demographic mix, taste
        who within it; one `choose_users` call per stratum, users of different strata are disjoint."""
        item_codes = np.asarray(item_codes, dtype=np.int64)
        seed = int(rng.integers(0, 2**62))
        eligible = self.table_positions >= 0
        if strata is None:
            out, choice = self._shortlist(item_codes, eligible, seed)
        else:
            user_strata = np.where(eligible, strata.users[np.maximum(self.table_positions, 0)], -1)
            out = np.full((len(item_codes), self.settings.shortlist), -1, dtype=np.int64)
            for stratum in np.unique(strata.rows):  # strata (a few dozen countries), not rows
                mine = strata.rows == stratum
                out[mine], choice = self._shortlist(item_codes[mine], eligible & (user_strata == stratum),
                                                    seed + int(stratum))
        rule = choice.stats["rule"] + (f"; {self.settings.shortlist} such users per row, the row's generated user "
                                       "features pick one (users.nearest_of)")
        if strata is not None:
            rule += f"; each row drawn among the users of its generated {strata.name}"
        return out, {"mode": "taste", "rows": len(item_codes), "rows_without_user": int((out[:, 0] < 0).sum()),
                     "candidates": int((out >= 0).sum()), "rule": rule}

    def _shortlist(self, item_codes: np.ndarray, eligible: np.ndarray, seed: int) -> tuple[np.ndarray, TasteChoice]:
        width = self.settings.shortlist
        counts = np.bincount(item_codes, minlength=len(self.vectors))
        generator = torch.Generator(device=self.device).manual_seed(seed)
        choice = choose_users(self.vectors, counts * width, self.space, owned=self.owned, settings=self.settings,
                              evidence=self.evidence, eligible=eligible, offsets=self.offsets,
                              offset_groups=self.item_groups, generator=generator,
                              device=self.device)
        order = np.argsort(item_codes, kind="stable")
        sorted_items = item_codes[order]
        rank = np.arange(len(order)) - np.searchsorted(sorted_items, sorted_items)
        chosen = np.bincount(choice.items, minlength=len(self.vectors))
        starts = np.searchsorted(choice.items, np.arange(len(self.vectors)))
        slots = rank[:, None] + np.arange(width)[None, :] * counts[sorted_items][:, None]  # [n, width]
        present = slots < chosen[sorted_items][:, None]
        at = starts[sorted_items][:, None] + np.where(present, slots, 0)
        picked = np.where(present, self.table_positions[choice.users[np.minimum(at, max(len(choice.users) - 1, 0))]]
                          if len(choice.users) else -1, -1)
        out = np.full((len(item_codes), width), -1, dtype=np.int64)
        out[order] = picked
        return out, choice
