"""How a fit runs: prepare in locals, train a copy of the state, then commit.

`MLPAutoencoder` is the face; this module is the procedure behind its `fit`,
`partial_fit` and `resume`. It never sees the estimator: it reads a frozen
`skae._config.FitConfig`, the validated data and the state to continue, and
calls back through `hooks` (publish a state, run the user's callbacks, save and
put back the fitted attributes), so that only the estimator writes its fitted
attributes and a refused or failed call leaves a fitted model as it was.
"""

import hashlib
import time
import warnings
from functools import partial
from typing import NamedTuple

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from skae._budget import TimeBudget, check_max_time
from skae._missing import column_fill, principal_axes, reconstructor
from skae._precision import choose_precision
from skae._progress import batch_progress_bar, print_progress_line, report_epoch
from skae._selection import beats_pca
from skae._sizing import explained_variance_of_rows
from skae._sparse import rows_for_training, take_rows, update_digest
from skae._state import (
    Diverged,
    Plan,
    StoppingRule,
    TrainingState,
    held_out_indices,
    split_indices,
)
from skae._torch_utils import make_generator, resolve_device
from skae._training import apply_in_batches, evaluate, n_batches, train_epochs
from skae._validation import (
    check_same_architecture,
    check_validation_size,
    early_stopping_on,
)


def resume_fit(config, data, state, hooks, started):
    """Finish the interrupted fit whose `state` this is, on validated `data`."""
    check_same_architecture(state.architecture, data.architecture)
    plan = state.plan
    held_out = (
        check_validation_size(config, data.n_samples) if plan.validation_size else 0
    )
    if held_out != plan.validation_size:
        raise ValueError(
            "resume needs the training data of the interrupted fit: its "
            f"validation split held out {plan.validation_size} rows, X would "
            f"give {held_out}."
        )
    if plan.params is not None:
        changed = {
            name: (value, plan.params[name])
            for name, value in config.params.items()
            if name in plan.params and value != plan.params[name]
        }
        if changed:
            listed = ", ".join(
                f"{name}={now!r} (was {then!r})"
                for name, (now, then) in changed.items()
            )
            raise ValueError(
                f"resume finishes the interrupted fit as planned, but {listed} "
                "changed since: set them back, or start a new fit."
            )
    if plan.data_digest is not None and plan.data_digest != _digest(data):
        raise ValueError(
            "resume needs the training data (and sample weights) of the "
            "interrupted fit, but X differs from it."
        )
    device = resolve_device(config.device)
    parts = _split(data, plan.validation_size, plan.split_generator(), device)
    # Train a copy: a resume that fails leaves this model as it was.
    working = state.copy().to(device)
    scheduler = working.start_plan(plan, config.learning_rate_init, working.stopping)
    # A fit cut short right after its stopping rule fired has no epochs left.
    remaining = plan.last_epoch - working.history.n_iter
    return _train(
        config,
        hooks,
        working,
        parts,
        data,
        scheduler=scheduler,
        n_epochs=0 if working.stopping.stopped else remaining,
        resumable=True,
        started=started,
        # The arithmetic the interrupted fit chose, "auto" included.
        precision=working.history.precision
        or _resolve_precision(config, working, parts, None),
    )


