"""Small data: decide between the network and PCA by k-fold cross-validation.

On a few hundred rows, the tenth that early stopping holds out is a few dozen
rows: too few for a real gain to clear `skae._selection`'s bar of two standard
errors, so such fits returned PCA. Up to `MAX_ROWS` rows, a default fit
(``early_stopping="auto"``, a PCA start, no time budget, complete dense rows)
cross-validates instead: it trains the network `N_FOLDS` times, each time on all
folds but one, and scores every epoch on the fold left out, so that every row
is held out once. The number of epochs is the one with the lowest out-of-fold
error; the network is kept when, at that number, its per-row errors beat those
of PCA of the same training folds by two standard errors over all the rows.
The fit then trains on every row for that many epochs (the same schedule,
planned for ``max_iter``), or returns PCA of every row.

Each fold is one `skae._trainer.Trainer` run; the module never sees the
estimator.
"""

import time
import warnings
from dataclasses import replace

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

from skae._config import resolve_init
from skae._missing import principal_axes
from skae._rows import RowSource
from skae._selection import paired_decision, row_errors
from skae._torch_utils import shared_seed
from skae._trainer import Callbacks, Trainer
from skae._variance import observed_mean
from skae._warnings import warn

# Folds of the cross-validation: every row is held out once, by a model
# trained on the other 80%.
N_FOLDS = 5
# Cross-validation replaces the single held-out split up to this many rows:
# above it the split holds out hundreds of rows, enough to decide, and
# N_FOLDS + 1 fits would cost more than they tell.
MAX_ROWS = 2000
# Below this many rows, a fold's model trains on too few rows to say anything.
MIN_ROWS = 20


def applies(config, rows, previous):
    """Whether a fit of `rows` from scratch is decided by cross-validation."""
    init = resolve_init(config.init, config.latent_activation, config.output_activation)
    return (
        previous is None
        and config.early_stopping == "auto"
        and config.max_time is None
        and init == "pca"
        and not rows.sparse
        and not rows.missing
        and MIN_ROWS <= rows.n_samples <= MAX_ROWS
    )


def cross_validated_fit(config, rows, callbacks, started):
    """Return the state of a fit decided by cross-validation (see the module).

    Ctrl-C during the folds leaves the caller as it was (nothing to resume);
    during the final fit, it keeps the epochs finished, resumable.
    """
    seed = shared_seed(config.random_state)
    config = replace(config, random_state=seed, early_stopping=False)
    n_samples = rows.n_samples
    weights = rows.weights()
    fold_of = np.empty(n_samples, dtype=np.int64)
    order = torch.randperm(n_samples, generator=torch.Generator().manual_seed(seed))
    for fold, members in enumerate(np.array_split(order.numpy(), N_FOLDS)):
        fold_of[members] = fold
    errors = np.full((config.max_iter + 1, n_samples), np.nan)
    before = callbacks.save()
    try:
        for fold in range(N_FOLDS):
            held_out = fold_of == fold
            errors[:, held_out] = _fold_errors(config, rows, ~held_out, held_out)
    except KeyboardInterrupt:
        callbacks.restore(before)
        warn(
            "Cross-validation interrupted by user: this model is left as it was "
            "before fit, and there is nothing to resume. Call fit again."
        )
        raise
    except BaseException:
        callbacks.restore(before)
        raise
    # Every fold ran every epoch: a fold that stopped early (its training loss
    # no longer improving) holds its last error for the epochs it skipped.
    errors = _carry_forward(errors)
    row_weights = None if weights is None else weights / weights.sum()
    curve = errors @ row_weights if row_weights is not None else errors.mean(axis=1)
    best_epoch = int(np.argmin(curve[1:])) + 1
    keep, _ = paired_decision(
        torch.from_numpy(errors[best_epoch]),
        torch.from_numpy(errors[0]),
        None if weights is None else torch.from_numpy(weights),
    )
    if config.verbose:
        print(
            f"{N_FOLDS}-fold cross-validation: {best_epoch} epochs, out-of-fold "
            f"error {curve[best_epoch]:.6g} against PCA's {curve[0]:.6g}: "
            + ("keep the network" if keep else "return PCA")
        )
    epochs = best_epoch if keep else 0
    with warnings.catch_warnings():
        if epochs < config.max_iter:
            # Stopping where cross-validation said is no failure to converge.
            warnings.filterwarnings(
                "ignore", message="Stochastic Optimizer", category=ConvergenceWarning
            )
        state = Trainer(config, callbacks, started).fit(rows, stop_after=epochs)
    chosen = errors[epochs]
    history = state.history
    history.validation_scores = [-float(value) for value in curve[1:]]
    history.validation_loss_curve = (
        [0.5 * float(value) for value in curve[1:]]
        if config.loss == "squared_error"
        else None
    )
    history.best_validation_score = -float(curve[epochs])
    history.held_out_explained_variance = _explained(rows.X, weights, chosen)
    history.fit_time = time.perf_counter() - started
    callbacks.publish(state)
    return state


def _fold_errors(config, rows, training, held_out):
    """Return the held-out rows' errors after each epoch (row 0: PCA's)."""
    X = rows.X
    weight = None if rows.weight is None else rows.weight[torch.from_numpy(training)]
    fold = RowSource(X[training], weight)
    scores = _FoldScores(torch.from_numpy(np.asarray(X[held_out], dtype=np.float32)))
    with warnings.catch_warnings():
        # A fold that runs out of epochs is still scored at every one of them.
        warnings.simplefilter("ignore", ConvergenceWarning)
        Trainer(config, scores, time.perf_counter(), on_interrupt="raise").fit(fold)
    errors = np.full((config.max_iter + 1, int(held_out.sum())), np.nan)
    for epoch, values in scores.errors.items():
        errors[epoch] = values
    return errors


class _FoldScores(Callbacks):
    """Scores the held-out rows after every epoch of a fold's run."""

    def __init__(self, X_held_out):
        self.X = X_held_out
        self.errors = {}

    def publish(self, state):
        epoch = state.history.n_iter
        if epoch in self.errors:
            return
        if epoch == 0:
            # The untrained model is PCA of the fold's training rows.
            components, mean = state.start_basis or principal_axes(
                self.X, state.architecture["n_components"]
            )
            X = self.X
            output = (X - mean) @ components.T @ components + mean
        else:
            encoder, decoder = state.inference_modules()
            encoder.eval()
            decoder.eval()
            with torch.no_grad():
                output = decoder(encoder(self.X.to(state.device))).cpu()
            encoder.train()
            decoder.train()
        self.errors[epoch] = row_errors(output, self.X).double().numpy()


def _carry_forward(errors):
    """Fill each row's missing epochs with its last measured error."""
    for epoch in range(1, errors.shape[0]):
        missing = np.isnan(errors[epoch])
        errors[epoch, missing] = errors[epoch - 1, missing]
    return errors


def _explained(X, weights, row_mean_errors):
    """Return the out-of-fold explained variance from each row's mean error."""
    residual = row_mean_errors * X.shape[1]
    deviations = np.square(X - observed_mean(X, weights)).sum(axis=1)
    if weights is not None:
        residual, deviations = residual * weights, deviations * weights
    total = float(deviations.sum())
    if total == 0:
        return 1.0 if float(residual.sum()) == 0 else 0.0
    return float(1.0 - residual.sum() / total)
