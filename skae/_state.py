"""The training state: everything a fit needs to continue, as one object.

Torch only: this module never imports scikit-learn. A `TrainingState` holds the
modules, the optimizer, the random generator, the plan of an unfinished fit
(schedule, validation split, epochs to run), the stopping rule with its best
weights, and the history of losses. It is snapshotted at every epoch's end and
restored whole, saved whole (`to_tensors` / `from_tensors`) and copied whole
before a call that may fail, so that nothing is restored attribute by attribute.
PyTorch Lightning's checkpoint is the model: each part goes through a
``state_dict`` / ``load_state_dict`` pair.
"""

import copy
import itertools
import math
from dataclasses import dataclass, field

import torch

from skae._budget import check_max_time
from skae._missing import column_fill, filled, principal_axes
from skae._modules import (
    LinearResidual,
    build_autoencoder,
    pca_linear_paths,
    set_pca_paths,
)
from skae._sparse import batch_rows
from skae._torch_utils import generator_from_state
from skae._training import (
    ONE_CYCLE_WARM_UP,
    Schedule,
    copy_state,
    evaluate,
    load_state,
    make_optimizer,
    split_parameters,
)

# A training loss this many times the larger of what the untrained model and a
# model that outputs zeros lose means divergence.
EXPLODING = 1e4
OPTIMIZER_STATE = {
    "adam": ("step", "exp_avg", "exp_avg_sq"),
    "adamw": ("step", "exp_avg", "exp_avg_sq"),
    "sgd": ("momentum_buffer",),
}


class Diverged(Exception):
    """Training blew up: a non-finite or exploding loss, or non-finite weights."""

    def __init__(self, epoch, reason):
        super().__init__(reason)
        self.epoch = epoch
        self.reason = reason


@dataclass
class Plan:
    """What a `fit` planned, so that an interrupted one can be finished as planned.

    ``split_seed`` seeds the permutation that holds out the validation rows;
    ``split_rng_state`` is the same for files of format version 1.
    """

    schedule: str
    total_steps: int
    last_epoch: int
    validation_size: int
    split_seed: int | None = None
    split_rng_state: torch.Tensor | None = None
    scheduler: dict | None = None
    # The training parameters and a digest of the data the fit ran with, so that
    # resume refuses to finish it with others.
    params: dict | None = None
    data_digest: str | None = None
    # A time budget (seconds) the plan has yet to be sized to: a budgeted fit cut
    # short before it learnt its pace sizes itself when resumed.
    max_time: float | None = None
    # What cross-validation decided before this run (skae._crossval): whether
    # to keep the network or return PCA at the end, and the out-of-fold scores
    # that become the fitted attributes; applied when the run ends, resumed or
    # not.
    decision: dict | None = None
    # A fit across ranks (skae._distributed): each rank's validation size,
    # split seed and data digest, in rank order; resume needs as many ranks.
    ranks: list | None = None

    def split_generator(self):
        """Return the generator that draws this plan's validation split, or None."""
        if not self.validation_size:
            return None
        if self.split_seed is not None:
            return torch.Generator().manual_seed(self.split_seed)
        return generator_from_state(self.split_rng_state)


@dataclass
class History:
    """The epochs run so far: what becomes the estimator's fitted attributes."""

    loss_curve: list = field(default_factory=list)
    best_loss: float | None = math.inf
    validation_scores: list | None = None
    validation_loss_curve: list | None = None
    best_validation_score: float | None = None
    # The early-stopping split of the last fit: a warm start holds out the same rows.
    split: dict | None = None
    # What the last fit, partial_fit or resume ran: its seconds, its arithmetic.
    fit_time: float | None = None
    precision: str | None = None
    # The explained variance of the held-out rows, when the fit measured it
    # itself: a fit that returns PCA of all the rows has trained on them, so it
    # is measured before, with PCA of the training rows. Not saved: the
    # estimator publishes it as explained_variance_score_.
    held_out_explained_variance: float | None = None

    @property
    def n_iter(self):
        """Number of epochs run, over every fit and partial_fit."""
        return len(self.loss_curve)


