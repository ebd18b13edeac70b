"""The benchmark's settings: which systems, how each is configured under "equal" and "best", which device.

The bench reads the `bench:` section of its YAML (e.g. configs/bench_online_retail.yaml) into
`BenchSettings`; the rest of the file is an ordinary `RunConfig`. Both are validated by the same strict
loader as every config (unknown keys and wrong types are refused).

Settings:
- "equal": every system with the same epochs, batch size, layer widths, pac and embedding size, so seconds
  per epoch compare like with like;
- "best": each system at its own best batch size (ours: a large batch on a GPU, the measured best on a
  CPU; SDV: its default unless measured better) and its own default networks.

`train`/`models` are imported lazily: this module lives in `evaluate/`, which never imports `models/` at
import time; only the bench's orchestration needs the training side.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Union


from tailsynth.evaluate.bench.peers.sdv import PeerSettings

if TYPE_CHECKING:
    from tailsynth.train.config import RunConfig

Setting = Literal["equal", "best"]
Device = Literal["auto", "cpu", "cuda"]


class System(NamedTuple):
    family: Literal["ours", "sdv", "argn"]
    kind: Literal["ctgan", "tvae", "argn"]


SYSTEMS: dict[str, System] = {
    "ours-ctgan": System("ours", "ctgan"),
    "ours-tvae": System("ours", "tvae"),
    "sdv-ctgan": System("sdv", "ctgan"),
    "sdv-tvae": System("sdv", "tvae"),
    # MOSTLY AI's TabularARGN (mostlyai-engine), run from the peers' venv (evaluate.peer_venv)
    "argn": System("argn", "argn"),
}
DEFAULT_SYSTEMS = ("ours-ctgan", "ours-tvae", "sdv-ctgan", "sdv-tvae")
"""What `tailsynth evaluate bench` runs without --systems: argn is opt-in (it installs its own venv)."""
BUDGET_MAX_EPOCHS = 100_000
"""Epoch cap under an equal wall-time budget (`budget_s`): the time limit is what stops every system."""
PAIRS = (("ours-ctgan", "sdv-ctgan"), ("ours-tvae", "sdv-tvae"))
"""Each of our systems and the SDV system it is compared with."""

# SDV 2.0's own defaults (sdv/single_table/ctgan.py signatures): the networks the "best" setting gives it.
SDV_DEFAULT_HIDDEN = {"ctgan": (256, 256), "tvae": (128, 128)}
SDV_DEFAULT_CRITIC = (256, 256)
SDV_DEFAULT_PAC = 10
SDV_DEFAULT_EMBEDDING = 128


@dataclass(frozen=True)
class EqualSetting:
    """Hyper-parameters shared by all systems in the "equal" setting (CTGAN's published defaults)."""

    batch_size: int = 500
    embedding_dim: int = 128
    hidden_dims: tuple[int, ...] = (256, 256)
    """CTGAN generator; TVAE encoder and decoder (both sides)."""
    critic_dims: tuple[int, ...] = (256, 256)
    pac: int = 10


@dataclass(frozen=True)
class BestSetting:
    """Each system's own best batch size; networks stay at each system's defaults."""

    ours_batch_size_gpu: int = 8000
    ours_batch_size_cpu: int = 500
    sdv_batch_size: int = 500


@dataclass(frozen=True)
class BenchSettings:
    bucket_column: str = "pop_bucket"
    tail_label: str = "tail"
    sample_rows: int = 100_000
    """Unconditional draw that is timed."""
    tail_rows: int = 10_000
    """Conditional draw of `tail_label` rows that is timed and judged."""
    judge_rows: int = 10_000
    """Holdout tail rows every sample is judged against (a seeded sample when there are more): as many as
    `tail_rows` keeps the discriminator AUC's two classes balanced and bounds the judging time."""
    system_timeout_s: Union[int, None] = None
    """Wall-clock limit per system process (a stuck reject-sampling loop, say); None: no limit."""
    auc: bool = True
    """Judge samples with the discriminator AUC too (seconds per measure on a CPU; off only for smoke tests)."""
    device: Device = "auto"
    """auto: the GPU when one is present, else the CPU; applies to every system."""
    gpu_precision: str = "bf16-mixed"
    """Our trainer's precision on a GPU (SDV has no such switch and trains in float32)."""
    cpu_precision: str = "32-true"
    equal: EqualSetting = field(default_factory=EqualSetting)
    best: BestSetting = field(default_factory=BestSetting)


def load_bench_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[RunConfig, BenchSettings]:
    """Read a bench YAML: its `bench:` section becomes `BenchSettings`, the rest a validated `RunConfig`.

    `overrides` are `a.b=value` strings; `bench.x=value` ones go to the bench section.
    """
    from tailsynth.train.config import RunConfig, from_dict, read_raw_config

    raw = read_raw_config(path, overrides)
    bench_raw = raw.pop("bench", None) or {}
    bench = from_dict(BenchSettings, bench_raw, where=f"{path} (bench section)")
    return from_dict(RunConfig, raw, where=str(path)), bench


def resolve_device(bench: BenchSettings) -> Literal["cpu", "cuda"]:
    """The device every system uses; asking for cuda on a machine without one is an error."""
    import torch

    if bench.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("bench.device is cuda but torch sees no GPU on this machine (use auto or cpu)")
    if bench.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return bench.device


def ours_config(
    config: RunConfig, system: str, bench: BenchSettings, *, setting: Setting, epochs: int,
    rows: int | None, seed: int, device: str, out: Path, budget_s: float | None = None,
) -> RunConfig:
    """The RunConfig one of our systems trains with under `setting` (written under `out/systems/<system>`).

    With `budget_s`, training stops after that many seconds (`trainer.max_time_s`) instead of after
    `epochs`, and the fidelity monitor is off (it would spend the budget's time on sampling and judging).
    """
    kind = SYSTEMS[system].kind
    model = replace(config.model, kind=kind)
    if setting == "equal":
        eq = bench.equal
        model = replace(
            model,
            ctgan=replace(model.ctgan, generator_dims=eq.hidden_dims, critic_dims=eq.critic_dims, pac=eq.pac,
                          embedding_dim=eq.embedding_dim),
            tvae=replace(model.tvae, compress_dims=eq.hidden_dims, decompress_dims=eq.hidden_dims,
                         embedding_dim=eq.embedding_dim),
        )
        batch_size = eq.batch_size
    else:
        batch_size = bench.best.ours_batch_size_gpu if device == "cuda" else bench.best.ours_batch_size_cpu
    trainer = replace(
        config.trainer, max_epochs=epochs, batch_size=batch_size, accelerator="gpu" if device == "cuda" else "cpu",
        devices=1, strategy="auto", num_nodes=1, limit_train_batches=None, progress_bar=False,
        precision=bench.gpu_precision if device == "cuda" else bench.cpu_precision,
    )
    monitor = config.monitor
    if budget_s is not None:
        trainer = replace(trainer, max_epochs=BUDGET_MAX_EPOCHS, max_time_s=float(budget_s))
        monitor = replace(monitor, enabled=False)
    data = replace(config.data, max_train_rows=rows) if rows is not None else config.data
    return replace(config, data=data, model=model, trainer=trainer, monitor=monitor, seed=seed,
                   out_dir=str(out / "systems"), name=system)


def peer_settings(system: str, bench: BenchSettings, *, setting: Setting, epochs: int, device: str,
                  budget_s: float | None = None) -> PeerSettings:
    """SDV's hyper-parameters for `system` under `setting` (with `budget_s`: stopped by time, not epochs)."""
    kind = SYSTEMS[system].kind
    if budget_s is not None:
        epochs = BUDGET_MAX_EPOCHS
    if setting == "equal":
        eq = bench.equal
        return PeerSettings(kind=kind, epochs=epochs, batch_size=eq.batch_size, embedding_dim=eq.embedding_dim,
                            hidden_dims=eq.hidden_dims, critic_dims=eq.critic_dims, pac=eq.pac,
                            enable_gpu=device == "cuda", budget_s=budget_s)
    return PeerSettings(kind=kind, epochs=epochs, batch_size=bench.best.sdv_batch_size,
                        embedding_dim=SDV_DEFAULT_EMBEDDING, hidden_dims=SDV_DEFAULT_HIDDEN[kind],
                        critic_dims=SDV_DEFAULT_CRITIC, pac=SDV_DEFAULT_PAC, enable_gpu=device == "cuda",
                        budget_s=budget_s)


def peer_from_dict(data: dict[str, Any]) -> PeerSettings:
    """Inverse of `dataclasses.asdict(PeerSettings)` after a JSON round trip (lists back to tuples)."""
    names = {f.name for f in dataclasses.fields(PeerSettings)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(f"peer settings: unknown key(s) {unknown}")
    return PeerSettings(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def system_settings(config: RunConfig | None, peer: PeerSettings | None) -> dict[str, Any]:
    """The hyper-parameters a system ran with, for the report (same keys for ours and SDV)."""
    if peer is not None:
        return {
            "kind": peer.kind, "epochs": peer.epochs, "batch_size": peer.batch_size,
            "embedding_dim": peer.embedding_dim, "hidden_dims": list(peer.hidden_dims),
            "critic_dims": list(peer.critic_dims) if peer.kind == "ctgan" else None,
            "pac": peer.pac if peer.kind == "ctgan" else None, "gpu": peer.enable_gpu, "precision": "32-true",
        }
    assert config is not None
    model = config.model
    ctgan = model.kind == "ctgan"
    return {
        "kind": model.kind, "epochs": config.trainer.max_epochs, "batch_size": config.trainer.batch_size,
        "embedding_dim": model.ctgan.embedding_dim if ctgan else model.tvae.embedding_dim,
        "hidden_dims": list(model.ctgan.generator_dims if ctgan else model.tvae.compress_dims),
        "critic_dims": list(model.ctgan.critic_dims) if ctgan else None,
        "pac": model.ctgan.pac if ctgan else None, "gpu": config.trainer.accelerator == "gpu",
        "precision": config.trainer.precision,
    }
