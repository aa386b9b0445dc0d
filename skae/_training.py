"""The training loop and batched inference, as plain torch functions.

This module never imports scikit-learn. Tensors go in, an `EpochRecord` per epoch
comes out; the estimator turns them into scikit-learn's fitted attributes.
"""

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional

import skae._distributed as _distributed
from skae._missing import masked_evaluation, masked_loss
from skae._modules import split_last_activation
from skae._sparse import DENSE_BATCH_ENTRIES, batch_rows
from skae._torch_utils import module_device

SOLVERS = ("adam", "adamw", "sgd")
LOSSES = ("squared_error", "binary_crossentropy")
SCHEDULES = ("constant", "cosine", "one_cycle")
NOISE_KINDS = ("gaussian", "mask", "missing")
PRECISIONS = ("float32", "bfloat16")
INFERENCE_BATCH_SIZE = 4096
# Inference runs the model on chunks of exactly this many rows (see
# `apply_in_batches`): a fixed shape makes a row's result independent of the
# rows around it. 384 = 2**7 * 3 divides into whole blocks of the row counts
# MKL's sgemm kernels take at a time (6 on AVX2; 16, 32 and 64 on AVX-512), also
# when its threads split the rows: 256 left 2 of every 6 rows to another kernel
# on AVX2 (docs/user_guide/performance.rst has the measurements).
INFERENCE_CHUNK_ROWS = 384
# Wider rows go in fewer at a time, so that a chunk holds at most about
# DENSE_BATCH_ENTRIES values (16 MB), but always a multiple of 48 rows (whole
# blocks of 6 and of 16): the chunk's shape is still fixed for a given width.
CHUNK_ROW_MULTIPLE = 48
# Learning rate of the PCA paths of a PCA start, as a fraction of the others'.
# They start optimal, so their gradients are tiny, but Adam normalises every
# step to about the learning rate: at full rate the first epochs move them as
# far as the corrections and the model validates worse than its start for
# several epochs (bench/start.py).
PCA_PATH_LR_SCALE = 0.1
# The fraction of a one-cycle schedule that raises the rate (OneCycleLR's
# pct_start).
ONE_CYCLE_WARM_UP = 0.3


@dataclass(frozen=True)
class EpochRecord:
    """What one epoch of training measured.

    ``validation_loss`` is the training loss on the held-out rows and
    ``validation_score`` their negative mean squared reconstruction error; both
    are None when nothing was held out.
    """

    epoch: int
    train_loss: float
    seconds: float
    validation_loss: float | None = None
    validation_score: float | None = None


def make_optimizer(
    parameters, solver, learning_rate, momentum=0.9, slow=(), slow_scale=None
):
    """Return the torch optimizer named by `solver` over `parameters`.

    Parameters in `slow` (a subset of `parameters`: the PCA paths of a PCA
    start) form a second group whose learning rate is `slow_scale` (default
    ``PCA_PATH_LR_SCALE``) times the others', under every schedule.
    """
    parameters = list(parameters)
    # A NumPy scalar rate would end up in the optimizer's state, which files
    # store as JSON.
    learning_rate = float(learning_rate)
    if slow_scale is None:
        slow_scale = PCA_PATH_LR_SCALE
    groups = parameters
    if slow:
        fast, slow = split_parameters(parameters, slow)
        groups = [
            {"params": fast},
            {
                "params": slow,
                "lr_scale": slow_scale,
                "lr": learning_rate * slow_scale,
            },
        ]
    # The fused kernels update all parameters in one pass: ~30% more training
    # samples/s than the default multi-tensor Adam on a 2-core CPU.
    fused = all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in parameters
    )
    if solver == "adam":
        return torch.optim.Adam(groups, lr=learning_rate, fused=fused or None)
    if solver == "adamw":
        return torch.optim.AdamW(groups, lr=learning_rate, fused=fused or None)
    if solver == "sgd":
        return torch.optim.SGD(groups, lr=learning_rate, momentum=float(momentum))
    raise ValueError(f"solver={solver!r} is not one of {SOLVERS}.")


def split_parameters(parameters, slow):
    """Return (the others, `slow`) from `parameters`, each in `parameters`' order.

    The order of an optimizer with a slow group: its state is indexed by it.
    """
    slow_ids = {id(p) for p in slow}
    return (
        [p for p in parameters if id(p) not in slow_ids],
        [p for p in parameters if id(p) in slow_ids],
    )