class StoppingRule:
    """MLPRegressor's stopping rule, and the best weights under early stopping."""

    def __init__(self, early_stopping, tol, n_iter_no_change):
        self.early_stopping = early_stopping
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.best_score = -math.inf
        self.best_loss = math.inf
        self.best_state = None
        # Whether the PCA start was a candidate, and whether it is still the best.
        self.pca_candidate = False
        self.pca_start_best = False
        self.no_improvement = 0
        self.stopped = False
        self.message = ""

    def state_dict(self):
        """Return the settings, counters and best weights (not copied)."""
        return {
            "early_stopping": self.early_stopping,
            "tol": self.tol,
            "n_iter_no_change": self.n_iter_no_change,
            "best_score": self.best_score,
            "best_loss": self.best_loss,
            "no_improvement": self.no_improvement,
            "pca_candidate": self.pca_candidate,
            "pca_start_best": self.pca_start_best,
            "stopped": self.stopped,
            "best_state": self.best_state,
        }

    @classmethod
    def from_state_dict(cls, state):
        """Return the rule `state_dict` describes."""
        rule = cls(state["early_stopping"], state["tol"], state["n_iter_no_change"])
        rule.load_state_dict(state)
        return rule

    def load_state_dict(self, state):
        """Continue from the counters and best weights of `state_dict`."""
        self.best_score = state["best_score"]
        self.best_loss = state["best_loss"]
        self.no_improvement = state["no_improvement"]
        self.pca_candidate = bool(state.get("pca_candidate", False))
        self.pca_start_best = bool(state.get("pca_start_best", False))
        self.stopped = bool(state.get("stopped", False))
        self.best_state = state["best_state"]

    def candidate(self, score, modules):
        """Offer `modules` with validation `score` as the best so far."""
        if score > self.best_score:
            self.best_score = score
            self.best_state = copy_state(modules)
            self.pca_start_best = False

    def update(self, record, modules, warming_up=False):
        """Take one epoch's record; return True when training should stop.

        An epoch `warming_up` (in a one-cycle warm-up, its rate still rising)
        is a candidate but does not count against ``n_iter_no_change``: over a
        long plan (max_iter=1000, or a generous time budget) the warm-up lasts
        hundreds of epochs at a tiny rate, and patience would end the fit
        before the rate has risen.
        """
        if self.early_stopping:
            score = record.validation_score
            improved = score >= self.best_score + self.tol
            self.candidate(score, modules)
        else:
            improved = record.train_loss <= self.best_loss - self.tol
            self.best_loss = min(self.best_loss, record.train_loss)
        if improved:
            self.no_improvement = 0
        elif not warming_up:
            self.no_improvement += 1
        if self.no_improvement > self.n_iter_no_change:
            quantity = "Validation score" if self.early_stopping else "Training loss"
            self.message = (
                f"{quantity} did not improve more than tol={self.tol} for "
                f"{self.n_iter_no_change} consecutive epochs. Stopping."
            )
            self.stopped = True
        return self.stopped


