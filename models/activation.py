"""Output activation of the encoded row: tanh for scalar spans, Gumbel-softmax for one-hot spans.

Encoded layouts have hundreds of small spans, so instead of a Python loop over spans `SpanPlan` groups them
once: all tanh positions in one index, and softmax spans grouped by width d into an index [g, d]. A batch
is then activated with one gather per group (tensor [b, g, d], softmax over the last axis) and one column
permutation back into matrix order — a handful of kernels whatever the number of spans. The plan is a
small `nn.Module` of non-persistent buffers, so it follows the model's `.to(device)` and stays out of the
`state_dict`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from tailsynth.models.layout import SpanInfo
from tailsynth.models.sampling import draw_uniform


class SpanPlan(nn.Module):
    """Index tensors that group the spans of a layout by activation and width (see the module docstring)."""

    def __init__(self, spans: Sequence[SpanInfo]) -> None:
        super().__init__()
        tanh_positions: list[int] = []
        groups: dict[int, list[list[int]]] = {}
        start = 0
        for span in spans:
            positions = list(range(start, start + span.dim))
            if span.activation == "tanh":
                tanh_positions.extend(positions)
            elif span.activation == "softmax":
                groups.setdefault(span.dim, []).append(positions)
            else:
                raise ValueError(f"unknown span activation {span.activation!r}; expected tanh or softmax")
            start += span.dim
        self.width = start
        self.group_dims = tuple(sorted(groups))
        self.register_buffer("tanh_index", torch.tensor(tanh_positions, dtype=torch.long), persistent=False)
        for dim in self.group_dims:
            self.register_buffer(f"group_{dim}", torch.tensor(groups[dim], dtype=torch.long), persistent=False)
        # Activated pieces are concatenated as [tanh | group d1 flattened | group d2 ...] (`order`: the
        # matrix column at each position of that grouped order); `inverse` maps it back to matrix order, and `is_tanh` marks tanh columns in matrix order.
        order = torch.cat([self.tanh_index] + [self.group(dim).flatten() for dim in self.group_dims])
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("inverse", torch.argsort(order), persistent=False)
        is_tanh = torch.zeros(self.width, dtype=torch.bool)
        is_tanh[self.tanh_index] = True
        self.register_buffer("is_tanh", is_tanh, persistent=False)

    def group(self, dim: int) -> Tensor:
        """Positions of the softmax spans of width `dim`: long [g, dim], one row per span."""
        return getattr(self, f"group_{dim}")

    @property
    def softmax_columns(self) -> int:
        """Number of matrix columns inside softmax spans."""
        return self.width - self.tanh_index.numel()


def activate(
    raw: Tensor,
    spans: Sequence[SpanInfo] | SpanPlan,
    *,
    tau: float,
    hard: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Activate raw network outputs [b, width] span by span; returns [b, width] in raw's dtype.

    tanh spans get tanh. softmax spans get Gumbel-softmax at temperature `tau`: soft samples for training,
    or with `hard=True` exact one-hots of argmax(logits + Gumbel noise), i.e. a draw from softmax(logits)
    (straight-through gradients if `raw` requires grad). Noise comes from `generator` (drawn on its own
    device), so the same seeded generator gives the same rows. Pass a prebuilt `SpanPlan` in hot paths.
    """
    plan = spans if isinstance(spans, SpanPlan) else SpanPlan(spans).to(raw.device)
    if raw.ndim != 2 or raw.shape[1] != plan.width:
        raise ValueError(f"expected raw outputs of shape [b, {plan.width}], got {tuple(raw.shape)}")
    batch = raw.shape[0]
    pieces = [torch.tanh(raw[:, plan.tanh_index])]
    uniform = draw_uniform((batch, plan.softmax_columns), generator, raw.device)
    gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(uniform.dtype).tiny)))
    offset = 0
    for dim in plan.group_dims:  # one iteration per distinct span width, not per span
        index = plan.group(dim)
        count = index.shape[0] * dim
        logits = raw[:, index.flatten()].view(batch, -1, dim)
        noise = gumbel[:, offset : offset + count].view(batch, -1, dim)
        offset += count
        soft = torch.softmax((logits.float() + noise) / tau, dim=-1)
        pieces.append(_harden(soft, keep_gradient=raw.requires_grad) if hard else soft)
    out = torch.cat([piece.flatten(1).to(raw.dtype) for piece in pieces], dim=1)
    return out.index_select(1, plan.inverse)


def _harden(soft: Tensor, keep_gradient: bool) -> Tensor:
    """One-hot of the argmax of soft [b, g, d]; straight-through (hard forward, soft backward) if training.

    Without gradients the plain one-hot is returned: `hard - soft + soft` is not exactly 0/1 in floats.
    """
    hard = torch.zeros_like(soft).scatter_(-1, soft.argmax(dim=-1, keepdim=True), 1.0)
    if not keep_gradient or not torch.is_grad_enabled():
        return hard
    return hard - soft.detach() + soft