def make_scheduler(optimizer, schedule, learning_rate, total_steps):
    """Return a per-step learning-rate scheduler, or None for "constant".

    The optimizer's learning rate is first reset to `learning_rate` (times a
    group's ``lr_scale``), so a schedule always starts from the same place,
    also when training resumes.
    """
    rates = []
    learning_rate = float(learning_rate)
    for group in optimizer.param_groups:
        group["lr"] = learning_rate * group.get("lr_scale", 1.0)
        # A previous schedule's start would otherwise be kept as this one's.
        group.pop("initial_lr", None)
        rates.append(group["lr"])
    if schedule == "constant":
        return None
    if schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(total_steps, 1)
        )
    if schedule == "one_cycle":
        # OneCycleLR needs at least two steps to rise and fall.
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=rates,
            total_steps=max(total_steps, 2),
            pct_start=ONE_CYCLE_WARM_UP,
        )
    raise ValueError(f"learning_rate={schedule!r} is not one of {SCHEDULES}.")


class Schedule:
    """A learning-rate schedule over `total_steps` steps that can be re-sized mid-run.

    A time-budgeted fit learns how many epochs it can afford only after its
    first one; `resize` then replays the schedule for the new length up to the
    step reached, so that the rest of the run follows the schedule it would
    have had if the length had been known from the start.
    """

    def __init__(self, optimizer, name, learning_rate, total_steps):
        self.optimizer = optimizer
        self.name = name
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.scheduler = make_scheduler(optimizer, name, learning_rate, total_steps)

    @property
    def steps(self):
        """Number of steps taken so far."""
        return 0 if self.scheduler is None else self.scheduler.last_epoch

    def step(self):
        """Advance the schedule by one optimisation step."""
        if self.scheduler is not None:
            self.scheduler.step()

    def resize(self, total_steps):
        """Make the schedule `total_steps` long, keeping the steps taken."""
        if total_steps == self.total_steps or self.scheduler is None:
            self.total_steps = total_steps
            return
        steps = self.steps
        if total_steps < steps:
            raise ValueError(
                f"A schedule of {total_steps} steps cannot keep {steps} steps taken."
            )
        self.total_steps = total_steps
        self.scheduler = make_scheduler(
            self.optimizer, self.name, self.learning_rate, total_steps
        )
        with warnings.catch_warnings():
            # Replaying steps without optimizer steps is the point here.
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(steps):
                self.scheduler.step()

    def state_dict(self):
        """Return the torch scheduler's state (None for a constant rate)."""
        return None if self.scheduler is None else self.scheduler.state_dict()

    def load_state_dict(self, state):
        """Put back a state returned by `state_dict`."""
        if self.scheduler is not None and state is not None:
            self.scheduler.load_state_dict(state)


def n_batches(n_samples, batch_size):
    """Return the number of optimisation steps in one epoch."""
    return math.ceil(n_samples / batch_size)


def reconstruction_loss(encoder, decoder, X_input, X_target, loss, sample_weight=None):
    """Mean reconstruction loss of one batch (a scalar tensor).

    ``squared_error`` is 0.5 * mean squared error over all entries, the chapter's
    loss and MLPRegressor's. ``binary_crossentropy`` is computed from the
    decoder's pre-sigmoid output when it ends in a sigmoid, which is exact and
    avoids log(0). `X_input` may be a corrupted copy of `X_target` (denoising).
    With `sample_weight`, each row's loss is weighted before averaging.
    """
    if sample_weight is None:
        # Without weights, the fused mean reduction is faster than per-row losses.
        return _entry_losses(encoder, decoder, X_input, X_target, loss, "mean")
    return (
        row_losses(encoder, decoder, X_input, X_target, loss) * sample_weight
    ).mean()


def row_losses(encoder, decoder, X_input, X_target, loss):
    """Reconstruction loss of each row, averaged over its entries."""
    return _entry_losses(encoder, decoder, X_input, X_target, loss, "none").mean(dim=1)


def _entry_losses(encoder, decoder, X_input, X_target, loss, reduction):
    """Return the loss of every entry (reduction="none") or their mean."""
    if loss == "squared_error":
        return 0.5 * functional.mse_loss(
            decoder(encoder(X_input)), X_target, reduction=reduction
        )
    if loss == "binary_crossentropy":
        body, last = split_last_activation(decoder)
        if isinstance(last, nn.Sigmoid):
            return functional.binary_cross_entropy_with_logits(
                body(encoder(X_input)), X_target, reduction=reduction
            )
        return functional.binary_cross_entropy(
            decoder(encoder(X_input)), X_target, reduction=reduction
        )
    raise ValueError(f"loss={loss!r} is not one of {LOSSES}.")