class TrainingState:
    """Modules, optimizer, random state, plan, stopping rule and history of a fit.

    ``encoder`` and ``decoder`` hold the weights training continues from. While a
    fit with early stopping is unfinished, the model to infer with is the best
    epoch's (`inference_modules`); once it finishes, the best weights are loaded
    into the modules themselves, as MLPRegressor does.
    """

    def __init__(self, architecture, encoder, decoder, generator, device):
        self.architecture = architecture
        self.encoder = encoder
        self.decoder = decoder
        self.generator = generator
        self.device = device
        self.solver = None
        self.optimizer = None
        self.plan = None
        self.stopping = None
        self.history = History()
        # The training rows' column means over observed entries: what fills a
        # missing entry before it is encoded. None in files written before it.
        self.fill = None
        # PCA of the training rows, (components, mean) on the CPU: the start of
        # a new model, kept for the comparison at the end of its fit (which
        # would otherwise compute it again). Only `build` sets it: it is never
        # copied nor saved, so a resumed or warm-started fit computes its own.
        self.start_basis = None

    @classmethod
    def build(cls, architecture, X, sample_weight, generator, device):
        """Return the state of a new model, started from PCA of X or at random."""
        pca = None
        if architecture["init"] == "pca":
            pca = tuple(
                t.cpu()
                for t in principal_axes(X, architecture["n_components"], sample_weight)
            )
        encoder, decoder = build_autoencoder(
            architecture["n_features"],
            architecture["hidden_layer_sizes"],
            architecture["n_components"],
            activation=architecture["activation"],
            latent_activation=architecture["latent_activation"],
            output_activation=architecture["output_activation"],
            generator=generator,
            pca=pca,
        )
        state = cls(
            architecture, encoder.to(device), decoder.to(device), generator, device
        )
        state.fill = column_fill(X, sample_weight).to(device)
        state.start_basis = pca
        return state

    def inference_fill(self):
        """Return what fills a missing input: the fill, or zeros in older files."""
        if self.fill is not None:
            return self.fill
        return torch.zeros(self.architecture["n_features"], device=self.device)

    @property
    def modules(self):
        """The encoder and the decoder, as a tuple."""
        return (self.encoder, self.decoder)

    @property
    def unfinished(self):
        """Whether a fit was cut short and `resume` can finish it."""
        return self.plan is not None

    def inference_modules(self):
        """Return (encoder, decoder) to infer with: the best epoch's, if kept."""
        best = None if self.stopping is None else self.stopping.best_state
        if best is None:
            self.__dict__.pop("_inference_copies", None)
            return self.modules
        # A new best epoch brings a new best state: until then, every epoch
        # publishes the copies the last one made (a copy costs as much as a
        # few steps of a small epoch).
        key = (best, self.encoder, self.decoder)
        cached = self.__dict__.get("_inference_copies")
        if cached is not None and all(
            a is b for a, b in zip(cached[0], key, strict=True)
        ):
            return cached[1]
        encoder, decoder = copy.deepcopy(self.encoder), copy.deepcopy(self.decoder)
        load_state((encoder, decoder), best)
        encoder.eval()
        decoder.eval()
        self._inference_copies = (key, (encoder, decoder))
        return encoder, decoder

    def use_optimizer(self, solver, learning_rate, momentum):
        """Keep the optimizer when `solver` is unchanged, else start a fresh one."""
        if self.optimizer is None or self.solver != solver:
            self.optimizer = make_optimizer(
                self._parameters(),
                solver,
                learning_rate,
                momentum,
                slow=self._pca_path_parameters(),
            )
            self.solver = solver
        if solver == "sgd":
            for group in self.optimizer.param_groups:
                group["momentum"] = float(momentum)
        return self.optimizer

    def start_plan(self, plan, learning_rate, stopping):
        """Set up the schedule and the stopping rule of a run; return the scheduler.

        A new plan starts its schedule at `learning_rate`; a resumed one puts
        back the schedule's position and the optimizer's learning rate (and
        one-cycle's momentum) of its last whole epoch.
        """
        groups = copy.deepcopy(self.optimizer.state_dict())
        scheduler = Schedule(
            self.optimizer, plan.schedule, learning_rate, plan.total_steps
        )
        if plan.scheduler is not None:
            scheduler.load_state_dict(plan.scheduler)
            self.optimizer.load_state_dict(groups)
        self.plan = plan
        self.stopping = stopping
        return scheduler

    def loss_scale(self, X, loss, fill=None):
        """Return the yardstick of an exploding loss for training on X.

        The larger of what a model that outputs zeros loses, 0.5 * mean(X ** 2),
        and what the model loses before this run: a random network's first loss
        on data of tiny magnitude is far above the former, yet training is fine.
        """
        sample = X[: min(X.shape[0], batch_rows(X.shape[1]))]
        start_loss, _ = evaluate(self.encoder, self.decoder, sample, loss, fill=fill)
        if fill is not None:
            sample = filled(sample, fill)
        zeros = 0.5 * float(sample.square().mean())
        scale = max(zeros, start_loss if math.isfinite(start_loss) else 0.0)
        return max(scale, 1e-30)

    def check_finite(self, record, loss_scale):
        """Raise `Diverged` if the loss or the weights blew up this epoch."""
        reason = None
        if not math.isfinite(record.train_loss):
            reason = f"the training loss is {record.train_loss}"
        elif record.train_loss > EXPLODING * loss_scale:
            reason = (
                f"the training loss reached {record.train_loss:.4g}, more than "
                f"{EXPLODING:.0e} times what the model lost before training "
                f"({loss_scale:.4g})"
            )
        elif not all(bool(torch.isfinite(p).all()) for p in self._parameters()):
            reason = "the weights are no longer finite"
        if reason is not None:
            raise Diverged(record.epoch, reason)

    def end_epoch(self, record, scheduler, budget=None, steps_per_epoch=None):
        """Record one finished epoch; return True when the run should stop.

        It stops when the stopping rule says so, or when the plan's last epoch
        is reached. With a `budget` (a `skae._budget.TimeBudget`), the plan
        first becomes the epochs the time left affords, and `scheduler` with
        it, ``steps_per_epoch`` steps an epoch.
        """
        history = self.history
        history.loss_curve.append(record.train_loss)
        if record.validation_score is not None:
            history.validation_scores.append(record.validation_score)
            history.validation_loss_curve.append(record.validation_loss)
        else:
            history.best_loss = min(history.best_loss, record.train_loss)
        stop = self.stopping.update(
            record, self.modules, warming_up=self._warming_up(scheduler)
        )
        if self.stopping.early_stopping:
            history.best_validation_score = self.stopping.best_score
        plan = self.plan
        if plan is not None:
            if budget is not None:
                last = budget.last_epoch(history.n_iter)
                if last != plan.last_epoch:
                    left = (last - history.n_iter) * steps_per_epoch
                    scheduler.resize(scheduler.steps + left)
                    plan.total_steps = scheduler.total_steps
                    plan.last_epoch = last
                plan.max_time = None
            stop = stop or history.n_iter >= plan.last_epoch
            plan.scheduler = scheduler.state_dict()
        return stop

    def _warming_up(self, scheduler):
        """Whether a one-cycle schedule is still raising the rate."""
        if self.plan is None or self.plan.schedule != "one_cycle":
            return False
        return scheduler.steps < ONE_CYCLE_WARM_UP * scheduler.total_steps

    def restart_from_pca(self, X, sample_weight=None):
        """Make the model PCA of X exactly: the PCA start, refitted on X.

        For a fit in which no epoch validated better than its PCA start (fitted
        on the training rows): what it returns is then PCA of all the rows.
        """
        self.restart_from_basis(
            principal_axes(X, self.architecture["n_components"], sample_weight)
        )

    def restart_from_basis(self, basis):
        """Make the model the PCA of `basis`, (components, mean), exactly."""
        set_pca_paths(*pca_linear_paths(self.encoder, self.decoder), *basis)
        for module in self.modules:
            if isinstance(module, LinearResidual):
                # The trained correction is silenced: its last layer at zero, as
                # at the start.
                with torch.no_grad():
                    module.correction[-1].weight.zero_()
                    module.correction[-1].bias.zero_()

    def finish(self):
        """End the run: keep the best epoch's weights and forget the plan."""
        if self.stopping is not None and self.stopping.best_state is not None:
            load_state(self.modules, self.stopping.best_state)
        self.plan = None
        self.stopping = None

    # Whole-state operations: `state_dict` is the one list of what a state is.

    def state_dict(self):
        """Return the whole state, tensors and plain values, without copying.

        PyTorch Lightning's checkpoint protocol: `load_state_dict` puts it
        back, `snapshot` and `copy` are copies of it, and a model file
        (`to_tensors`) is it flattened. ``start_basis`` is left out on purpose:
        it belongs to the fit that built the state.
        """
        return {
            "architecture": self.architecture,
            "modules": [module.state_dict() for module in self.modules],
            "solver": self.solver,
            "optimizer": None
            if self.optimizer is None
            else self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "plan": self.plan,
            "stopping": None if self.stopping is None else self.stopping.state_dict(),
            "history": self.history,
            "fill": self.fill,
        }

    def load_state_dict(self, state):
        """Become the state `state_dict` returned (its values are used, not copied)."""
        self.architecture = state["architecture"]
        load_state(self.modules, state["modules"])
        if state["optimizer"] is None:
            self.optimizer = self.solver = None
        elif self.optimizer is None or self.solver != state["solver"]:
            self._load_optimizer(state["solver"], state["optimizer"])
        else:
            self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.plan = state["plan"]
        stopping = state["stopping"]
        self.stopping = (
            None if stopping is None else StoppingRule.from_state_dict(stopping)
        )
        self.history = state["history"]
        fill = state["fill"]
        self.fill = None if fill is None else fill.to(self.device)
        return self

    def snapshot(self):
        """Return a copy of the whole state, for `restore`."""
        return copied(self.state_dict())

    def restore(self, snapshot):
        """Go back to the state of `snapshot`, entirely."""
        self.load_state_dict(copied(snapshot))

    def copy(self):
        """Return an independent copy, so that a call can train without risk."""
        other = TrainingState(
            None,
            copy.deepcopy(self.encoder),
            copy.deepcopy(self.decoder),
            torch.Generator(),
            self.device,
        )
        return other.load_state_dict(copied(self.state_dict()))

    def to(self, device):
        """Move the modules, and the optimizer's state with them, to `device`."""
        if device == self.device:
            return self
        state = None if self.optimizer is None else self.optimizer.state_dict()
        self.encoder.to(device)
        self.decoder.to(device)
        if self.fill is not None:
            self.fill = self.fill.to(device)
        self.device = device
        if state is not None:
            self._load_optimizer(self.solver, state)
        return self

    def _load_optimizer(self, solver, state_dict):
        """Make a `solver` optimizer over the modules and load `state_dict` into it.

        The learning rate and the rest come from the state dict's groups;
        load_state_dict also moves the state to the parameters' device.
        """
        groups = state_dict["param_groups"]
        # Files written before the PCA paths had their own group have one.
        slow = self._pca_path_parameters() if len(groups) > 1 else ()
        self.optimizer = make_optimizer(
            self._parameters(),
            solver,
            1.0,
            0.0,
            slow=slow,
            slow_scale=groups[-1].get("lr_scale") if slow else None,
        )
        self.optimizer.load_state_dict(state_dict)
        self.solver = solver

    def to_tensors(self):
        """Return (JSON-able metadata, CPU tensors): `state_dict`, flattened."""
        whole = self.state_dict()
        tensors = {}
        for prefix, module in zip(
            ("encoder", "decoder"), whole["modules"], strict=True
        ):
            for name, tensor in module.items():
                tensors[f"{prefix}.{name}"] = tensor.detach().cpu().contiguous()
        architecture = dict(whole["architecture"])
        architecture["hidden_layer_sizes"] = list(architecture["hidden_layer_sizes"])
        history = whole["history"]
        metadata = {
            "architecture": architecture,
            "n_iter_": history.n_iter,
            "loss_": history.loss_curve[-1] if history.loss_curve else None,
            "best_loss_": history.best_loss,
            "best_validation_score_": history.best_validation_score,
            "loss_curve_": list(history.loss_curve),
            "validation_scores_": history.validation_scores,
            "validation_loss_curve_": history.validation_loss_curve,
            "split": history.split,
            "fit_time_": history.fit_time,
            "precision_": history.precision,
            "optimizer": None,
            "unfinished": None,
        }
        if whole["optimizer"] is not None:
            state = whole["optimizer"]
            metadata["optimizer"] = {
                "solver": whole["solver"],
                "param_groups": state["param_groups"],
            }
            for index, values in state["state"].items():
                for key, tensor in values.items():
                    if tensor is not None:
                        tensors[f"optimizer.{index}.{key}"] = tensor.detach().cpu()
        tensors["rng_state"] = whole["generator"]
        if whole["fill"] is not None:
            tensors["missing.fill"] = whole["fill"].detach().cpu().contiguous()
        if whole["plan"] is not None:
            plan = whole["plan"]
            stopping = dict(whole["stopping"])
            best_state = stopping.pop("best_state")
            stopping = {
                "best_score": float(stopping["best_score"]),
                "best_loss": float(stopping["best_loss"]),
                "no_improvement": int(stopping["no_improvement"]),
                "pca_candidate": bool(stopping["pca_candidate"]),
                "pca_start_best": bool(stopping["pca_start_best"]),
                "stopped": bool(stopping["stopped"]),
            }
            stopping["has_best_state"] = best_state is not None
            stopping["early_stopping"] = bool(whole["stopping"]["early_stopping"])
            metadata["unfinished"] = {
                "schedule": plan.schedule,
                "total_steps": int(plan.total_steps),
                "last_epoch": int(plan.last_epoch),
                "validation_size": int(plan.validation_size),
                "split_seed": plan.split_seed,
                "scheduler": plan.scheduler,
                "params": plan.params,
                "data_digest": plan.data_digest,
                "max_time": None if plan.max_time is None else float(plan.max_time),
                "decision": plan.decision,
                "ranks": plan.ranks,
                "stopping": stopping,
            }
            if plan.validation_size:
                split_state = plan.split_generator().get_state()
                tensors["unfinished.split_rng_state"] = split_state
            for prefix, state in zip(
                ("encoder", "decoder"), best_state or (), strict=False
            ):
                for name, tensor in state.items():
                    tensors[f"unfinished.best.{prefix}.{name}"] = tensor.detach().cpu()
        return metadata, tensors

    @classmethod
    def from_tensors(cls, metadata, tensors, *, tol, n_iter_no_change):
        """Rebuild a state from `to_tensors`' output, checking every part.

        Raises ValueError, TypeError or KeyError on anything inconsistent, before
        allocating what the metadata asks for.
        """
        architecture = check_architecture(metadata["architecture"])
        _check_parameter_count(architecture, tensors)
        n_features = architecture["n_features"]
        n_components = architecture["n_components"]
        pca = None
        if architecture["init"] == "pca":
            pca = (torch.zeros(n_components, n_features), torch.zeros(n_features))
        encoder, decoder = build_autoencoder(
            n_features,
            architecture["hidden_layer_sizes"],
            n_components,
            activation=architecture["activation"],
            latent_activation=architecture["latent_activation"],
            output_activation=architecture["output_activation"],
            generator=torch.Generator().manual_seed(0),
            pca=pca,
        )
        for prefix, module in (("encoder", encoder), ("decoder", decoder)):
            module.load_state_dict(
                _matching(module.state_dict(), tensors, f"{prefix}.")
            )
        unknown = {
            name
            for name in tensors
            if not name.startswith(
                ("encoder.", "decoder.", "optimizer.", "unfinished.")
            )
            and name not in ("rng_state", "missing.fill")
        }
        if unknown:
            raise ValueError(f"unexpected tensors {sorted(unknown)}.")
        encoder.eval()
        decoder.eval()
        generator = generator_from_state(
            _rng_state(tensors.get("rng_state"), "rng_state")
        )
        state = cls(architecture, encoder, decoder, generator, torch.device("cpu"))
        # Every part is parsed and checked into `whole`, which becomes the state.
        whole = {
            **state.state_dict(),
            "fill": _fill(tensors.get("missing.fill"), n_features),
            "history": _history(metadata),
        }
        optimizer = metadata.get("optimizer")
        if optimizer is not None:
            solver = optimizer["solver"]
            if solver not in OPTIMIZER_STATE:
                raise ValueError(f"unknown solver {solver!r}.")
            groups = optimizer["param_groups"]
            for group in groups:
                if "betas" in group:
                    group["betas"] = tuple(group["betas"])
            whole["solver"] = solver
            whole["optimizer"] = {
                "state": _optimizer_tensors(
                    tensors, state._optimizer_order(len(groups)), solver
                ),
                "param_groups": groups,
            }
        elif any(name.startswith("optimizer.") for name in tensors):
            raise ValueError("optimizer tensors without optimizer metadata.")
        unfinished = metadata.get("unfinished")
        if unfinished is None:
            if any(name.startswith("unfinished.") for name in tensors):
                raise ValueError("resume tensors without resume metadata.")
            return state.load_state_dict(whole)
        if whole["optimizer"] is None:
            raise ValueError("an unfinished fit without optimizer state.")
        stopping_state = dict(unfinished["stopping"])
        has_best = stopping_state.pop("has_best_state")
        validation_size = int(unfinished["validation_size"])
        early_stopping = bool(stopping_state.pop("early_stopping", validation_size > 0))
        best_state = None
        if has_best:
            best_state = [
                _matching(module.state_dict(), tensors, f"unfinished.best.{prefix}.")
                for prefix, module in (("encoder", encoder), ("decoder", decoder))
            ]
        # Parsed by a rule, so that a missing or odd counter is refused here.
        stopping = StoppingRule(early_stopping, tol, n_iter_no_change)
        stopping.load_state_dict({**stopping_state, "best_state": best_state})
        split_seed = unfinished.get("split_seed")
        if split_seed is not None and (
            not isinstance(split_seed, int) or split_seed < 0
        ):
            raise ValueError(f"split_seed should be an int >= 0, got {split_seed!r}.")
        split_rng_state = tensors.get("unfinished.split_rng_state")
        if (validation_size and split_seed is None) or split_rng_state is not None:
            split_rng_state = _rng_state(split_rng_state, "unfinished.split_rng_state")
        plan = Plan(
            schedule=unfinished["schedule"],
            total_steps=int(unfinished["total_steps"]),
            last_epoch=int(unfinished["last_epoch"]),
            validation_size=validation_size,
            split_seed=split_seed,
            split_rng_state=split_rng_state,
            scheduler=unfinished["scheduler"],
            params=_optional(unfinished.get("params"), dict, "params"),
            data_digest=_optional(unfinished.get("data_digest"), str, "data_digest"),
            max_time=check_max_time(
                _optional(unfinished.get("max_time"), float, "max_time")
            ),
            decision=_check_decision(unfinished.get("decision")),
            ranks=_check_ranks(unfinished.get("ranks")),
        )
        history = whole["history"]
        if plan.last_epoch < history.n_iter:
            raise ValueError("the plan ends before the epochs already run.")
        if early_stopping and history.validation_scores is None:
            history.validation_scores = []
            history.validation_loss_curve = []
        whole["plan"] = plan
        whole["stopping"] = stopping.state_dict()
        return state.load_state_dict(whole)

    def _parameters(self):
        return [*self.encoder.parameters(), *self.decoder.parameters()]

    def _optimizer_order(self, n_groups):
        """Return the parameters in the optimizer's order, for `n_groups` groups."""
        if n_groups == 1:
            return self._parameters()
        fast, slow = split_parameters(self._parameters(), self._pca_path_parameters())
        return fast + slow

    def _pca_path_parameters(self):
        """Return the linear paths of a PCA start with corrections, else []."""
        return [
            p
            for module in self.modules
            if isinstance(module, LinearResidual)
            for p in module.linear.parameters()
        ]


