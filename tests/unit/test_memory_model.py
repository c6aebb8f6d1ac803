"""The memory model (bench.parallel.activations, through memory_plan.predict) against this
code's own step on the CPU, in this process: the bytes a forward saves for backward, counted
with saved_tensors_hooks, and the CPU allocator's peak over a step from torch.profiler
(TP 2 under gloo: tests/integration/test_memory_tp.py)."""

from __future__ import annotations

import pytest
import torch

from bench.backends import selection
from models import registry
from tests.memory_probe import Probe

# tiny: the activations set the peak (the loss's backward, a checkpointed block's
# recompute); 125m at 64 tokens: its 134M parameters do (AdamW's for-loop temporaries)
SHAPES = {"tiny": (2, 256), "125m": (1, 64)}


@pytest.fixture(scope="module")
def models() -> dict[str, torch.nn.Module]:
    """Each registry model built once (seed 0, as a run builds it); a case trains a copy."""
    out = {}
    for name in SHAPES:
        torch.manual_seed(0)
        out[name] = registry.build(registry.get(name), device="cpu").train()
    return out


@pytest.mark.parametrize("ac", ["none", "selective", "full"])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("model", list(SHAPES))
def test_saved_bytes_and_step_peak_match_the_plan(models, model, precision, ac):
    b, t = SHAPES[model]
    cfg = selection.resolve_run("cpu", {"model": model, "batch": b, "seq": t,
                                        "precision": precision, "ac": ac})[0]
    probe = Probe.build(cfg, models[model])
    counter, resident, step_peak = probe.profiled()
    pred = probe.prediction()
    assert pred.basis[0] == "measured"
    # saved for backward: activations and the loss's log-probabilities, and the bf16
    # weight copies autocast keeps (the counter's activations include the token ids and
    # targets, 16 bytes a token, which the plan counts as the batch)
    saved = counter.total("activation")
    planned = pred.saved["activations"] + pred.saved["logits"]
    assert planned == pytest.approx(saved, rel=0.10), (planned, saved)
    assert pred.saved["autocast"] == pytest.approx(counter.total("autocast"), rel=0.10, abs=1)
    # the peak: the whole rank, and its growth over the resident parameters and states
    growth = pred.total - pred.parts["parameters"] - pred.parts["optimizer"]
    assert growth == pytest.approx(step_peak, rel=0.10), (pred.phase, growth, step_peak)
    assert pred.total == pytest.approx(resident + step_peak, rel=0.10)
