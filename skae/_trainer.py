"""The trainer: (configuration, rows, state, callbacks) in, a trained state out.

`Trainer` runs a fit, a partial_fit step or the rest of an interrupted fit. It
reads a frozen `skae._config.FitConfig` and a `skae._rows.RowSource`, trains a
new `TrainingState` or a copy of the one it continues, and reports through
`Callbacks` (publish a state, run the user's callbacks, save and put back what
the caller had), so that a refused or failed call leaves the caller's model as
it was. It never sees the estimator; the width search (`skae._sizing`) runs it
once per width.
"""

import dataclasses
import time
from functools import partial

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning

import skae._distributed as _distributed
from skae._budget import TimeBudget, check_max_time
from skae._missing import principal_axes
from skae._precision import choose_precision
from skae._progress import batch_progress_bar, print_progress_line, report_epoch
from skae._rows import (
    ZeroWeightSplit,
    held_out_indices,
    new_split,
    same_split,
)
from skae._selection import beats_pca
from skae._state import Diverged, Plan, StoppingRule, TrainingState
from skae._torch_utils import make_generator, resolve_device
from skae._training import evaluate, n_batches, train_epochs
from skae._validation import (
    check_same_architecture,
    check_validation_size,
    early_stopping_on,
)
from skae._variance import explained_variance_of_model
from skae._warnings import warn


class TrainingDiverged(ValueError):
    """The loss exploded; the caller is left as it was. ``cause`` says how."""

    def __init__(self, message, cause):
        super().__init__(message)
        self.cause = cause


class Callbacks:
    """What a trainer reports to its caller; this base reports to no one."""

    def publish(self, state):
        """Make the caller describe `state` (after each epoch, and at the end)."""

    def save(self):
        """Return what `restore` puts back if the run fails."""

    def restore(self, saved):
        """Put back what `save` returned: the run failed."""

    def epoch_end(self, record):
        """Run the user's callbacks on `record`; return True to stop."""
        return False