def _history(metadata):
    """Return the History recorded in a file's metadata, checking its types."""
    curve = metadata.get("loss_curve_")
    if curve is None:
        curve = []
    lists = {}
    for name in ("loss_curve_", "validation_scores_", "validation_loss_curve_"):
        value = curve if name == "loss_curve_" else metadata.get(name)
        if value is not None and not (
            isinstance(value, list)
            and all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in value
            )
        ):
            raise ValueError(f"{name} should be a list of numbers.")
        lists[name] = None if value is None else [float(v) for v in value]
    n_iter = metadata.get("n_iter_")
    if not isinstance(n_iter, int) or isinstance(n_iter, bool) or n_iter < 0:
        raise ValueError(f"n_iter_ should be an int >= 0, got {n_iter!r}.")
    if n_iter != len(lists["loss_curve_"]):
        raise ValueError(
            f"n_iter_={n_iter} but loss_curve_ has {len(lists['loss_curve_'])} epochs."
        )
    scalars = {}
    for name in ("best_loss_", "best_validation_score_", "fit_time_"):
        value = metadata.get(name)
        if value is not None and not _is_number(value):
            raise ValueError(f"{name} should be a number, got {value!r}.")
        scalars[name] = None if value is None else float(value)
    split = metadata.get("split")
    if split is not None and not (
        isinstance(split, dict)
        and set(split) == {"n_samples", "validation_size", "seed"}
        and all(isinstance(v, int) and v >= 0 for v in split.values())
    ):
        raise ValueError(f"split should hold three ints, got {split!r}.")
    return History(
        loss_curve=lists["loss_curve_"],
        best_loss=scalars["best_loss_"],
        validation_scores=lists["validation_scores_"],
        validation_loss_curve=lists["validation_loss_curve_"],
        best_validation_score=scalars["best_validation_score_"],
        split=split,
        fit_time=scalars["fit_time_"],
        precision=_optional(metadata.get("precision_"), str, "precision_"),
    )


