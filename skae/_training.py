"""The training loop and batched inference, as plain torch functions.

This module never imports scikit-learn. Tensors go in, an `EpochRecord` per epoch
comes out; the estimator turns them into scikit-learn's fitted attributes.
"""

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from skae._modules import split_last_activation

SOLVERS = ("adam", "adamw", "sgd")
LOSSES = ("squared_error", "binary_crossentropy")
INFERENCE_BATCH_SIZE = 4096


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of training measured."""

    epoch: int
    train_loss: float
    seconds: float
    validation_loss: float | None = None


def make_optimizer(parameters, solver, learning_rate, momentum=0.9):
    """Return the torch optimizer named by `solver` over `parameters`."""
    parameters = list(parameters)
    if solver == "adam":
        return torch.optim.Adam(parameters, lr=learning_rate)
    if solver == "adamw":
        return torch.optim.AdamW(parameters, lr=learning_rate)
    if solver == "sgd":
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=momentum)
    raise ValueError(f"solver={solver!r} is not one of {SOLVERS}.")


def reconstruction_loss(encoder, decoder, X, loss):
    """Mean reconstruction loss of the batch `X` (a scalar tensor).

    ``squared_error`` is 0.5 * mean squared error over all entries, the chapter's
    loss and MLPRegressor's. ``binary_crossentropy`` is computed from the decoder's
    pre-sigmoid output when it ends in a sigmoid, which is exact and avoids log(0).
    """
    if loss == "squared_error":
        return 0.5 * functional.mse_loss(decoder(encoder(X)), X)
    if loss == "binary_crossentropy":
        body, last = split_last_activation(decoder)
        if isinstance(last, nn.Sigmoid):
            return functional.binary_cross_entropy_with_logits(body(encoder(X)), X)
        return functional.binary_cross_entropy(decoder(encoder(X)), X)
    raise ValueError(f"loss={loss!r} is not one of {LOSSES}.")


def l2_penalty(modules, alpha, n_samples):
    """MLPRegressor's penalty: 0.5 * alpha * sum of squared weights / n_samples."""
    total = sum(
        layer.weight.square().sum()
        for module in modules
        for layer in module
        if isinstance(layer, nn.Linear)
    )
    return 0.5 * alpha * total / n_samples


def train_epochs(
    encoder,
    decoder,
    X,
    *,
    optimizer,
    n_epochs,
    batch_size,
    loss="squared_error",
    alpha=0.0,
    shuffle=True,
    generator=None,
    first_epoch=0,
    on_epoch_end=None,
    batch_progress=None,
):
    """Run `n_epochs` passes of mini-batch optimisation over the rows of `X`.

    Parameters
    ----------
    encoder, decoder : torch.nn.Module
        Trained in place.
    X : torch.Tensor of shape (n_samples, n_features)
        Training data, already on the modules' device and dtype.
    optimizer : torch.optim.Optimizer
        Over the parameters of both modules.
    n_epochs : int
        Number of passes over `X`.
    batch_size : int
        Rows per optimisation step; the last batch of an epoch may be smaller.
    loss : {"squared_error", "binary_crossentropy"}, default="squared_error"
        Reconstruction loss, see `reconstruction_loss`.
    alpha : float, default=0.0
        L2 penalty on the weights, see `l2_penalty`.
    shuffle : bool, default=True
        Draw a new order of the rows at every epoch.
    generator : torch.Generator, default=None
        CPU generator for the shuffling; ``None`` uses torch's global generator.
    first_epoch : int, default=0
        Number given to the first epoch's record.
    on_epoch_end : callable, default=None
        Called with each `EpochRecord`; returning True stops training.
    batch_progress : callable, default=None
        ``batch_progress(epoch, n_batches)`` returns an object with ``update(n)``
        and ``close()`` (a tqdm bar, say), advanced after every batch.

    Returns
    -------
    records : list of EpochRecord
        One per completed epoch.
    """
    n_samples = X.shape[0]
    records = []
    for epoch in range(first_epoch, first_epoch + n_epochs):
        start_time = time.perf_counter()
        # Callbacks may run inference between epochs, which switches to eval mode.
        encoder.train()
        decoder.train()
        if shuffle:
            order = torch.randperm(n_samples, generator=generator).to(X.device)
        # Accumulate on the device: one host synchronisation per epoch, not per batch.
        loss_sum = torch.zeros((), dtype=torch.float64, device=X.device)
        progress = None
        if batch_progress is not None:
            progress = batch_progress(epoch, -(-n_samples // batch_size))
        for start in range(0, n_samples, batch_size):
            stop = min(start + batch_size, n_samples)
            batch = X[order[start:stop]] if shuffle else X[start:stop]
            batch_loss = reconstruction_loss(encoder, decoder, batch, loss)
            if alpha:
                batch_loss = batch_loss + l2_penalty(
                    (encoder, decoder), alpha, stop - start
                )
            optimizer.zero_grad(set_to_none=True)
            batch_loss.backward()
            optimizer.step()
            loss_sum += batch_loss.detach() * (stop - start)
            if progress is not None:
                progress.update(1)
        if progress is not None:
            progress.close()
        record = EpochRecord(
            epoch=epoch,
            train_loss=float(loss_sum) / n_samples,
            seconds=time.perf_counter() - start_time,
        )
        records.append(record)
        if on_epoch_end is not None and on_epoch_end(record):
            break
    encoder.eval()
    decoder.eval()
    return records


def apply_in_batches(module, X, *, device="cpu", out_dtype=None):
    """Run `module` over the rows of the array `X`, a batch at a time.

    Only one batch of `X` is converted to a float32 tensor at a time, so `X` can be
    a memory map far larger than memory; the result is written into one
    preallocated array of dtype `out_dtype` (default: `X`'s dtype).

    Returns
    -------
    out : ndarray of shape (n_samples, n_outputs)
    """
    out = None
    n_samples = X.shape[0]
    module.eval()
    with torch.inference_mode():
        for start in range(0, n_samples, INFERENCE_BATCH_SIZE):
            stop = min(start + INFERENCE_BATCH_SIZE, n_samples)
            batch = np.ascontiguousarray(X[start:stop], dtype=np.float32)
            result = module(torch.from_numpy(batch).to(device)).cpu().numpy()
            if out is None:
                out = np.empty((n_samples, result.shape[1]), dtype=out_dtype or X.dtype)
            out[start:stop] = result
    return out