class Trainer:
    """Train a `TrainingState` as `config` says, reporting to `callbacks`.

    Parameters
    ----------
    config : FitConfig
        The checked parameters of the call.
    callbacks : Callbacks
        Told of every epoch; only they change anything outside the trainer.
    started : float
        ``time.perf_counter()`` when the call began: ``max_time`` counts from it.
    on_interrupt : {"keep", "raise"}, default="keep"
        Ctrl-C: "keep" returns the state at the last whole epoch and warns (as
        MLPRegressor keeps what it learnt); "raise" puts back what the
        callbacks saved and lets KeyboardInterrupt through (the width search).
    """

    def __init__(self, config, callbacks, started, on_interrupt="keep"):
        self.config = config
        self.callbacks = callbacks
        self.started = started
        self.on_interrupt = on_interrupt

    def resume(self, rows, state):
        """Finish the interrupted fit whose `state` this is, on `rows`."""
        config = self.config
        group = _distributed.current()
        if group is not None:
            group.check_same(_call(config, rows, "resume"))
        check_same_architecture(state.architecture, config.architecture)
        plan = _agreed(group, lambda: self._check_resume(rows, state.plan, group))
        device = resolve_device(config.device)
        parts = rows.split(plan.validation_size, plan.split_generator(), device)
        self._train_rows = _total(group, parts.X.shape[0])
        # Train a copy: a resume that fails leaves the caller's model as it was.
        working = state.copy().to(device)
        if group is not None and plan.validation_size:
            # The file kept rank 0's split; this rank held out its own rows.
            working.history.split = {
                "n_samples": rows.n_samples,
                "validation_size": plan.validation_size,
                "seed": plan.split_seed,
            }
        scheduler = working.start_plan(
            state.plan, config.learning_rate_init, working.stopping
        )
        # A fit cut short right after its stopping rule fired has no epochs left.
        remaining = plan.last_epoch - working.history.n_iter
        return self._train(
            working,
            parts,
            rows,
            scheduler=scheduler,
            n_epochs=0 if working.stopping.stopped else remaining,
            resumable=True,
            # The arithmetic the interrupted fit chose, "auto" included.
            precision=working.history.precision or self._precision(rows, None),
        )

    def _check_resume(self, rows, plan, group):
        """Return this rank's view of `plan`, or raise if `rows` cannot resume it."""
        config = self.config
        plan = _rank_plan(plan, group)
        held_out = (
            check_validation_size(config, rows.n_samples) if plan.validation_size else 0
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
        if plan.data_digest is not None and plan.data_digest != rows.digest():
            raise ValueError(
                "resume needs the training data (and sample weights) of the "
                "interrupted fit, but X differs from it."
            )
        return plan

    def fit(
        self, rows, previous=None, incremental=False, stop_after=None, decision=None
    ):
        """Train a new model on `rows`, or a copy of `previous`; return its state.

        `previous` is the state a warm start or partial_fit continues, else
        None; `incremental` runs one epoch on every row (partial_fit).
        `stop_after` ends the plan after that many epochs of the schedule
        planned for ``max_iter`` (a number cross-validation chose), and
        `decision` is what cross-validation decided, applied at the end
        (`skae._crossval`).
        """
        config = self.config
        max_time = None if incremental else check_max_time(config.max_time)
        # Whether the fit returns PCA whatever it trains (no split can test it).
        untestable = False
        if previous is not None:
            check_same_architecture(previous.architecture, config.architecture)
        if incremental and config.early_stopping is True:
            raise ValueError(
                "partial_fit does not support early_stopping=True: it trains on "
                "every row it is given. Use early_stopping=False (or 'auto') with "
                "partial_fit, or fit."
            )
        device = resolve_device(config.device)
        group = _distributed.current()
        if group is not None:
            call = "partial_fit" if incremental else "fit"
            group.check_same(
                {**_call(config, rows, call), "continues": previous is not None}
            )
        validation_size = 0
        holds_out = not incremental and early_stopping_on(config, rows.n_samples)
        if group is not None:
            # Every rank holds out rows, or none does.
            holds_out = not group.any(not holds_out)
        if holds_out:
            validation_size = _agreed(
                group, lambda: check_validation_size(config, rows.n_samples)
            )

        if previous is None:
            generator = make_generator(config.random_state)
            if group is not None:
                # Each rank shuffles and splits its own rows: its own stream.
                generator.manual_seed(_rank_seed(generator.initial_seed(), group.rank))
            split = new_split(rows.n_samples, validation_size, generator)
            refused = None
            try:
                parts = rows.split(validation_size, split, device)
            except ZeroWeightSplit as error:
                refused = error
            if group is not None and group.any(refused is not None):
                if refused is None:
                    refused = ZeroWeightSplit(
                        "another rank's rows cannot be split: every row it "
                        "would hold out, or train on, weighs 0"
                    )
            if refused is not None:
                if config.early_stopping != "auto":
                    raise refused
                # "auto" holds out rows only where both sides can be weighed.
                if config.architecture["init"] == "pca":
                    # As on tiny data: the test cannot run, so the fit returns
                    # PCA (splits that weigh both sides give PCA here too).
                    untestable = True
                    weighed = ""
                    if rows.weight is not None:
                        count = int((rows.weight > 0).sum())
                        weighed = f" (only {count} of {rows.n_samples} rows weigh more)"
                    warn(
                        "early_stopping='auto' holds out no rows: every row it "
                        "would hold out, or train on, has sample_weight 0"
                        f"{weighed}, so the network cannot be tested against PCA "
                        "and the fit returns PCA of the weighted rows, as on tiny "
                        "data. Give more rows a weight, or set "
                        "early_stopping=False to keep the trained network untested."
                    )
                validation_size, split = 0, None
                parts = rows.split(0, None, device)
            state = _build_state(config.architecture, parts, generator, device)
            if group is not None:
                # One model: rank 0's initial weights (the PCA paths are the
                # same on every rank already; the random layers are not).
                group.copy_parameters(state.modules)
        else:
            # Train a copy: a call that fails leaves the caller's model as it was.
            state = previous.copy().to(device)
            split = state.history.split
            if validation_size and split is None and state.history.n_iter:
                warn(
                    "warm_start: the fit this one continues held out no rows "
                    "(it trained on every row, as a cross-validated small-data "
                    "fit does), so the rows held out now may be rows it trained "
                    "on, and their scores and the test against PCA flatter the "
                    "model. For honest scores, fit a new model (warm_start=False)"
                    " or continue on other rows."
                )
            if validation_size and not same_split(
                split, rows.n_samples, validation_size
            ):
                split = new_split(rows.n_samples, validation_size, state.generator)
            parts = rows.split(validation_size, split, device)
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
        self._train_rows = _total(group, parts.X.shape[0])
        n_epochs = 1 if incremental else config.max_iter
        last_epoch = history.n_iter + (n_epochs if stop_after is None else stop_after)
        schedule = "constant" if incremental else config.learning_rate
        stopping = StoppingRule(
            validation_size > 0, config.tol, config.n_iter_no_change
        )
        if validation_size:
            fill = _fill(state, rows, config.noise)
            self._offer_start(stopping, state, previous, parts, fill)
        plan = Plan(
            schedule=schedule,
            total_steps=n_epochs * n_batches(self._train_rows, self._batch(parts)),
            last_epoch=last_epoch,
            validation_size=validation_size,
            split_seed=split["seed"] if validation_size else None,
            params=None if incremental else config.params,
            data_digest=None if incremental else rows.digest(),
            max_time=max_time,
            decision=decision,
        )
        if group is not None:
            # What resume needs of each rank's rows, in rank order.
            plan.ranks = group.gather(
                {
                    "validation_size": validation_size,
                    "split_seed": plan.split_seed,
                    "data_digest": plan.data_digest,
                }
            )
        scheduler = state.start_plan(plan, config.learning_rate_init, stopping)
        return self._train(
            state,
            parts,
            rows,
            scheduler=scheduler,
            n_epochs=last_epoch - history.n_iter,
            resumable=not incremental,
            precision=self._precision(rows, previous),
            untestable=untestable,
        )

    def _batch(self, parts):
        """Rows per optimisation step: batch_size clipped to the training rows.

        Across ranks, the rows of every rank: a step takes about that many
        rows in all.
        """
        return min(self.config.batch_size, self._train_rows)

    def _precision(self, rows, previous):
        """Return the arithmetic to train in: "auto" resolved for this device and X."""
        config = self.config
        if config.precision != "auto":
            return config.precision
        if previous is not None and previous.history.precision is not None:
            # A warm start or partial_fit continues in the arithmetic chosen.
            return previous.history.precision
        group = _distributed.current()
        chosen = choose_precision(
            resolve_device(config.device), _total(group, rows.n_samples)
        )
        # Rank 0's hardware decides for all: one model, one arithmetic.
        return chosen if group is None else group.broadcast(chosen)

    def _offer_start(self, stopping, state, previous, parts, fill):
        """Make the model a fit starts from a candidate of early stopping.

        The PCA start of a new model, or the best model of the previous fit
        when a warm start holds out the same rows: the result then never
        validates worse than what the fit started from.
        """
        if previous is None and state.architecture["init"] != "pca":
            return
        if previous is not None and previous.history.split != state.history.split:
            return
        best = None if previous is None else previous.stopping
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
            self.config.loss,
            parts.validation_weight,
            fill=fill,
        )
        stopping.candidate(score, state.modules)
        stopping.pca_candidate = stopping.pca_start_best = previous is None

    def _train(
        self,
        state,
        parts,
        rows,
        *,
        scheduler,
        n_epochs,
        resumable,
        precision,
        untestable=False,
    ):
        """Run the epochs on `state`, publishing it through the callbacks; return it.

        Ctrl-C keeps the last whole epoch (resumable with `resume`); any other
        failure, divergence included, puts back what the callbacks saved. A
        plan with a time budget is re-sized to what the time left affords after
        every epoch. `untestable`: the run returns PCA of the rows at its end
        (no split could test it against PCA).
        """
        config, callbacks = self.config, self.callbacks
        group = _distributed.current()
        plan = state.plan
        budget = None
        if plan is not None and plan.max_time is not None:
            budget = TimeBudget(plan.max_time, self.started)
            if group is not None:
                budget = _SharedBudget(budget, group)
        planned_last = None if plan is None else plan.last_epoch
        steps_per_epoch = n_batches(self._train_rows, self._batch(parts))
        state.history.precision = precision
        state.history.held_out_explained_variance = None
        weights = parts.weight
        if weights is not None:
            mean = weights.mean()
            if group is not None:
                mean = _distributed.all_sum(
                    torch.stack(
                        [
                            weights.sum().double(),
                            weights.new_tensor(len(weights), dtype=torch.float64),
                        ]
                    )
                )
                mean = (mean[0] / mean[1]).to(weights.dtype)
            weights = (weights / mean).to(parts.X.device)
        fill = _fill(state, rows, config.noise)
        with _distributed.alone():
            loss_scale = state.loss_scale(parts.X, config.loss, fill)
        if group is not None:
            loss_scale = group.broadcast(loss_scale)
        verbose = config.verbose if group is None or group.rank == 0 else 0
        before = callbacks.save()
        # Commit: from here on the caller describes this fit.
        callbacks.publish(state)
        last_whole_epoch = state.snapshot()

        def end_epoch(record):
            nonlocal last_whole_epoch
            state.check_finite(record, loss_scale)
            last = state.plan.last_epoch
            stop = state.end_epoch(record, scheduler, budget, steps_per_epoch)
            state.history.fit_time = time.perf_counter() - self.started
            if verbose and state.plan.last_epoch != last:
                print_progress_line(
                    f"max_time={config.max_time:g} s: the time left affords "
                    f"{state.plan.last_epoch} epochs in all"
                )
            # Where Ctrl-C falls back to, and what a Checkpoint callback saves.
            last_whole_epoch = state.snapshot()
            callbacks.publish(state)
            if verbose:
                report_epoch(record, stop, state.stopping)
            # Every callback sees the epoch, even after one asked to stop.
            stop = callbacks.epoch_end(record) or stop
            if group is not None:
                # A callback on one rank stops them all.
                stop = group.any(stop)
            return stop

        if budget is not None:
            budget.start(state.history.n_iter, cap=planned_last)
        try:
            train_epochs(
                state.encoder,
                state.decoder,
                parts.X,
                optimizer=state.optimizer,
                n_epochs=n_epochs,
                batch_size=self._batch(parts),
                loss=config.loss,
                alpha=config.alpha,
                shuffle=config.shuffle,
                generator=state.generator,
                sample_weight=weights,
                X_validation=parts.X_validation,
                validation_weight=parts.validation_weight,
                noise=config.noise,
                scheduler=scheduler,
                first_epoch=state.history.n_iter,
                on_epoch_end=end_epoch,
                batch_progress=(
                    partial(batch_progress_bar, config.max_iter)
                    if verbose >= 2
                    else None
                ),
                precision=precision,
                fill=fill,
                group=group,
            )
        except KeyboardInterrupt:
            if self.on_interrupt == "raise" or group is not None:
                # Across ranks, the others cannot keep an epoch this rank may
                # not have finished: the call leaves every model as it was.
                callbacks.restore(before)
                raise
            # As MLPRegressor: keep what was learnt, but only whole epochs.
            state.restore(last_whole_epoch)
            decision = None if state.plan is None else state.plan.decision
            if decision is not None and not decision["keep"]:
                # Cross-validation returned PCA before this training began:
                # cutting it short changes nothing of that.
                state.finish()
                _apply_decision(state, rows, decision)
                state.history.fit_time = time.perf_counter() - self.started
                callbacks.publish(state)
                warn(
                    "Training interrupted by user. Cross-validation had already "
                    "decided to return PCA, so the model is PCA of all the rows, "
                    "as the whole fit would have been; there is nothing to resume."
                )
                return state
            if decision is not None and decision.get("keep_at") is not None:
                # Until resume finishes it, the model is scored as the folds
                # scored the epoch it reached.
                _score_as_decided(state.history, decision)
            if not resumable:
                state.finish()
            callbacks.publish(state)
            n_iter = state.history.n_iter
            kept = f"the {n_iter} whole epoch{'' if n_iter == 1 else 's'} it finished"
            if n_iter == 0:
                kept = "the state it started from (no epoch finished)"
            elif state.stopping is not None and state.stopping.best_state is not None:
                kept += " and infers with the best so far (early stopping)"
            warn(
                f"Training interrupted by user. The model keeps {kept}"
                + ("; call resume(X) to finish the fit." if resumable else ".")
            )
            return state
        except Diverged as diverged:
            callbacks.restore(before)
            cause = f"at epoch {diverged.epoch + 1}: {diverged.reason}"
            raise TrainingDiverged(
                f"Training diverged {cause}. "
                "The model is left as it was before this call. Scale X (e.g. "
                "StandardScaler, or divide pixels by 255) or lower "
                f"learning_rate_init (now {config.learning_rate_init}).",
                cause,
            ) from None
        except BaseException as error:
            callbacks.restore(before)
            if group is not None and _distributed.is_collective_failure(error):
                raise _distributed.peer_failure(group.rank, error) from error
            raise
        stopping = state.stopping
        budgeted_last = None if state.plan is None else state.plan.last_epoch
        decision = None if state.plan is None else state.plan.decision
        state.finish()
        if stopping.pca_candidate:
            self._keep_or_return_pca(state, stopping, parts, rows, fill)
        if untestable:
            state.restart_from_pca(rows.on(state.device), rows.weight_on(state.device))
        if decision is not None:
            _apply_decision(state, rows, decision)
        state.history.fit_time = time.perf_counter() - self.started
        callbacks.publish(state)
        # A run cross-validation sized or that returns PCA has nothing to say
        # about convergence.
        sized = decision is not None and (
            not decision["keep"] or planned_last < config.max_iter
        )
        if resumable and not stopping.stopped and not sized:
            limit = f"Maximum iterations ({config.max_iter})"
            if budgeted_last is not None and budgeted_last < planned_last:
                n_iter = state.history.n_iter
                limit = (
                    f"Time budget (max_time={config.max_time:g} seconds, "
                    f"{n_iter} epoch{'' if n_iter == 1 else 's'})"
                )
            warn(
                f"Stochastic Optimizer: {limit} reached and the optimization "
                "hasn't converged yet.",
                ConvergenceWarning,
            )
        return state

    def _keep_or_return_pca(self, state, stopping, parts, rows, fill):
        """Keep the trained model only if it beats its PCA start beyond noise.

        Otherwise return PCA of all the rows, as ``PCA().fit(X)`` would; its
        scores are the PCA start's, measured first, as PCA of all the rows has
        seen the held-out ones.
        """
        keep, statistics = beats_pca(
            state.encoder, state.decoder, *parts, fill=fill, basis=state.start_basis
        )
        if stopping.pca_start_best or not keep:
            state.history.held_out_explained_variance = _start_explained_variance(
                state, parts, rows
            )
            state.restart_from_pca(rows.on(state.device), rows.weight_on(state.device))
            state.history.best_validation_score = statistics["pca_score"]