def check_architecture(architecture):
    """Check the types and ranges of a file's architecture; return it as used."""
    from skae._modules import ACTIVATIONS

    if not isinstance(architecture, dict):
        raise TypeError("architecture should be a JSON object.")
    for key in ("n_features", "n_components"):
        value = architecture.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"architecture[{key!r}] should be an int >= 1.")
    sizes = architecture.get("hidden_layer_sizes")
    if not isinstance(sizes, list | tuple) or not all(
        isinstance(size, int) and not isinstance(size, bool) and size >= 1
        for size in sizes
    ):
        raise ValueError("architecture['hidden_layer_sizes'] should list ints >= 1.")
    for key in ("activation", "latent_activation", "output_activation"):
        if architecture.get(key) not in ACTIVATIONS:
            raise ValueError(
                f"architecture[{key!r}] is not one of {sorted(ACTIVATIONS)}."
            )
    if architecture.get("init") not in ("pca", "random"):
        raise ValueError("architecture['init'] should be 'pca' or 'random'.")
    return {**architecture, "hidden_layer_sizes": tuple(sizes)}


def _check_parameter_count(architecture, tensors):
    """Refuse tensors that disagree with the architecture, before allocating it."""
    sizes = [
        architecture["n_features"],
        *architecture["hidden_layer_sizes"],
        architecture["n_components"],
    ]

    def mlp(widths):
        return sum((n_in + 1) * n_out for n_in, n_out in itertools.pairwise(widths))

    expected = mlp(sizes) + mlp(sizes[::-1])
    if architecture["init"] == "pca":
        # The PCA start: a linear path each way, plus the MLPs when there are any.
        n_features, n_components = sizes[0], sizes[-1]
        linear = mlp([n_features, n_components]) + mlp([n_components, n_features])
        expected = linear + (expected if architecture["hidden_layer_sizes"] else 0)
    found = sum(
        tensor.numel()
        for name, tensor in tensors.items()
        if name.startswith(("encoder.", "decoder."))
    )
    if expected != found:
        raise ValueError(
            f"the architecture has {expected} weights but the file holds {found}."
        )


