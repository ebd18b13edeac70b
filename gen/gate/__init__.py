"""The fidelity gate: row filters (support, calibrated discriminator, privacy), then the final tests against
held-out real rows. `run_gate` for one stream of candidates; `gen.items` composes the same pieces for
interactions of many items at once: one fill loop (`gen.gate.fill`) and one judgement (`gen.gate.verdict`)."""

from tailsynth.gen.gate.core import GateResult, run_gate

__all__ = ["GateResult", "run_gate"]
