"""Small data: decide between the network and PCA by k-fold cross-validation.

On a few hundred rows, the tenth that early stopping holds out is a few dozen
rows: too few for a real gain to clear `skae._selection`'s bar of two standard
errors, so such fits returned PCA. Up to `MAX_ROWS` rows, a default fit
(``early_stopping="auto"``, a PCA start, complete dense rows)
cross-validates instead: it trains the network `N_FOLDS` times, each time on all
folds but one, and scores every epoch on the fold left out, so that every row
is held out once. The number of epochs is the one with the lowest out-of-fold
error; the network is kept when, at that number, its per-row errors beat those
of PCA of the same training folds by two standard errors over all the rows
(Student's t quantile at the same confidence: 2.14 on 20 rows, 2.0 on many).
The fit then trains on every row for that many epochs (the same schedule,
planned for ``max_iter``), and keeps the result or returns PCA of every row.
A ``max_time`` is shared among the runs, as in the width search.

Each fold is one `skae._trainer.Trainer` run; the module never sees the
estimator.
"""

import time
import warnings
from dataclasses import replace

import numpy as np
import torch

import skae._distributed as _distributed
from skae._budget import check_max_time, share_of_time_left
from skae._config import resolve_init
from skae._precision import choose_precision
from skae._rows import RowSource
from skae._selection import paired_decision, pca_reconstruction, row_errors
from skae._torch_utils import resolve_device, shared_seed
from skae._trainer import Callbacks, Trainer
from skae._variance import (
    fraction_explained,
    observed_mean,
    squared_norms,
    weighted_sum,
)
from skae._warnings import warn

# Folds of the cross-validation: every row is held out once, by a model
# trained on the other 80%.
N_FOLDS = 5
# Cross-validation replaces the single held-out split up to this many rows:
# above it the split holds out over a hundred rows, and N_FOLDS + 1 fits, about
# five times the work of one, would cost more than they tell.
MAX_ROWS = 1000
# Below this many rows, a fold's model trains on too few rows to say anything.
MIN_ROWS = 20


def applies(config, rows, previous):
    """Whether a fit of `rows` from scratch is decided by cross-validation."""
    init = resolve_init(config.init, config.latent_activation, config.output_activation)
    return (
        previous is None
        # Across ranks, one split held out by every rank decides (no folds).
        and _distributed.current() is None
        and config.early_stopping == "auto"
        and init == "pca"
        and not rows.sparse
        and not rows.missing
        and MIN_ROWS <= rows.n_samples <= MAX_ROWS
        # Every fold must train on rows that weigh something.
        and (rows.weight is None or int((rows.weight > 0).sum()) >= MIN_ROWS)
    )


def fit_new(config, rows, callbacks, started, on_interrupt="keep"):
    """Train a new model on `rows`: cross-validated where it `applies`, else once.

    What `fit` does from scratch, for the width search to do at every width.
    """
    if applies(config, rows, None):
        return cross_validated_fit(config, rows, callbacks, started, on_interrupt)
    return Trainer(config, callbacks, started, on_interrupt=on_interrupt).fit(rows)


