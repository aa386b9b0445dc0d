"""Shared test helpers: not conftest.py, as `from conftest` could find the root one."""

import hashlib

import numpy as np
import pytest
import scipy.sparse
import torch

from skae import MLPAutoencoder, _training

# skae compare, cut down to seconds: two epochs on 300 training and 100 test rows.
FAST = ["--max-iter", "2", "--train-size", "300", "--test-size", "100"]


def tiny(**params):
    """A small model; `params` override the defaults below.

    Training mechanics on every row: early stopping (on by default for a PCA
    start) is off here; tests/test_promises.py covers the defaults. A test file
    whose model differs binds its own defaults with functools.partial.
    """
    defaults = dict(
        n_components=2,
        hidden_layer_sizes=(8,),
        max_iter=3,
        random_state=0,
        early_stopping=False,
    )
    return MLPAutoencoder(**{**defaults, **params})


# What a fitted model holds


def fingerprint(ae):
    """Return (a hash of the weights, the repr of every other fitted attribute)."""
    digest = hashlib.sha256()
    for module in (getattr(ae, "encoder_", None), getattr(ae, "decoder_", None)):
        if module is None:
            continue
        for name, tensor in module.state_dict().items():
            digest.update(name.encode() + tensor.cpu().numpy().tobytes())
    attributes = {
        name: repr(value)
        for name, value in vars(ae).items()
        if name.endswith("_") and name not in ("encoder_", "decoder_")
    }
    return digest.hexdigest(), attributes


def weights(ae):
    """Copy every weight and buffer, named as in a model file ("encoder.<name>")."""
    return {
        f"{prefix}.{name}": tensor.detach().clone()
        for prefix, module in (("encoder", ae.encoder_), ("decoder", ae.decoder_))
        for name, tensor in module.state_dict().items()
    }


def same_weights(first, second):
    """Whether two `weights` hold the same tensors, bit for bit."""
    return first.keys() == second.keys() and all(
        torch.equal(first[name], second[name]) for name in first
    )


# Bad input


def with_value(X, value):
    """A copy of X with one entry, [3, 4], set to `value`."""
    X = X.copy()
    X[3, 4] = value
    return X


def sparse_with_nan(X):
    return scipy.sparse.csr_matrix(with_value(X, np.nan))


# Ctrl-C


def interrupt_after_epoch(epoch):
    """A callback that raises KeyboardInterrupt once, at the end of `epoch` (from 0)."""
    state = {"done": False}

    def callback(estimator, record):
        if record.epoch == epoch and not state["done"]:
            state["done"] = True
            raise KeyboardInterrupt

    return callback


def assert_resume_equals_a_fit_never_stopped(make, X, max_iter, stop_after):
    """Ctrl-C after epoch `stop_after`, then resume: the fit of `make()` unstopped."""
    straight = make(max_iter=max_iter).fit(X)
    ae = make(max_iter=max_iter, callbacks=[interrupt_after_epoch(stop_after)])
    with pytest.warns(UserWarning, match="call resume"):
        ae.fit(X)
    assert ae.n_iter_ == stop_after + 1
    ae.resume(X)
    assert ae.loss_curve_ == straight.loss_curve_
    np.testing.assert_array_equal(ae.transform(X), straight.transform(X))


class InterruptAt:
    """Raise KeyboardInterrupt once, at the given optimisation step (from 1).

    It wraps skae's loss through `monkeypatch` (the fixture, or a
    pytest.MonkeyPatch.context()), which undoes it.
    """

    def __init__(self, monkeypatch, step):
        self.step = step
        self.calls = 0
        real = _training.reconstruction_loss

        def loss(*args, **kwargs):
            self.calls += 1
            if self.calls == self.step:
                raise KeyboardInterrupt
            return real(*args, **kwargs)

        monkeypatch.setattr(_training, "reconstruction_loss", loss)


# The command line


def run_compare(tmp_path, *args):
    """Run ``skae compare *args`` into tmp_path/report; return (status, report)."""
    from skae._cli import main

    out = tmp_path / "report"
    return main(["compare", *args, "--out", str(out), "--no-progress"]), out