def _score_as_decided(history, decision):
    """Give a cross-validated run cut short the out-of-fold scores of its epoch."""
    n_iter = history.n_iter
    best = decision["scores"][n_iter - 1] if n_iter else None
    _record_out_of_fold(history, decision, best, decision["explained_at"][n_iter])


def _apply_decision(state, rows, decision):
    """Finish a cross-validated run as its decision says (see skae._crossval)."""
    n_iter = state.history.n_iter
    keep_at = decision.get("keep_at")
    if decision["keep"] and keep_at is not None and n_iter < len(keep_at) - 1:
        # The training stopped before the epochs the folds chose: decide at
        # the epoch it reached, on the same out-of-fold errors.
        keep = keep_at[n_iter]
        decision = {
            **decision,
            "keep": keep,
            "best_score": (
                decision["scores"][n_iter - 1] if keep else decision["pca_score"]
            ),
            "explained_variance": decision["explained_at"][n_iter if keep else 0],
        }
    if not decision["keep"]:
        # No number of epochs beat PCA beyond noise out of fold: return PCA of
        # all the rows, as ``PCA().fit(X)`` would.
        state.restart_from_pca(rows.on(state.device), rows.weight_on(state.device))
    _record_out_of_fold(
        state.history,
        decision,
        decision["best_score"],
        decision["explained_variance"],
    )


