"""A conditional generator of taste vectors from content, trained with Lightning: `ContentTaste`'s
"generator" method (issue 19, part 2: the GAR/CVAR candidate).

CVAR (Zhao et al., SIGIR 2022) learns a conditional VAE over the warm items' vectors -- encoder q(z | v, c),
decoder g(z, c) -- and gives a cold item g(0, c), the decoder at the prior's mean. GAR (Chen et al., SIGIR
2022) trains its generator so that generated vectors *rank* users like warm ones; here that objective is a
BPR term on g(0, c): an item's real buyers above uniformly drawn users. Per batch of (user, item) training
pairs:

    ||g(z, c) - v||^2 / mean ||v||^2  +  beta KL(q || N(0, I))  +  rank_weight BPR(u+ . g(0, c), u- . g(0, c))

GAR's adversary (a recommender trained to tell generated vectors from warm ones) is left out: the BPR term
against the fixed space is the part of it that makes a vector rank. Every random draw (initial weights,
pair order, negatives, the posterior's noise) comes from the seed. Measured against content-kNN in
`evaluate/bench/taste_bench.py --with-generator`.
"""

from __future__ import annotations

from dataclasses import dataclass

import lightning as L
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from tailsynth.models.errors import DataError
from tailsynth.models.networks import VAEEncoder
from tailsynth.models.quiet import quiet_third_party


@dataclass(frozen=True)
class GeneratorSettings:
    hidden: int = 256
    latent: int = 16
    beta: float = 0.05
    rank_weight: float = 1.0
    learning_rate: float = 1e-3
    steps: int = 600
    batch: int = 4096


class TasteGenerator(L.LightningModule):
    """content [b, d] -> taste vector [b, k] (`forward`: the decoder at z = 0)."""

    def __init__(self, content_dim: int, taste_dim: int, settings: GeneratorSettings = GeneratorSettings()) -> None:
        super().__init__()
        self.settings = settings
        self.encoder = VAEEncoder(taste_dim + content_dim, (settings.hidden,), settings.latent)
        self.decoder = nn.Sequential(nn.Linear(settings.latent + content_dim, settings.hidden), nn.ReLU(),
                                     nn.Linear(settings.hidden, taste_dim))
        self.rng: torch.Generator | None = None

    def attach(self, content: Tensor, item_vectors: Tensor, user_vectors: Tensor, seed: int) -> None:
        """The warm items' content and vectors and the users' vectors the training pairs index (kept out of
        the state dict: the predictor stores the content, the space the vectors)."""
        self.register_buffer("content", content.float(), persistent=False)
        self.register_buffer("item_vectors", item_vectors.float(), persistent=False)
        self.register_buffer("user_vectors", user_vectors.float(), persistent=False)
        self.register_buffer("scale", (item_vectors.float() ** 2).sum(dim=1).mean().clamp_min(1e-12),
                             persistent=False)
        self.rng = torch.Generator().manual_seed(seed)

    def forward(self, content: Tensor) -> Tensor:
        zeros = content.new_zeros(len(content), self.settings.latent)
        return self.decoder(torch.cat([zeros, content], dim=1))

    def training_step(self, batch: list[Tensor], batch_idx: int) -> Tensor:
        users, items = batch[0][:, 0], batch[0][:, 1]
        content, vectors = self.content[items], self.item_vectors[items]
        mu, logvar = self.encoder(torch.cat([vectors, content], dim=1))
        noise = torch.randn(mu.shape, generator=self.rng).to(mu.device)
        rebuilt = self.decoder(torch.cat([mu + noise * (0.5 * logvar).exp(), content], dim=1))
        reconstruction = ((rebuilt - vectors) ** 2).sum(dim=1).mean() / self.scale
        kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(dim=1).mean()
        prior = self(content)
        negatives = torch.randint(len(self.user_vectors), (len(users),), generator=self.rng).to(users.device)
        margin = ((self.user_vectors[users] - self.user_vectors[negatives]) * prior).sum(dim=1)
        ranking = -nn.functional.logsigmoid(margin).mean()
        return reconstruction + self.settings.beta * kl + self.settings.rank_weight * ranking

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.settings.learning_rate, weight_decay=1e-5)


def fit_taste_generator(content: Tensor, item_vectors: Tensor, user_vectors: Tensor, pairs: Tensor, seed: int,
                        settings: GeneratorSettings = GeneratorSettings(),
                        accelerator: str = "cpu") -> TasteGenerator:
    """Train on `pairs` [P, 2] (user row, item row) of warm items whose `content` row is not empty; returns the
    module in eval mode on the CPU."""
    pairs = pairs[content[pairs[:, 1]].abs().sum(dim=1) > 0].long()
    if len(pairs) == 0:
        raise DataError("content->taste generator: no training pair has an item with content to learn from")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = TasteGenerator(content.shape[1], item_vectors.shape[1], settings)
    module.attach(content, item_vectors, user_vectors, seed)
    loader = DataLoader(TensorDataset(pairs), batch_size=settings.batch, shuffle=True,
                        generator=torch.Generator().manual_seed(seed))
    with quiet_third_party(start_lines=False):
        trainer = L.Trainer(max_steps=settings.steps, accelerator=accelerator, devices=1, logger=False,
                            enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False,
                            num_sanity_val_steps=0)
        trainer.fit(module, loader)
    return module.cpu().eval()