def l2_penalty(modules, alpha, n_samples):
    """MLPRegressor's penalty: 0.5 * alpha * sum of squared weights / n_samples."""
    total = sum(
        layer.weight.square().sum()
        for module in modules
        for layer in module.modules()
        if isinstance(layer, nn.Linear)
    )
    return 0.5 * alpha * total / n_samples


def corrupt(X, noise, generator):
    """Return a noisy copy of X for denoising: Gaussian noise and/or masking.

    `noise` maps "gaussian" to a standard deviation, "mask" to the fraction
    of entries set to zero and "missing" to the fraction of entries hidden as
    missing (NaN), which the masked loss fills in the input and still scores.
    """
    X = X.clone()
    std = noise.get("gaussian", 0.0)
    if std:
        X += std * torch.randn(X.shape, generator=generator, device=X.device)
    fraction = noise.get("mask", 0.0)
    if fraction:
        keep = torch.rand(X.shape, generator=generator, device=X.device) >= fraction
        X *= keep
    fraction = noise.get("missing", 0.0)
    if fraction:
        hide = torch.rand(X.shape, generator=generator, device=X.device) < fraction
        X[hide] = torch.nan
    return X


def evaluate(encoder, decoder, X, loss, sample_weight=None, batch_size=None, fill=None):
    """Return (mean loss, negative mean squared error) of reconstructing X.

    With `sample_weight`, both are means over the rows weighted by it, as
    MLPRegressor weights its validation score. With `fill`, X may have missing
    entries (NaN): each row is scored on its observed entries
    (`skae._missing.masked_evaluation`).
    """
    batch_size = batch_size or batch_rows(X.shape[1], INFERENCE_BATCH_SIZE)
    encoder.eval()
    decoder.eval()
    device = module_device(encoder)
    # Summed on the device and read once: no host synchronisation per batch.
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    squared_sum = torch.zeros((), dtype=torch.float64, device=device)
    with torch.no_grad():
        for start in range(0, X.shape[0], batch_size):
            batch = X[start : start + batch_size].to(device, non_blocking=True)
            if fill is not None:
                losses, squared = masked_evaluation(encoder, decoder, batch, fill, loss)
            else:
                squared = functional.mse_loss(
                    decoder(encoder(batch)), batch, reduction="none"
                ).mean(dim=1, dtype=torch.float64)
                # The squared-error loss is half of it: one forward pass, not two.
                if loss == "squared_error":
                    losses = 0.5 * squared
                else:
                    losses = row_losses(encoder, decoder, batch, batch, loss).double()
            if sample_weight is not None:
                weights = sample_weight[start : start + batch_size]
                weights = weights.to(device, non_blocking=True).double()
                losses, squared = losses * weights, squared * weights
            loss_sum += losses.sum()
            squared_sum += squared.sum()
    total = X.shape[0] if sample_weight is None else float(sample_weight.sum())
    if _distributed.current() is not None:
        # Means over every rank's rows.
        loss_total, squared_total, total = _distributed.all_sum_floats(
            float(loss_sum), float(squared_sum), total
        )
        return loss_total / total, -squared_total / total
    return float(loss_sum) / total, -float(squared_sum) / total


class StepLoss(nn.Module):
    """The loss one optimisation step minimises, as the module DDP wraps.

    ``forward(inputs, targets, weights, share, penalty_rows)`` returns (the
    objective to differentiate, the batch's loss): the batch's mean loss
    (`reconstruction_loss`, or `skae._missing.masked_loss` with a `fill`)
    plus the L2 penalty over `penalty_rows` rows. Alone, ``share`` is 1 and
    the objective is the loss. Across ranks, each rank's mean is multiplied
    by `share` (its rows' part of the step's rows over all ranks, times the
    number of ranks), so that DistributedDataParallel's average of the
    gradients is the gradient of the mean over every rank's rows; a rank
    without rows in this step contributes zeros.
    """

    def __init__(self, encoder, decoder, loss, alpha, fill):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.loss, self.alpha, self.fill = loss, alpha, fill

    def forward(self, inputs, targets, weights, share, penalty_rows):
        """Return (objective, batch loss) of one step."""
        encoder, decoder = self.encoder, self.decoder
        if inputs.shape[0] == 0:
            # Every parameter in the graph, with zero gradients.
            batch_loss = sum(p.sum() for p in self.parameters()) * 0.0
        elif self.fill is None:
            batch_loss = reconstruction_loss(
                encoder, decoder, inputs, targets, self.loss, weights
            )
        else:
            batch_loss = masked_loss(
                encoder, decoder, inputs, targets, self.fill, self.loss, weights
            )
        objective = batch_loss if share == 1 else batch_loss * share
        if self.alpha:
            penalty = l2_penalty((encoder, decoder), self.alpha, penalty_rows)
            batch_loss = batch_loss + penalty
            objective = objective + penalty
        return objective, batch_loss


