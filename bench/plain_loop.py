"""The twenty lines a PyTorch user would write: the baseline of skae's default fit.

skae's default architecture for a code wider than 16 (784-512-256-k with GELU,
and the mirror), Adam with ``fused=True`` at skae's peak rate, batch 256,
0.5 * MSE, a fresh permutation of the rows every epoch, the loss summed on the
device and read once per epoch. No PCA start, no early stopping, no schedule:
what skae does beyond this is what its speed ratio pays for. ``precision=
"bfloat16"`` runs the forward pass and the loss under ``torch.autocast``.
``linear_paths=True`` trains skae's network itself: a linear path from the
input to the code beside the encoder's MLP, and one from the code to the output
beside the decoder's (skae starts them from PCA; here they start at random,
which costs the same per step).
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


class WithLinearPath(nn.Module):
    """``linear(x) + mlp(x)``: an MLP beside a linear map of the same shapes."""

    def __init__(self, mlp):
        super().__init__()
        self.mlp = mlp
        self.linear = nn.Linear(mlp[0].in_features, mlp[-1].out_features)

    def forward(self, x):
        return self.linear(x) + self.mlp(x)


def train(
    X,
    n_epochs,
    n_components=30,
    hidden=(512, 256),
    batch_size=256,
    learning_rate=0.002,
    precision="float32",
    linear_paths=False,
    seed=0,
):
    """Train the autoencoder on a float32 tensor X; return the per-epoch mean losses."""
    torch.manual_seed(seed)
    n_features = X.shape[1]
    encoder = mlp([n_features, *hidden, n_components])
    decoder = mlp([n_components, *reversed(hidden), n_features])
    if linear_paths:
        encoder, decoder = WithLinearPath(encoder), WithLinearPath(decoder)
    model = nn.Sequential(encoder, decoder)
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