def _matching(expected, tensors, prefix):
    """Return the tensors under `prefix`, checked against `expected`."""
    found = {
        name[len(prefix) :]: tensor
        for name, tensor in tensors.items()
        if name.startswith(prefix)
    }
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing or extra:
        raise ValueError(
            f"the {prefix[:-1]} tensors do not match the architecture: missing "
            f"{missing}, unexpected {extra}."
        )
    for name, tensor in found.items():
        want = expected[name]
        if tensor.dtype != want.dtype or tensor.shape != want.shape:
            raise ValueError(
                f"tensor {prefix}{name} is {tensor.dtype} of shape "
                f"{tuple(tensor.shape)}; expected {want.dtype} of shape "
                f"{tuple(want.shape)}."
            )
    return found


def _optimizer_tensors(tensors, parameters, solver):
    """Return the optimizer's per-parameter state, checked against the weights."""
    keys = OPTIMIZER_STATE[solver]
    state = {}
    for name, tensor in tensors.items():
        if not name.startswith("optimizer."):
            continue
        _, index, key = name.split(".", 2)
        if not index.isdigit() or int(index) >= len(parameters) or key not in keys:
            raise ValueError(f"unexpected optimizer tensor {name}.")
        parameter = parameters[int(index)]
        shape = () if key == "step" else parameter.shape
        if tensor.dtype != torch.float32 or tensor.shape != shape:
            raise ValueError(
                f"tensor {name} is {tensor.dtype} of shape {tuple(tensor.shape)}; "
                f"expected torch.float32 of shape {tuple(shape)}."
            )
        state.setdefault(int(index), {})[key] = tensor
    return state


