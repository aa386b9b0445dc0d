"""The twenty lines a PyTorch user would write: the baseline of skae's default fit.

skae's default architecture for a code wider than 16 (784-512-256-k with GELU,
and the mirror), Adam with ``fused=True`` at skae's peak rate, batch 256,
0.5 * MSE, a fresh permutation of the rows every epoch, the loss summed on the
device and read once per epoch. No PCA start, no early stopping, no schedule:
what skae does beyond this is what its speed ratio pays for. ``precision=
"bfloat16"`` runs the forward pass and the loss under ``torch.autocast``.
"""

import itertools

import torch
from torch import nn


def mlp(widths):
    """Linear layers of these widths with GELU between them (none after the last)."""
    layers = []
    for index, (n_in, n_out) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(n_in, n_out))
        if index < len(widths) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


def train(
    X,
    n_epochs,
    n_components=30,
    hidden=(512, 256),
    batch_size=256,
    learning_rate=0.002,
    precision="float32",
    seed=0,
):
    """Train the autoencoder on a float32 tensor X; return the per-epoch mean losses."""
    torch.manual_seed(seed)
    n_features = X.shape[1]
    model = nn.Sequential(
        mlp([n_features, *hidden, n_components]),
        mlp([n_components, *reversed(hidden), n_features]),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, fused=True)
    autocast = torch.autocast(
        "cpu", dtype=torch.bfloat16, enabled=precision == "bfloat16"
    )
    losses = []
    for _ in range(n_epochs):
        order = torch.randperm(X.shape[0])
        total = torch.zeros((), dtype=torch.float64)
        for start in range(0, X.shape[0], batch_size):
            batch = X[order[start : start + batch_size]]
            with autocast:
                loss = 0.5 * nn.functional.mse_loss(model(batch), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * batch.shape[0]
        losses.append(float(total) / X.shape[0])
    return losses
