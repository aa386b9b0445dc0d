"""The textbook chapter's training loop, rewritten here as the speed baseline.

Same model (784-256-128-100, mirrored, sigmoid after every layer), Adam at 0.01,
batch 256, 0.5 * MSE, a numpy permutation of the rows every epoch, one
``loss.item()`` per batch: the loop a reader of the chapter would run.
"""

import itertools

import numpy as np
import torch


class MLP(torch.nn.Module):
    """Linear layers, each followed by a sigmoid, as in the chapter."""

    def __init__(self, layer_sizes):
        super().__init__()
        self.layers = torch.nn.ModuleList()
        for n_in, n_out in itertools.pairwise(layer_sizes):
            self.layers.append(torch.nn.Linear(n_in, n_out))
            self.layers.append(torch.nn.Sigmoid())

    def forward(self, x):
        """Apply the layers in order."""
        for layer in self.layers:
            x = layer(x)
        return x


def train(x_train, n_epochs, batch_size=256, learning_rate=0.01, seed=0):
    """Train the chapter's autoencoder on float32 rows; return the mean losses."""
    rng = np.random.RandomState(seed)
    torch.manual_seed(seed)
    encoder = MLP([784, 256, 128, 100])
    decoder = MLP([100, 128, 256, 784])
    optimizer = torch.optim.Adam(
        list(encoder.parameters()) + list(decoder.parameters()), lr=learning_rate
    )
    losses = []
    for _ in range(n_epochs):
        x_train = x_train[rng.permutation(len(x_train))]
        batch_losses = []
        for start in range(0, len(x_train), batch_size):
            X = torch.from_numpy(x_train[start : start + batch_size])
            loss = 0.5 * torch.nn.functional.mse_loss(X, decoder(encoder(X)))
            batch_losses.append(loss.item())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        losses.append(float(np.mean(batch_losses)))
    return losses