def _fill(tensor, n_features):
    """Check the fill values read from a file (None when the file has none)."""
    if tensor is None:
        return None
    if tensor.dtype != torch.float32 or tuple(tensor.shape) != (n_features,):
        raise ValueError(
            f"tensor missing.fill is {tensor.dtype} of shape {tuple(tensor.shape)}; "
            f"expected torch.float32 of shape ({n_features},)."
        )
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError("tensor missing.fill has values that are not finite.")
    return tensor


def _rng_state(tensor, name):
    """Check a CPU generator state read from a file."""
    if tensor is None:
        raise ValueError(f"the tensor {name} is missing.")
    if tensor.dtype != torch.uint8:
        raise ValueError(f"tensor {name} should be uint8, not {tensor.dtype}.")
    generator_from_state(tensor)  # raises RuntimeError on a malformed state
    return tensor


def _is_number(value):
    """Whether a JSON value is a number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional(value, kind, name):
    """Return `value` if it is None or a `kind`, else raise ValueError."""
    if value is not None and not isinstance(value, kind):
        raise ValueError(f"{name} should be a {kind.__name__}, got {value!r}.")
    return value


def copied(value):
    """Return a deep copy of a state dict: tensors cloned, containers rebuilt.

    What `copy.deepcopy` returns, without its per-object bookkeeping, which
    cost more than the clones themselves at every epoch's snapshot of a small
    model. Anything but tensors, dicts, lists and tuples goes to deepcopy.
    """
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, dict):
        return {key: copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [copied(item) for item in value]
    if isinstance(value, tuple):
        return tuple(copied(item) for item in value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return copy.deepcopy(value)


def _check_ranks(ranks):
    """Return a file's per-rank plan entries, checked, or None."""
    if ranks is None:
        return None
    keys = {"validation_size", "split_seed", "data_digest"}
    if not (
        isinstance(ranks, list)
        and len(ranks) >= 2
        and all(
            isinstance(rank, dict)
            and set(rank) == keys
            and isinstance(rank["validation_size"], int)
            and rank["validation_size"] >= 0
            and (rank["split_seed"] is None or isinstance(rank["split_seed"], int))
            and (rank["data_digest"] is None or isinstance(rank["data_digest"], str))
            for rank in ranks
        )
    ):
        raise ValueError(f"the plan's ranks should each hold {sorted(keys)}.")
    return [dict(rank) for rank in ranks]