def _step_rows(n_rows, n_steps):
    """Return the bounds of each step's rows: n_rows split evenly over n_steps."""
    return [(k * n_rows) // n_steps for k in range(n_steps + 1)]


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
    sample_weight=None,
    X_validation=None,
    validation_weight=None,
    noise=None,
    scheduler=None,
    first_epoch=0,
    on_epoch_end=None,
    batch_progress=None,
    precision="float32",
    fill=None,
    group=None,
):
    """Run up to `n_epochs` passes of mini-batch optimisation over the rows of `X`.

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
        CPU generator for the shuffling and the noise; ``None`` uses torch's
        global generator.
    sample_weight : torch.Tensor of shape (n_samples,), default=None
        Weight of each row's loss.
    X_validation : torch.Tensor of shape (n_validation, n_features), default=None
        Rows evaluated after each epoch, never trained on.
    validation_weight : torch.Tensor of shape (n_validation,), default=None
        Weight of each validation row in the epoch's validation loss and score.
    noise : dict, default=None
        Corruption of the inputs (not the targets), see `corrupt`.
    scheduler : torch.optim.lr_scheduler.LRScheduler, default=None
        Stepped after every optimisation step.
    first_epoch : int, default=0
        Number given to the first epoch's record.
    on_epoch_end : callable, default=None
        Called with each `EpochRecord`; returning True stops training.
    batch_progress : callable, default=None
        ``batch_progress(epoch, n_batches)`` returns an object with ``update(n)``
        and ``close()`` (a tqdm bar, say), advanced after every batch.
    precision : {"float32", "bfloat16"}, default="float32"
        "bfloat16" runs the forward pass and the loss under torch.autocast: the
        matrix products in bfloat16, the weights and the optimizer in float32.
    fill : torch.Tensor of shape (n_features,), default=None
        Given when `X` (or the noise) has missing entries (NaN): the values
        that fill missing inputs; the loss is then `skae._missing.masked_loss`.
    group : skae._distributed.Group, default=None
        Train across its ranks, each on its own rows `X`: every rank runs the
        same number of steps, ceil(rows of all ranks / `batch_size`), a step
        taking an even share of each rank's rows (so about `batch_size` rows
        in all), through DistributedDataParallel. The records are means over
        every rank's rows.

    Returns
    -------
    records : list of EpochRecord
        One per completed epoch.
    """
    n_samples = X.shape[0]
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {PRECISIONS}.")
    # X lives on the modules' device when it fits there, else in (pinned) host
    # memory, from which each batch is copied asynchronously.
    device = module_device(encoder)
    autocast = torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=precision == "bfloat16"
    )
    records = []
    step_loss = StepLoss(encoder, decoder, loss, alpha, fill)
    # (start, stop, rows of all ranks or None alone) of each step of an epoch.
    if group is None:
        model = step_loss
        total_rows = n_samples
        steps = [
            (start, min(start + batch_size, n_samples), None)
            for start in range(0, n_samples, batch_size)
        ]
    else:
        counts = group.gather(n_samples)
        total_rows = sum(counts)
        n_steps = n_batches(total_rows, batch_size)
        every = [_step_rows(count, n_steps) for count in counts]
        own = every[group.rank]
        # A step in which no rank has a row (few rows, a small batch) is left
        # out on every rank.
        steps = [
            (own[k], own[k + 1], sum(rows[k + 1] - rows[k] for rows in every))
            for k in range(n_steps)
        ]
        steps = [step for step in steps if step[2]]
        model = group.data_parallel(step_loss)
    for epoch in range(first_epoch, first_epoch + n_epochs):
        start_time = time.perf_counter()
        # Drawn afresh each epoch, so that the CPU generator's state at an epoch's
        # end is all it takes to resume training exactly (see MLPAutoencoder.resume).
        noise_generator = _device_generator(generator, device) if noise else None
        # Callbacks may run inference between epochs, which switches to eval mode.
        encoder.train()
        decoder.train()
        if shuffle:
            order = torch.randperm(n_samples, generator=generator).to(X.device)
        # Accumulate on the device: one host synchronisation per epoch, not per batch.
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        progress = None
        if batch_progress is not None:
            progress = batch_progress(epoch, len(steps))
        for start, stop, step_rows in steps:
            rows = order[start:stop] if shuffle else slice(start, stop)
            batch = X[rows].to(device, non_blocking=True)
            inputs = corrupt(batch, noise, noise_generator) if noise else batch
            weights = None
            if sample_weight is not None:
                weights = sample_weight[rows].to(device, non_blocking=True)
            share, penalty_rows = 1, stop - start
            if group is not None:
                share = (stop - start) * group.world_size / step_rows
                penalty_rows = step_rows
            with autocast:
                objective, batch_loss = model(
                    inputs, batch, weights, share, penalty_rows
                )
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            loss_sum += batch_loss.detach() * (stop - start)
            if progress is not None:
                progress.update(1)
        if progress is not None:
            progress.close()
        validation_loss = validation_score = None
        if X_validation is not None:
            validation_loss, validation_score = evaluate(
                encoder, decoder, X_validation, loss, validation_weight, fill=fill
            )
        train_loss = float(loss_sum)
        if group is not None:
            train_loss = float(group.sum(torch.tensor([train_loss])))
        record = EpochRecord(
            epoch=epoch,
            train_loss=train_loss / total_rows,
            seconds=time.perf_counter() - start_time,
            validation_loss=validation_loss,
            validation_score=validation_score,
        )
        records.append(record)
        if on_epoch_end is not None and on_epoch_end(record):
            break
    encoder.eval()
    decoder.eval()
    return records