def fit_once(config, data, previous, hooks, incremental, started):
    """Prepare everything in locals, then train a new state or a copy of `previous`.

    `previous` is the state a warm start or partial_fit continues, else None.
    """
    max_time = None if incremental else check_max_time(config.max_time)
    if previous is not None:
        check_same_architecture(previous.architecture, data.architecture)
    if incremental and config.early_stopping is True:
        raise ValueError(
            "partial_fit does not support early_stopping=True: it trains on "
            "every row it is given. Use early_stopping=False (or 'auto') with "
            "partial_fit, or fit."
        )
    device = resolve_device(config.device)
    validation_size = 0
    if not incremental and early_stopping_on(config, data.n_samples):
        validation_size = check_validation_size(config, data.n_samples)

    if previous is None:
        generator = make_generator(config.random_state)
        split = _new_split(data.n_samples, validation_size, generator)
        try:
            parts = _split(data, validation_size, split, device)
        except _ZeroWeightSplit:
            if config.early_stopping != "auto":
                raise
            # "auto" holds out rows only where both sides can be weighed.
            validation_size, split = 0, None
            parts = _split(data, 0, None, device)
        state = _build_state(data.architecture, parts, generator, device)
    else:
        # Train a copy: a call that fails leaves this model as it was.
        state = previous.copy().to(device)
        split = state.history.split
        if validation_size and not _same_split(split, data.n_samples, validation_size):
            split = _new_split(data.n_samples, validation_size, state.generator)
        parts = _split(data, validation_size, split, device)
    history = state.history
    if validation_size:
        if previous is not None and split != history.split:
            # Scores on other rows do not compare: validation_scores_ covers
            # the fits on the current split.
            history.validation_scores = history.validation_loss_curve = None
            history.best_validation_score = None
        history.split = split
        if history.validation_scores is None:
            history.validation_scores, history.validation_loss_curve = [], []
        if previous is None:
            history.best_loss = None
    elif history.best_loss is None:
        history.best_loss = np.inf

    state.use_optimizer(config.solver, config.learning_rate_init, config.momentum)
    n_epochs = 1 if incremental else config.max_iter
    schedule = "constant" if incremental else config.learning_rate
    stopping = StoppingRule(validation_size > 0, config.tol, config.n_iter_no_change)
    if validation_size:
        _offer_start(config, stopping, state, previous, parts, _fill(state, data))
    plan = Plan(
        schedule=schedule,
        total_steps=n_epochs * n_batches(parts.X.shape[0], _batch(config, parts)),
        last_epoch=history.n_iter + n_epochs,
        validation_size=validation_size,
        split_seed=split["seed"] if validation_size else None,
        params=None if incremental else config.params,
        data_digest=None if incremental else _digest(data),
        max_time=max_time,
    )
    scheduler = state.start_plan(plan, config.learning_rate_init, stopping)
    return _train(
        config,
        hooks,
        state,
        parts,
        data,
        scheduler=scheduler,
        n_epochs=n_epochs,
        resumable=not incremental,
        started=started,
        precision=_resolve_precision(config, state, parts, previous),
    )


def _batch(config, parts):
    """Rows per optimisation step: batch_size clipped to the training rows."""
    return min(config.batch_size, parts.X.shape[0])


def _resolve_precision(config, state, parts, previous):
    """Return the arithmetic to train in: "auto" resolved on this model."""
    if config.precision != "auto":
        return config.precision
    if previous is not None and previous.history.precision is not None:
        # A warm start or partial_fit continues in the arithmetic chosen.
        return previous.history.precision
    return choose_precision(
        state.encoder,
        state.decoder,
        parts.X,
        batch_size=_batch(config, parts),
        loss=config.loss,
        solver=config.solver,
    )


def _offer_start(config, stopping, state, previous, parts, fill):
    """Make the model a fit starts from a candidate of early stopping.

    The PCA start of a new model, or the best model of the previous fit when
    a warm start holds out the same rows: the result then never validates
    worse than what the fit started from.
    """
    if previous is None and state.architecture["init"] != "pca":
        return
    if previous is not None and previous.history.split != state.history.split:
        return
    best = None if previous is None or previous.stopping is None else previous.stopping
    if best is not None and best.best_state is not None:
        stopping.best_score = best.best_score
        stopping.best_state = [
            {name: t.clone() for name, t in module.items()}
            for module in best.best_state
        ]
        return
    _, score = evaluate(
        state.encoder,
        state.decoder,
        parts.X_validation,
        config.loss,
        parts.validation_weight,
        fill=fill,
    )
    stopping.candidate(score, state.modules)
    stopping.pca_candidate = stopping.pca_start_best = previous is None