def _check_decision(decision):
    """Return a file's cross-validation decision, checked, or None."""
    if decision is None:
        return None
    keys = {"keep", "scores", "best_score", "explained_variance", "loss_is_half"}
    # Each epoch's decision (so that a training cut short is decided at the
    # epoch it reached); files written before it decide at the chosen epoch.
    per_epoch = {"keep_at", "explained_at", "pca_score"}
    if not (
        isinstance(decision, dict)
        and set(decision) in (keys, keys | per_epoch)
        and (
            set(decision) == keys
            or (
                isinstance(decision["keep_at"], list)
                and all(isinstance(keep, bool) for keep in decision["keep_at"])
                and isinstance(decision["explained_at"], list)
                and len(decision["explained_at"]) == len(decision["keep_at"])
                and all(_is_number(value) for value in decision["explained_at"])
                and _is_number(decision["pca_score"])
            )
        )
        and isinstance(decision["keep"], bool)
        and isinstance(decision["loss_is_half"], bool)
        and isinstance(decision["scores"], list)
        and all(_is_number(score) for score in decision["scores"])
        and _is_number(decision["best_score"])
        and _is_number(decision["explained_variance"])
    ):
        raise ValueError(f"the plan's decision should hold {sorted(keys)}.")
    return dict(decision)