def _device_generator(generator, device):
    """Return a generator on `device`, seeded from the CPU `generator`."""
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return torch.Generator(device=device).manual_seed(seed)


def copy_state(modules):
    """Snapshot the parameters and buffers of `modules` (to restore later)."""
    return [
        {name: tensor.detach().clone() for name, tensor in m.state_dict().items()}
        for m in modules
    ]


def load_state(modules, states):
    """Restore a snapshot taken by `copy_state`."""
    for module, state in zip(modules, states, strict=True):
        module.load_state_dict(state)


def apply_in_batches(module, X, *, device="cpu", out_dtype=None):
    """Run `module` over the rows of the array `X`, a fixed-shape chunk at a time.

    Every row goes through the module in a chunk of exactly
    ``chunk_rows(n_features)`` rows (384, fewer for very wide rows), copied into one
    64-byte-aligned float32 buffer (the last chunk padded with zeros), so each row's
    result has the same bits whichever rows come with it, in any order and in any
    number: the matrix products always run with the same shape and alignment, and so
    through the same kernel (MKL picks another sgemm kernel for another number of
    rows on Intel CPUs). Only one chunk of `X` is converted at a time, so `X` can be
    a memory map far larger than memory, or a scipy.sparse matrix. Each result is
    copied once, straight into one preallocated array of dtype `out_dtype` (default:
    `X`'s dtype).

    Returns
    -------
    out : ndarray of shape (n_samples, n_outputs)
    """
    n_samples, n_features = X.shape
    chunk = chunk_rows(n_features)
    # Rows are converted on the host, in NumPy, whatever the model's device.
    staging = torch.empty((chunk, n_features), dtype=torch.float32)
    inputs = staging if torch.device(device).type == "cpu" else None
    out = None
    module.eval()
    with torch.inference_mode():
        for start in range(0, n_samples, chunk):
            stop = min(start + chunk, n_samples)
            _fill_chunk(staging, X[start:stop])
            if inputs is not staging:
                inputs = staging.to(device)
            result = module(inputs)
            if out is None:
                out = np.empty((n_samples, result.shape[1]), dtype=out_dtype or X.dtype)
            # One copy that also converts the dtype and leaves the device.
            torch.from_numpy(out[start:stop]).copy_(result[: stop - start])
    if out is None:
        width = _output_width(module, staging, device)
        out = np.empty((0, width), dtype=out_dtype or X.dtype)
    return out


def chunk_rows(n_features):
    """Return the rows of an inference chunk for rows of `n_features` values."""
    fitting = DENSE_BATCH_ENTRIES // max(n_features, 1)
    rows = fitting // CHUNK_ROW_MULTIPLE * CHUNK_ROW_MULTIPLE
    return max(CHUNK_ROW_MULTIPLE, min(INFERENCE_CHUNK_ROWS, rows))


def _fill_chunk(staging, rows):
    """Copy `rows` (dense or sparse, any float dtype) into `staging`; zero the rest."""
    if hasattr(rows, "toarray"):
        # Sparse rows are densified here, one chunk at a time.
        rows = rows.toarray()
    n_rows = rows.shape[0]
    buffer = staging.numpy()
    np.copyto(buffer[:n_rows], rows, casting="same_kind")
    if n_rows < len(buffer):
        buffer[n_rows:] = 0.0


def _output_width(module, staging, device):
    """Return the width of `module`'s output (for an X without rows)."""
    with torch.inference_mode():
        return module(staging[:1].zero_().to(device)).shape[1]