def _train(
    config,
    hooks,
    state,
    parts,
    data,
    *,
    scheduler,
    n_epochs,
    resumable,
    started,
    precision,
):
    """Run the epochs on `state`, publishing it through `hooks`; return it.

    Ctrl-C keeps the last whole epoch (resumable with `resume`); any other
    failure, divergence included, puts back the fitted attributes as they
    were (``hooks.restore``). A plan with a time budget is re-sized to what
    the time left affords after every epoch.
    """
    plan = state.plan
    budget = None
    if plan is not None and plan.max_time is not None:
        budget = TimeBudget(plan.max_time, started)
    planned_last = None if plan is None else plan.last_epoch
    steps_per_epoch = n_batches(parts.X.shape[0], _batch(config, parts))
    state.history.precision = precision
    state.history.held_out_explained_variance = None
    weights = parts.weight
    if weights is not None:
        weights = (weights / weights.mean()).to(parts.X.device)
    fill = _fill(state, data)
    loss_scale = state.loss_scale(parts.X, config.loss, fill)
    before = hooks.save()
    # Commit: from here on the estimator describes this fit.
    hooks.publish(state)
    last_whole_epoch = state.snapshot()

    def end_epoch(record):
        nonlocal last_whole_epoch
        state.check_finite(record, loss_scale)
        last = state.plan.last_epoch
        stop = state.end_epoch(record, scheduler, budget, steps_per_epoch)
        state.history.fit_time = time.perf_counter() - started
        if config.verbose and state.plan.last_epoch != last:
            print_progress_line(
                f"max_time={config.max_time:g} s: the time left affords "
                f"{state.plan.last_epoch} epochs in all"
            )
        # Where Ctrl-C falls back to, and what a Checkpoint callback saves.
        last_whole_epoch = state.snapshot()
        hooks.publish(state)
        if config.verbose:
            report_epoch(record, stop, state.stopping)
        # Every callback sees the epoch, even after one asked to stop.
        return hooks.epoch_end(record) or stop

    if budget is not None:
        budget.start(state.history.n_iter, cap=planned_last)
    try:
        train_epochs(
            state.encoder,
            state.decoder,
            parts.X,
            optimizer=state.optimizer,
            n_epochs=n_epochs,
            batch_size=_batch(config, parts),
            loss=config.loss,
            alpha=config.alpha,
            shuffle=config.shuffle,
            generator=state.generator,
            sample_weight=weights,
            X_validation=parts.X_validation,
            validation_weight=parts.validation_weight,
            noise=data.noise,
            scheduler=scheduler,
            first_epoch=state.history.n_iter,
            on_epoch_end=end_epoch,
            batch_progress=(
                partial(batch_progress_bar, config.max_iter)
                if config.verbose >= 2
                else None
            ),
            precision=precision,
            fill=fill,
        )
    except KeyboardInterrupt:
        # As MLPRegressor: keep what was learnt, but only whole epochs.
        state.restore(last_whole_epoch)
        if not resumable:
            state.finish()
        hooks.publish(state)
        warnings.warn(
            "Training interrupted by user. The model keeps the weights of "
            f"epoch {state.history.n_iter}"
            + ("; call resume(X) to finish the fit." if resumable else "."),
            UserWarning,
            stacklevel=3,
        )
        return state
    except Diverged as diverged:
        hooks.restore(before)
        raise ValueError(
            f"Training diverged at epoch {diverged.epoch + 1}: {diverged.reason}. "
            "The model is left as it was before this call. Scale X (e.g. "
            "StandardScaler, or divide pixels by 255) or lower "
            f"learning_rate_init (now {config.learning_rate_init})."
        ) from None
    except BaseException:
        hooks.restore(before)
        raise
    stopping = state.stopping
    budgeted_last = None if state.plan is None else state.plan.last_epoch
    state.finish()
    if stopping.pca_candidate:
        keep, statistics = beats_pca(
            state.encoder, state.decoder, *parts, fill=fill, basis=state.start_basis
        )
        if stopping.pca_start_best or not keep:
            # No epoch beat the PCA start (of the training rows) beyond
            # noise on the held-out rows: return PCA of all the rows, as
            # PCA().fit(X) would; its scores are the PCA start's, measured
            # first, as PCA of all the rows has seen the held-out ones.
            state.history.held_out_explained_variance = _start_explained_variance(
                state, parts, data
            )
            weight = None if data.weight is None else data.weight.to(state.device)
            state.restart_from_pca(rows_for_training(data.X, state.device), weight)
            state.history.best_validation_score = statistics["pca_score"]
    state.history.fit_time = time.perf_counter() - started
    hooks.publish(state)
    if resumable and not stopping.stopped:
        limit = f"Maximum iterations ({config.max_iter})"
        if budgeted_last is not None and budgeted_last < planned_last:
            n_iter = state.history.n_iter
            limit = (
                f"Time budget (max_time={config.max_time:g} seconds, "
                f"{n_iter} epoch{'' if n_iter == 1 else 's'})"
            )
        warnings.warn(
            f"Stochastic Optimizer: {limit} reached and the optimization "
            "hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return state


def _start_explained_variance(state, parts, data):
    """Return the explained variance of the held-out rows by PCA of the others."""
    basis = state.start_basis
    if basis is None:
        basis = principal_axes(
            parts.X, state.architecture["n_components"], parts.weight
        )
    state.restart_from_basis(basis)
    autoencoder = reconstructor(state.encoder, state.decoder, state.inference_fill())
    held_out = held_out_indices(state.history.split)
    weights = None if data.weight is None else data.weight.numpy().astype(np.float64)
    return explained_variance_of_rows(
        lambda rows: apply_in_batches(autoencoder, rows, device=state.device),
        data.X,
        weights,
        held_out.numpy(),
    )


class _TrainingData(NamedTuple):
    """A validated call's data: nothing of it is on the estimator yet."""

    X: np.ndarray
    weight: torch.Tensor | None
    noise: dict
    architecture: dict
    features: dict
    missing: bool = False

    @property
    def n_samples(self):
        return self.X.shape[0]


class _Parts(NamedTuple):
    """Training and validation rows (and their weights) as tensors."""

    X: torch.Tensor
    weight: torch.Tensor | None
    X_validation: torch.Tensor | None
    validation_weight: torch.Tensor | None


class _ZeroWeightSplit(ValueError):
    """One side of the early-stopping split has only zero sample weights."""


def _digest(data):
    """Return a SHA-256 of the training data and weights, as the fit sees them."""
    digest = hashlib.sha256()
    update_digest(digest, data.X)
    if data.weight is not None:
        digest.update(data.weight.numpy().tobytes())
    return digest.hexdigest()


def _new_split(n_samples, validation_size, generator):
    """Return a new early-stopping split (a seed drawn from `generator`), or None."""
    if not validation_size:
        return None
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return {"n_samples": n_samples, "validation_size": validation_size, "seed": seed}


def _same_split(split, n_samples, validation_size):
    """Whether `split` holds out `validation_size` of `n_samples` rows."""
    return split is not None and (
        split["n_samples"],
        split["validation_size"],
    ) == (n_samples, validation_size)


def _split(data, validation_size, split, device):
    """Hold out the validation rows of `split` (a split dict or a generator).

    Raises ValueError, before anything is trained, when the weights of either
    side are all zero.
    """
    X = rows_for_training(data.X, device)
    weight = data.weight
    if not validation_size:
        return _Parts(X, weight, None, None)
    generator = split
    if isinstance(split, dict):
        generator = torch.Generator().manual_seed(split["seed"])
    keep, held_out = split_indices(data.n_samples, validation_size, generator)
    validation_weight = None
    if weight is not None:
        weight, validation_weight = weight[keep], weight[held_out]
        for side, values in (("training", weight), ("validation", validation_weight)):
            if not bool((values > 0).any()):
                raise _ZeroWeightSplit(
                    f"Every {side} row of the early-stopping split has "
                    "sample_weight 0: give more rows a weight, or set "
                    "early_stopping=False."
                )
        validation_weight = validation_weight.to(X.device)
    keep, held_out = keep.to(X.device), held_out.to(X.device)
    return _Parts(take_rows(X, keep), weight, take_rows(X, held_out), validation_weight)


def _build_state(architecture, parts, generator, device):
    """Return a new model's state, started from PCA of the training rows."""
    try:
        return TrainingState.build(
            architecture, parts.X, parts.weight, generator, device
        )
    except torch.linalg.LinAlgError as error:
        raise ValueError(
            f"PCA of X, the model's start, failed ({error}): rescale X, e.g. "
            "with StandardScaler, or use init='random'."
        ) from None


def _fill(state, data):
    """Return the fill of missing inputs when training on `data` needs one, else None.

    Needed when X has missing entries or the noise hides some; a model from a
    file written before fills were saved gets its training rows' means.
    """
    if not (data.missing or "missing" in data.noise):
        return None
    if state.fill is None:
        weight = None if data.weight is None else data.weight.to(state.device)
        state.fill = column_fill(rows_for_training(data.X, state.device), weight)
    return state.fill