def cross_validated_fit(config, rows, callbacks, started, on_interrupt="keep"):
    """Return the state of a fit decided by cross-validation (see the module).

    Ctrl-C during the folds leaves the caller as it was (nothing to resume);
    during the final fit, it keeps the epochs finished, resumable, unless
    `on_interrupt` is "raise" (see `skae._trainer.Trainer`).
    """
    seed = shared_seed(config.random_state)
    precision = config.precision
    if precision == "auto":
        # One arithmetic for every run: the folds measure what the fit trains.
        precision = choose_precision(resolve_device(config.device), rows.n_samples)
    config = replace(
        config, random_state=seed, early_stopping=False, precision=precision
    )
    deadline = None
    if config.max_time is not None:
        deadline = started + check_max_time(config.max_time)
    n_samples = rows.n_samples
    weights = rows.weights()
    fold_of = np.empty(n_samples, dtype=np.int64)
    order = torch.randperm(n_samples, generator=torch.Generator().manual_seed(seed))
    for fold, members in enumerate(np.array_split(order.numpy(), N_FOLDS)):
        fold_of[members] = fold
    # The folds train quietly; verbose says what each found.
    quiet = replace(config, verbose=0)
    scored = []
    before = callbacks.save()
    try:
        for fold in range(N_FOLDS):
            held_out = fold_of == fold
            budgeted = _share(quiet, deadline, N_FOLDS + 1 - fold)
            scored.append((held_out, _fold_errors(budgeted, rows, ~held_out, held_out)))
            if config.verbose:
                last = max(scored[-1][1])
                print(
                    f"Fold {fold + 1} of {N_FOLDS}: {last} epochs, held-out error "
                    f"{scored[-1][1][last].mean():.6g} (PCA's "
                    f"{scored[-1][1][0].mean():.6g})"
                )
    except KeyboardInterrupt:
        callbacks.restore(before)
        if on_interrupt == "keep":
            warn(
                "Cross-validation interrupted by user: this model is left as it "
                "was before fit, and there is nothing to resume. Call fit again."
            )
        raise
    except BaseException:
        callbacks.restore(before)
        raise
    # As many epochs as the longest fold ran: a fold that stopped earlier (its
    # training loss no longer improving, or its share of the time spent) holds
    # its last error for the epochs it skipped.
    n_epochs = max(max(errors) for _, errors in scored)
    errors = np.full((n_epochs + 1, n_samples), np.nan)
    for held_out, fold_errors in scored:
        for epoch, values in fold_errors.items():
            errors[epoch, held_out] = values
    errors = _carry_forward(errors)
    row_weights = None if weights is None else weights / weights.sum()
    curve = errors.mean(axis=1) if row_weights is None else errors @ row_weights
    epochs = int(np.argmin(curve[1:])) + 1
    # Whether each epoch up to the chosen one beats PCA out of fold: the final
    # training may stop before the chosen epoch (a callback, max_time, or its
    # loss no longer improving), and is then decided at the epoch it reached.
    weight_tensor = None if weights is None else torch.from_numpy(weights)
    keep_at = [False] + [
        bool(
            paired_decision(
                torch.from_numpy(errors[epoch]),
                torch.from_numpy(errors[0]),
                weight_tensor,
            )[0]
        )
        for epoch in range(1, epochs + 1)
    ]
    keep = keep_at[epochs]
    if config.verbose:
        print(
            f"{N_FOLDS}-fold cross-validation: {epochs} epochs, out-of-fold "
            f"error {curve[epochs]:.6g} against PCA's {curve[0]:.6g}: "
            + ("keep the network" if keep else "return PCA")
            + "; training on every row:"
        )
    chosen = epochs if keep else 0
    explained_at = [
        _explained(rows.X, weights, errors[epoch]) for epoch in range(epochs + 1)
    ]
    decision = {
        "keep": bool(keep),
        "scores": [-float(value) for value in curve[1:]],
        "best_score": -float(curve[chosen]),
        "explained_variance": explained_at[chosen],
        "loss_is_half": config.loss == "squared_error",
        "keep_at": keep_at,
        "explained_at": explained_at,
        "pca_score": -float(curve[0]),
    }
    final = _share(config, deadline, 1)
    trainer = Trainer(final, callbacks, time.perf_counter(), on_interrupt)
    state = trainer.fit(rows, stop_after=epochs, decision=decision)
    state.history.fit_time = time.perf_counter() - started
    callbacks.publish(state)
    return state


def _share(config, deadline, runs_left):
    """Return `config` with its share of the time left (None: no budget)."""
    if deadline is None:
        return config
    share = share_of_time_left(deadline, time.perf_counter(), runs_left)
    return replace(config, max_time=share)


def _fold_errors(config, rows, training, held_out):
    """Return {epoch: the held-out rows' errors} of one fold (epoch 0: PCA's)."""
    X = rows.X
    weight = None if rows.weight is None else rows.weight[torch.from_numpy(training)]
    fold = RowSource(X[training], weight)
    scores = _FoldScores(torch.from_numpy(np.asarray(X[held_out], dtype=np.float32)))
    with warnings.catch_warnings():
        # The fold is the search's business: its budget share and convergence
        # are not the user's.
        warnings.simplefilter("ignore")
        Trainer(config, scores, time.perf_counter(), on_interrupt="raise").fit(fold)
    return scores.errors


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
            # The untrained model is PCA of the fold's training rows (a fold
            # always starts from PCA: cross-validation `applies` to no other).
            output = pca_reconstruction(self.X, *state.start_basis)
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
    residuals = row_mean_errors * X.shape[1]
    deviations = squared_norms(X - observed_mean(X, weights))
    return fraction_explained(
        weighted_sum(residuals, weights), weighted_sum(deviations, weights)
    )
