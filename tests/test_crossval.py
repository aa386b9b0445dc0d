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
    fingerprint,
    interrupt_after_epoch,
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
    # One out-of-fold score per epoch trained, and the kept one is the best.
    assert len(ae.validation_scores_) == ae.n_iter_
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
    straight = fit(small(1), X)
    assert straight.n_iter_ > 2
    ae = small(1, callbacks=[interrupt_after_epoch(1)])
    with pytest.warns(UserWarning, match="call resume"):
        fit_quietly = ae.fit(X)
    assert fit_quietly.n_iter_ == 2
    # Until resumed, it is scored as the folds scored its epoch.
    assert ae.validation_scores_ == straight.validation_scores_[:2]
    assert ae.best_validation_score_ == straight.validation_scores_[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ae.resume(X)
    assert ae.n_iter_ == straight.n_iter_
    assert ae.loss_curve_ == straight.loss_curve_
    assert_array_equal(ae.transform(X), straight.transform(X))
    assert ae.validation_scores_ == straight.validation_scores_
    assert ae.best_validation_score_ == straight.best_validation_score_
    assert ae.explained_variance_score_ == straight.explained_variance_score_


# promise: vs_pca.rst / Small data: cross-validation
def test_ctrl_c_in_the_final_fit_after_a_decision_for_pca_gives_pca():
    # The folds decided for PCA before the final training began: cutting that
    # training short must not leave the network the folds rejected.
    X = noise()
    straight = fit(small(3), X)
    ae = small(3, callbacks=[interrupt_after_epoch(1)])
    with pytest.warns(UserWarning, match="already decided to return PCA"):
        ae.fit(X)
    assert ae.n_iter_ == 2 < straight.n_iter_
    assert_array_equal(ae.reconstruct(X), straight.reconstruct(X))
    assert ae.best_validation_score_ == straight.best_validation_score_
    assert ae.explained_variance_score_ == straight.explained_variance_score_
    assert not ae._state.unfinished


def test_a_final_training_stopped_early_is_decided_at_the_epoch_it_reached():
    # A callback stops the final training after its first epoch: the model
    # must not carry the chosen epoch's out-of-fold scores, nor be kept
    # unless its own epoch beat PCA out of fold.
    X = curved()
    straight = fit(small(1), X)
    assert straight.n_iter_ > 1
    ae = fit(small(1, callbacks=[lambda estimator, record: True]), X)
    assert ae.n_iter_ == 1
    pca = PCA(1, svd_solver="full").fit(X)
    returned_pca = np.allclose(
        ae.reconstruct(X), pca.inverse_transform(pca.transform(X)), atol=1e-5
    )
    if returned_pca:
        # PCA's out-of-fold score, not the first epoch's.
        assert ae.best_validation_score_ != ae.validation_scores_[0]
    else:
        assert ae.best_validation_score_ == ae.validation_scores_[0]
    assert ae.validation_scores_ == straight.validation_scores_[:1]
    assert ae.best_validation_score_ != straight.best_validation_score_
    assert ae.explained_variance_score_ != straight.explained_variance_score_


def test_a_warm_start_after_a_cross_validated_fit_says_its_scores_flatter():
    # The cross-validated fit trained on every row: any row the warm start
    # holds out now was trained on.
    X = curved()
    ae = fit(small(1, warm_start=True), X)
    with pytest.warns(UserWarning, match="may be rows it trained on"):
        ae.fit(X)
    # A fit that held rows out continues on the same ones: nothing to say.
    held_out = small(1, warm_start=True, early_stopping=True).fit(X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        held_out.fit(X)
    assert not [w for w in caught if "may be rows it trained on" in str(w.message)]


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


def noisy_checkpoints(tmp_path):
    """A fit on noise that cross-validation returns as PCA, checkpointed."""
    from skae.callbacks import Checkpoint

    checkpoint = Checkpoint(tmp_path / "ckpt-{epoch}.skae")
    straight = fit(small(2, max_iter=8, callbacks=[checkpoint]), noise())
    return straight, checkpoint.saved_


def test_resume_from_a_checkpoint_applies_the_decision_too(tmp_path):
    import skae

    X = noise()
    straight, saved = noisy_checkpoints(tmp_path)
    resumed = skae.load(saved[0])
    assert resumed._state.unfinished
    fit_warnings = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resumed.resume(X)
        fit_warnings = [str(warning.message) for warning in caught]
    assert_array_equal(resumed.reconstruct(X), straight.reconstruct(X))
    assert resumed.validation_scores_ == straight.validation_scores_
    assert resumed.best_validation_score_ == straight.best_validation_score_
    assert resumed.explained_variance_score_ == straight.explained_variance_score_
    # PCA, returned as decided, has no convergence to warn about.
    assert not [text for text in fit_warnings if "Maximum iterations" in text]


def test_verbose_says_what_each_fold_found_and_prints_the_final_epochs(capsys):
    ae = fit(small(1, verbose=1), curved())
    out = capsys.readouterr().out
    assert out.count("Fold ") == _crossval.N_FOLDS
    assert "5-fold cross-validation:" in out
    assert out.count("Epoch ") == ae.n_iter_


def test_a_huge_max_iter_under_a_budget_allocates_by_the_epochs_run():
    # Errors are kept for the epochs the folds ran, not for max_iter of them.
    ae = fit(small(1, max_iter=10**7, max_time=1.0), curved(100))
    assert 1 <= ae.n_iter_ < 10**7
    assert len(ae.validation_scores_) == ae.n_iter_


def test_a_cross_validated_width_search_looks_beyond_pca_in_sample_width(
    monkeypatch,
):
    # Out of fold every width explains less than PCA in sample: PCA's width on
    # the training rows is no bound, so the search goes on to wider codes.
    from skae import _sizing

    X = curved()
    tried = []

    def fake_fit(self, n_components, fits_left):
        tried.append(n_components)
        candidate = _sizing._Candidate(n_components, None, n_components / 8 - 0.01)
        self.tried[n_components] = self.last = candidate
        return candidate

    monkeypatch.setattr(_sizing._WidthSearch, "fit", fake_fit)
    monkeypatch.setattr(_sizing._WidthSearch, "held_out", lambda self, c: None)
    pca_width = int(
        np.searchsorted(np.cumsum(PCA().fit(X).explained_variance_ratio_), 0.6) + 1
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _sizing.search_width(
            small(0.6)._fit_config(X),
            RowSource(X),
            _crossval.Callbacks(),
            time.perf_counter(),
        )
    assert max(tried) > pca_width
