"""The arithmetic of training: bfloat16 where the hardware computes it natively.

This module never imports scikit-learn. torch emulates bfloat16, about 100
times slower, on CPUs without AVX512-BF16 or AMX, so "auto" asks the hardware.
It decides by the hardware and the size of the fit only, never by timing, so a
fixed ``random_state`` gives one model on a given machine.
"""

import torch

# "auto" trains in bfloat16 when fit is given this many rows: below it a fit
# takes about a second either way, and float32 keeps small fits (where the
# comparison with PCA is decided on few held-out rows) in full precision.
AUTO_BFLOAT16_MIN_ROWS = 10_000


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


def choose_precision(device, n_samples):
    """Return "bfloat16" where `device` computes it natively and the fit is large.

    A fit given `n_samples` rows on `device`; "float32" elsewhere.
    """
    if n_samples >= AUTO_BFLOAT16_MIN_ROWS and native_bfloat16(device):
        return "bfloat16"
    return "float32"
