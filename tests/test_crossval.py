"""Small data: the default fit decides between the network and PCA by 5-fold CV."""

import time
import warnings
from functools import partial

import numpy as np
import pytest
import scipy.sparse
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.decomposition import PCA

from skae import MLPAutoencoder, _crossval
from skae._rows import RowSource

from _helpers import (
    assert_resume_equals_a_fit_never_stopped,
    fingerprint,
    same_weights,
)
from _helpers import weights as weights_of

small = partial(
    MLPAutoencoder,
    hidden_layer_sizes=(32,),
    learning_rate_init=0.01,
    max_iter=30,
    random_state=0,
)


def curved(n_samples=300, seed=0):
    """A noisy circle embedded in 8 dimensions: PCA at k=1 keeps a line of it."""
    rng = np.random.RandomState(seed)
    t = 2 * np.pi * rng.rand(n_samples)
    circle = np.column_stack([np.cos(t), np.sin(t)])
    X = circle @ np.linalg.qr(rng.randn(8, 2))[0].T + 0.05 * rng.randn(n_samples, 8)
    return ((X - X.mean(0)) / X.std(0)).astype(np.float32)


def noise(n_samples=200, seed=0):
    return np.random.RandomState(seed).randn(n_samples, 10).astype(np.float32)


def fit(estimator, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return estimator.fit(X, **kwargs)


# promise: vs_pca.rst / Small data: cross-validation
def test_a_real_gain_on_300_rows_is_kept():
    X = curved()
    ae = fit(small(1), X)
    assert ae.n_iter_ > 0
    pca = PCA(1, svd_solver="full").fit(X)
    pca_error = np.mean((X - pca.inverse_transform(pca.transform(X))) ** 2)
    assert ae.score(X) > -0.95 * pca_error
    # One out-of-fold score per epoch, and the kept one is the best.
    assert len(ae.validation_scores_) == 30
    assert ae.best_validation_score_ == max(ae.validation_scores_)
    assert ae.validation_scores_[ae.n_iter_ - 1] == ae.best_validation_score_


# promise: vs_pca.rst / Small data: cross-validation
def test_noise_returns_pca_of_all_the_rows():
    X = noise()
    ae = fit(small(3), X)
    pca = PCA(3, svd_solver="full").fit(X)
    scale = np.abs(X).max()
    assert_allclose(
        ae.reconstruct(X),
        pca.inverse_transform(pca.transform(X)),
        atol=1e-5 * scale,
        rtol=1e-5,
    )
    # Its held-out score is PCA's out of fold, which no epoch beat.
    assert ae.best_validation_score_ >= -np.inf
    assert ae.best_validation_score_ < max(ae.validation_scores_) + 1e-3


def test_the_explained_variance_is_the_out_of_fold_one():
    X = curved()
    ae = fit(small(1), X)
    total = np.sum((X.astype(np.float64) - X.mean(0, dtype=np.float64)) ** 2)
    from_score = 1 + ae.best_validation_score_ * X.size / total
    assert ae.explained_variance_score_ == pytest.approx(from_score, rel=1e-9)


def test_the_same_seed_gives_the_same_model():
    X = curved()
    first, second = fit(small(1), X), fit(small(1), X)
    assert same_weights(weights_of(first), weights_of(second))
    assert first.loss_curve_ == second.loss_curve_
    assert first.validation_scores_ == second.validation_scores_


def test_callbacks_see_the_final_fit_only():
    X = curved()
    seen = []
    ae = fit(small(1, callbacks=[lambda est, record: seen.append(record.epoch)]), X)
    assert seen == list(range(ae.n_iter_))


@pytest.mark.parametrize(
    ("params", "X"),
    [
        ({"early_stopping": True}, curved()),
        ({"early_stopping": False}, curved()),
        ({"init": "random"}, curved()),
        ({}, curved(1001)),
        ({}, curved(19)),
    ],
    ids=["early-stopping", "no-early-stopping", "random", "large", "tiny"],
)
def test_cross_validation_applies_to_small_default_fits_only(params, X):
    config = small(1, **params)._fit_config(X)
    assert not _crossval.applies(config, RowSource(X), None)


def test_holed_sparse_and_continued_fits_keep_the_held_out_rule():
    X = curved()
    config = small(1)._fit_config(X)
    assert _crossval.applies(config, RowSource(X), None)
    assert not _crossval.applies(config, RowSource(X, missing=True), None)
    assert not _crossval.applies(config, RowSource(scipy.sparse.csr_matrix(X)), None)
    previous = fit(small(1, early_stopping=False), X)._state
    assert not _crossval.applies(config, RowSource(X), previous)


def test_ctrl_c_during_the_folds_leaves_the_model_as_it_was(monkeypatch):
    X = curved()
    ae = fit(small(1), X)
    before = fingerprint(ae)

    def interrupt(self, state):
        if state.history.n_iter == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(_crossval._FoldScores, "publish", interrupt)
    with pytest.raises(KeyboardInterrupt):
        with pytest.warns(UserWarning, match="nothing to resume"):
            ae.fit(X + 1)
    assert fingerprint(ae) == before


def test_ctrl_c_in_the_final_fit_resumes_to_the_same_model():
    X = curved()
    n_iter = fit(small(1), X).n_iter_
    assert n_iter > 2

    def make(**params):
        return small(1, **params)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=Warning)
        warnings.simplefilter("default", category=UserWarning)
        assert_resume_equals_a_fit_never_stopped(make, X, max_iter=30, stop_after=1)


def test_sample_weights_weigh_the_decision_and_the_scores():
    X = curved()
    weights = np.random.RandomState(3).rand(len(X))
    ae = fit(small(1), X, sample_weight=weights)
    plain = fit(small(1), X)
    assert ae.validation_scores_ != plain.validation_scores_


def test_a_300_row_fit_is_one_second_of_work_not_many():
    # Not a timing assertion: the number of trainer runs is what costs.
    X = curved()
    runs = []
    real = _crossval.Trainer.fit

    def counting(self, *args, **kwargs):
        runs.append(time.perf_counter())
        return real(self, *args, **kwargs)

    _crossval.Trainer.fit = counting
    try:
        fit(small(1), X)
    finally:
        _crossval.Trainer.fit = real
    assert len(runs) == _crossval.N_FOLDS + 1


def test_fitting_twice_on_other_data_uses_the_new_rows():
    first, second = curved(seed=0), curved(seed=1)
    ae = fit(small(1), first)
    fit(ae, second)
    assert_array_equal(ae.transform(second), fit(small(1), second).transform(second))
