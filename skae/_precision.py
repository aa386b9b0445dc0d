"""The arithmetic of training: bfloat16 where it is native and faster, else float32.

This module never imports scikit-learn. Whether bfloat16 pays depends on the
hardware (torch emulates it, about 100 times slower, on CPUs without AVX512-BF16
or AMX) and on the model (small layers gain less than the casts cost), so
`choose_precision` asks the hardware first and then times a few training steps
of copies of the model in each precision.
"""

import copy
import time

import torch

from skae._training import make_optimizer, reconstruction_loss

# bfloat16 is chosen only when its step takes at most this fraction of float32's:
# a smaller gain is within the noise of a few timed steps.
MARGIN = 0.9
# Timed rounds, each one step per precision in turn; the best of each counts.
ROUNDS = 3


def native_bfloat16(device):
    """Whether `device` computes bfloat16 natively (not emulated)."""
    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        cpu = torch.cpu
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)
    return False


def choose_precision(encoder, decoder, X, *, batch_size, loss, solver="adam"):
    """Return "bfloat16" where it is native and faster on this model, else "float32".

    The timed steps train deep copies of the modules on the first rows of X
    with a fresh optimizer: the model, its optimizer and every random generator
    are left untouched.
    """
    if not native_bfloat16(X.device):
        return "float32"
    modules = [copy.deepcopy(encoder), copy.deepcopy(decoder)]
    parameters = [p for module in modules for p in module.parameters()]
    optimizer = make_optimizer(parameters, solver, 1e-6)
    batch = X[:batch_size]
    best = {"float32": float("inf"), "bfloat16": float("inf")}
    for round_ in range(ROUNDS + 1):
        for precision in best:
            seconds = _timed_step(modules, optimizer, batch, loss, precision)
            # The first round warms up both paths (allocations, kernel choice).
            if round_:
                best[precision] = min(best[precision], seconds)
    return "bfloat16" if best["bfloat16"] <= MARGIN * best["float32"] else "float32"


def _timed_step(modules, optimizer, batch, loss, precision):
    """Return the seconds one optimisation step takes in `precision`."""
    if batch.device.type == "cuda":
        torch.cuda.synchronize(batch.device)
    start = time.perf_counter()
    with torch.autocast(
        batch.device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"
    ):
        value = reconstruction_loss(*modules, batch, batch, loss)
    optimizer.zero_grad(set_to_none=True)
    value.backward()
    optimizer.step()
    if batch.device.type == "cuda":
        torch.cuda.synchronize(batch.device)
    return time.perf_counter() - start