def _record_out_of_fold(history, decision, best_score, explained_variance):
    """Set a cross-validated run's scores: the folds', up to the epochs it ran."""
    scores = decision["scores"][: history.n_iter]
    history.validation_scores = list(scores)
    history.validation_loss_curve = (
        [-0.5 * score for score in scores] if decision["loss_is_half"] else None
    )
    history.best_validation_score = best_score
    history.held_out_explained_variance = explained_variance


def _start_explained_variance(state, parts, rows):
    """Return the explained variance of the held-out rows by PCA of the others."""
    basis = state.start_basis
    if basis is None:
        basis = principal_axes(
            parts.X, state.architecture["n_components"], parts.weight
        )
    state.restart_from_basis(basis)
    return explained_variance_of_model(
        state.encoder,
        state.decoder,
        state.inference_fill(),
        state.device,
        rows.X,
        rows.weights(),
        held_out_indices(state.history.split).numpy(),
    )


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


def _fill(state, rows, noise):
    """Return the fill of missing inputs when training on `rows` needs one, else None.

    Needed when X has missing entries or the noise hides some; a model from a
    file written before fills were saved gets its training rows' means.
    """
    if not rows.missing and "missing" not in noise:
        return None
    if state.fill is None:
        state.fill = rows.column_fill(state.device)
    return state.fill


def _call(config, rows, call):
    """Describe a call for `Group.check_same`: what every rank must share."""
    own = {"verbose", "device", "random_state", "params"}
    return {
        "call": call,
        **{
            field.name: getattr(config, field.name)
            for field in dataclasses.fields(config)
            if field.name not in own
        },
        "sparse rows": rows.sparse,
        "sample_weight given": rows.weight is not None,
    }


def _total(group, count):
    """Return `count` summed over the ranks (itself when alone)."""
    if group is None:
        return count
    return int(group.sum(torch.tensor([float(count)]))[0])


def _rank_seed(seed, rank):
    """Return the seed of `rank`'s own stream, from the shared `seed`."""
    return (seed + 1_000_003 * rank) % 2**63


def _agreed(group, check):
    """Return check(); across ranks, raise on every rank if it raised on one."""
    if group is None:
        return check()
    try:
        value, refused = check(), None
    except ValueError as error:
        value, refused = None, error
    if group.any(refused is not None):
        if refused is not None:
            raise refused
        raise ValueError(
            "Another rank refused its rows (its error says why); every rank "
            "stops before training."
        )
    return value


def _rank_plan(plan, group):
    """Return `plan` as this rank saw it: each rank split its own rows.

    A plan written across N ranks resumes only across N ranks.
    """
    ranks = plan.ranks
    world_size = 1 if ranks is None else len(ranks)
    now = 1 if group is None else group.world_size
    if world_size != now:
        raise ValueError(
            f"This fit was interrupted while training across {world_size} "
            f"process{'es' if world_size > 1 else ''}, and resume runs across "
            f"{now}: resume it with the same number of ranks (e.g. torchrun "
            f"--nproc-per-node {world_size}), each passing the rows it held, "
            "or start a new fit."
        )
    if ranks is None:
        return plan
    mine = ranks[group.rank]
    return dataclasses.replace(
        plan,
        validation_size=mine["validation_size"],
        split_seed=mine["split_seed"],
        data_digest=mine["data_digest"],
    )


class _SharedBudget:
    """A `TimeBudget` whose plan is rank 0's, on every rank."""

    def __init__(self, budget, group):
        self.budget, self.group = budget, group

    def start(self, n_iter, cap):
        """Start timing the epochs (see `TimeBudget.start`)."""
        self.budget.start(n_iter, cap)

    def last_epoch(self, n_iter):
        """Return rank 0's last affordable epoch."""
        return self.group.broadcast(self.budget.last_epoch(n_iter))
