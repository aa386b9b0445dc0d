"""Missing values: MLPAutoencoder with NaN, and AutoencoderImputer."""

import functools
import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

import skae
from skae import AutoencoderImputer, MLPAutoencoder
from skae._missing import (
    column_fill,
    low_rank_completion,
    masked_loss,
    pca_with_missing,
)
from skae._modules import build_autoencoder, pca_basis

import _helpers
from _helpers import (
    assert_resume_equals_a_fit_never_stopped,
    fingerprint,
    interrupt_after_epoch,
)

pytestmark = pytest.mark.filterwarnings("ignore", category=ConvergenceWarning)


def low_rank(n_samples=120, n_features=10, rank=2, seed=0):
    rng = np.random.RandomState(seed)
    return rng.rand(n_samples, rank) @ rng.rand(rank, n_features)


def with_holes(X, fraction=0.2, seed=1):
    X = X.copy()
    X[np.random.RandomState(seed).rand(*X.shape) < fraction] = np.nan
    return X


# Early stopping left "auto" (the default path); tests that need every row turn it off.
tiny = functools.partial(_helpers.tiny, early_stopping="auto")


def test_masked_loss_equals_the_loss_without_missing_entries():
    torch.manual_seed(0)
    encoder, decoder = build_autoencoder(6, (4,), 2)
    X = torch.rand(5, 6)
    full = 0.5 * torch.nn.functional.mse_loss(decoder(encoder(X)), X)
    fill = X.mean(dim=0)
    torch.testing.assert_close(
        masked_loss(encoder, decoder, X, X, fill, "squared_error"), full
    )


def test_masked_loss_ignores_missing_targets_and_normalises_each_row():
    torch.manual_seed(0)
    encoder, decoder = build_autoencoder(4, (), 2)
    X = torch.rand(2, 4)
    fill = torch.zeros(4)
    holed = X.clone()
    holed[0, :3] = torch.nan
    output = decoder(encoder(torch.where(torch.isnan(holed), fill, holed)))
    row0 = 0.5 * (output[0, 3] - X[0, 3]) ** 2
    row1 = 0.5 * ((output[1] - X[1]) ** 2).mean()
    expected = (row0 * 3.0 + row1 * 1.0) / 2
    weights = torch.tensor([3.0, 1.0])
    got = masked_loss(encoder, decoder, holed, holed, fill, "squared_error", weights)
    torch.testing.assert_close(got, expected)


def test_pca_start_with_missing_entries_recovers_the_complete_axes():
    X = torch.from_numpy(low_rank(200, 8, rank=2).astype(np.float32))
    holed = torch.from_numpy(with_holes(X.numpy(), 0.2))
    components, _ = pca_basis(X, 2)
    found, _ = pca_with_missing(holed, 2)
    # The same plane: the projections of one basis on the other keep their length.
    overlap = torch.linalg.svdvals(components @ found.T)
    assert float(overlap.min()) > 0.99


def _hard_impute(X, n_components, rounds):
    """Hard impute in float64 NumPy, each round a full eigendecomposition."""
    missing = np.isnan(X)
    current = np.where(missing, np.nanmean(X, axis=0), X)
    for _ in range(rounds + 1):
        mean = current.mean(axis=0)
        _, vectors = np.linalg.eigh(np.cov(current, rowvar=False))
        axes = vectors[:, ::-1][:, :n_components].T
        reconstruction = (current - mean) @ axes.T @ axes + mean
        current = np.where(missing, reconstruction, X)
    return axes, current


@pytest.mark.parametrize("start", [False, True])
def test_low_rank_completion_reaches_the_fixed_point_of_hard_impute(start):
    # Noisy rank-4 data with holes. Refining the axes by a step of subspace
    # iteration a round lands where decomposing anew every round does.
    rng = np.random.RandomState(0)
    X = low_rank(300, 30, rank=4) + 0.05 * rng.randn(300, 30)
    holed = with_holes(X, 0.2)
    expected_axes, expected = _hard_impute(holed, 4, rounds=60)
    holed = torch.from_numpy(holed.astype(np.float32))
    basis = None
    if start:
        filled = torch.where(torch.isnan(holed), column_fill(holed), holed)
        basis = pca_basis(filled, 30, precise=False)
    found, mean, rows = low_rank_completion(holed, 4, rounds=60, start=basis)
    torch.testing.assert_close(found @ found.T, torch.eye(4), atol=1e-5, rtol=0)
    overlap = np.linalg.svd(expected_axes @ found.double().numpy().T)[1]
    assert overlap.min() > 0.9999
    scale = float(np.abs(X).max())
    np.testing.assert_allclose(rows.numpy(), expected, atol=1e-3 * scale, rtol=0)
    # The observed entries are kept as given.
    observed = ~torch.isnan(holed)
    assert torch.equal(rows[observed], holed[observed])
    # The axes are ordered by the variance along them.
    variances = ((rows - mean) @ found.T).var(dim=0)
    assert torch.all(variances[:-1] > variances[1:])


# promise: missing.rst / What about missing values?
# promise: missing.rst / How the autoencoder treats a missing entry
def test_fit_transform_score_with_missing_entries():
    X = with_holes(low_rank())
    ae = tiny().fit(X)
    codes = ae.transform(X)
    assert codes.shape == (120, 2) and np.isfinite(codes).all()
    reconstructed = ae.inverse_transform(codes)
    assert np.isfinite(reconstructed).all()
    assert np.isfinite(ae.score(X))
    assert np.isfinite(ae.score_samples(X)).all()
    assert ae.__sklearn_tags__().input_tags.allow_nan


def test_training_on_missing_entries_beats_the_column_means():
    X = low_rank(300, 12, rank=2)
    holed = with_holes(X, 0.2)
    ae = MLPAutoencoder(n_components=2, random_state=0).fit(holed)
    hidden = np.isnan(holed)
    error = np.mean((ae.reconstruct(holed) - X)[hidden] ** 2)
    means = np.mean((np.nanmean(holed, axis=0) - X)[hidden] ** 2)
    assert error < 0.5 * means


def test_sample_weights_are_honoured_with_missing_entries():
    X = with_holes(low_rank())
    weights = np.r_[np.zeros(60), np.ones(60)]
    weighted = tiny(early_stopping=False).fit(X, sample_weight=weights)
    dropped = tiny(early_stopping=False).fit(X[60:])
    unweighted = tiny(early_stopping=False).fit(X)
    near = np.abs(weighted.reconstruct(X) - dropped.reconstruct(X)).max()
    far = np.abs(unweighted.reconstruct(X) - dropped.reconstruct(X)).max()
    assert near < far


# promise: missing.rst / Edge cases
def test_rows_entirely_missing_get_finite_codes_and_nan_scores():
    X = with_holes(low_rank())
    X[:3] = np.nan
    ae = tiny().fit(X)
    assert np.isfinite(ae.transform(X[:3])).all()
    scores = ae.score_samples(X)
    assert np.isnan(scores[:3]).all() and np.isfinite(scores[3:]).all()
    assert np.isfinite(ae.score(X))


# promise: missing.rst / Edge cases
def test_a_column_never_observed_is_reconstructed_as_zero():
    X = low_rank()
    X[:, 4] = np.nan
    ae = tiny().fit(X)
    np.testing.assert_allclose(ae.reconstruct(X)[:, 4], 0.0, atol=1e-6)
    imputed = AutoencoderImputer(autoencoder=tiny()).fit_transform(X)
    np.testing.assert_allclose(imputed[:, 4], 0.0, atol=1e-6)


@pytest.mark.parametrize("method", ["fit", "partial_fit"])
def test_all_missing_X_is_refused_and_leaves_the_model_unchanged(method):
    X = low_rank()
    ae = tiny().fit(X)
    before = fingerprint(ae)
    with pytest.raises(ValueError, match="no observed entry"):
        getattr(ae, method)(np.full_like(X, np.nan))
    assert fingerprint(ae) == before


def test_too_many_missing_entries_are_refused():
    X = with_holes(low_rank(20, 10), 0.8)
    with pytest.raises(ValueError, match=r"fewer than the \d+ numbers"):
        tiny().fit(X)
    with pytest.raises(ValueError, match="fewer than"):
        MLPAutoencoder(n_components=10).fit(with_holes(low_rank(), 0.01))


def test_infinity_is_still_refused():
    X = with_holes(low_rank())
    X[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        tiny().fit(X)


def test_nan_in_codes_is_refused():
    ae = tiny().fit(low_rank())
    with pytest.raises(ValueError, match="NaN"):
        ae.inverse_transform(np.array([[0.0, np.nan]]))


def test_fraction_of_variance_refuses_missing_entries():
    with pytest.raises(ValueError, match="set n_components to an int"):
        MLPAutoencoder(n_components=0.9).fit(with_holes(low_rank()))


def test_save_and_load_keep_the_fill(tmp_path):
    X = with_holes(low_rank())
    ae = tiny().fit(X)
    ae.save(tmp_path / "model.skae")
    loaded = skae.load(tmp_path / "model.skae")
    np.testing.assert_array_equal(loaded.transform(X), ae.transform(X))


def test_partial_fit_with_missing_entries_learns():
    X = with_holes(low_rank())
    # From a random start: a PCA start may begin at its best on these rows.
    ae = tiny(early_stopping=False, init="random")
    errors = []
    for _ in range(4):
        for chunk in np.array_split(X, 3):
            ae.partial_fit(chunk)
        errors.append(-ae.score(X))
    assert np.isfinite(ae.transform(X)).all()
    assert errors[-1] < errors[0]


def test_resume_with_missing_entries_equals_an_uninterrupted_fit():
    X = with_holes(low_rank())
    assert_resume_equals_a_fit_never_stopped(tiny, X, max_iter=4, stop_after=1)


# promise: missing.rst / AutoencoderImputer
def test_imputer_changes_only_the_missing_entries():
    X = low_rank(200, 10)
    holed = with_holes(X, 0.2)
    imputer = AutoencoderImputer(random_state=0).fit(holed)
    imputed = imputer.transform(holed)
    observed = ~np.isnan(holed)
    np.testing.assert_array_equal(imputed[observed], holed[observed])
    assert np.isfinite(imputed).all()
    hidden = ~observed
    error = np.mean((imputed - X)[hidden] ** 2)
    means = np.mean((np.nanmean(holed, axis=0) - X)[hidden] ** 2)
    assert error < 0.5 * means
    assert imputer.method_ in ("autoencoder", "low-rank")
    rounds = (0, 1, 2, 3) if imputer.method_ == "autoencoder" else (1, 3, 10, 30)
    assert imputer.completion_rounds_ in rounds


def _imputer_choice(imputer):
    """(autoencoder's best error, low-rank model's best error) on the hidden entries."""
    return min(imputer.completion_errors_), min(imputer.low_rank_["errors"].values())


# promise: missing.rst / AutoencoderImputer
def test_imputer_keeps_the_low_rank_model_where_it_predicts_better():
    # Linear data: the low-rank model's projection finds the hidden entries
    # (about 5x lower error than the autoencoder's completions here).
    rng = np.random.RandomState(0)
    X = low_rank(400, 20, rank=3) + 0.01 * rng.randn(400, 20)
    holed = with_holes(X, 0.2)
    imputer = AutoencoderImputer(random_state=0).fit(holed)
    autoencoder_error, low_rank_error = _imputer_choice(imputer)
    assert low_rank_error < autoencoder_error
    assert imputer.method_ == "low-rank"
    errors = imputer.low_rank_["errors"]
    assert imputer.completion_rounds_ == min(errors, key=errors.get)
    # transform completes by projection onto the kept axes: fill with the mean,
    # project, refill, completion_rounds_ times (here in float64 NumPy).
    components = imputer.low_rank_["components"].astype(np.float64)
    mean = imputer.low_rank_["mean"].astype(np.float64)
    missing = np.isnan(holed)
    current = np.where(missing, mean, holed)
    for _ in range(imputer.completion_rounds_):
        projected = (current - mean) @ components.T @ components + mean
        current = np.where(missing, projected, holed)
    imputed = imputer.transform(holed)
    np.testing.assert_allclose(imputed, current, rtol=0, atol=1e-4 * np.abs(X).max())
    assert np.sqrt(np.mean((imputed - X)[missing] ** 2)) < 0.05


# promise: missing.rst / AutoencoderImputer
def test_imputer_keeps_the_autoencoder_where_it_predicts_better():
    # Points on a curve: no plane through them predicts the hidden entries,
    # the trained network does (about 0.26 against 0.43 here).
    rng = np.random.RandomState(0)
    t = 3 * rng.rand(600, 1)
    X = np.hstack(
        [np.sin(k * t) for k in range(1, 9)] + [np.cos(k * t) for k in range(1, 9)]
    )
    X += 0.01 * rng.randn(*X.shape)
    imputer = AutoencoderImputer(random_state=0).fit(with_holes(X, 0.2))
    autoencoder_error, low_rank_error = _imputer_choice(imputer)
    assert autoencoder_error < low_rank_error
    assert imputer.method_ == "autoencoder"
    assert imputer.completion_rounds_ == int(np.argmin(imputer.completion_errors_))
    holed = with_holes(X, 0.2, seed=5)
    np.testing.assert_array_equal(
        imputer.transform(holed),
        np.where(
            np.isnan(holed),
            imputer.autoencoder_._reconstruct(holed, imputer.completion_rounds_),
            holed,
        ),
    )


def test_every_round_equals_each_number_of_rounds():
    X = with_holes(low_rank(150, 10))
    model = tiny(max_iter=3).fit(X)
    for n_rounds, reconstruction in enumerate(model._reconstructions(X, 3)):
        np.testing.assert_allclose(
            reconstruction, model._reconstruct(X, n_rounds), rtol=1e-6, atol=1e-6
        )


def test_imputer_with_indicator_and_other_placeholder():
    X = low_rank(100, 6)
    holed = X.copy()
    holed[::5, 2] = -1.0
    imputer = AutoencoderImputer(
        missing_values=-1.0, add_indicator=True, autoencoder=tiny()
    ).fit(holed)
    out = imputer.transform(holed)
    assert out.shape == (100, 7)
    np.testing.assert_array_equal(out[:, 6], (holed[:, 2] == -1.0).astype(float))
    assert (out[::5, 2] != -1.0).all()
    assert list(imputer.get_feature_names_out())[-1] == "missingindicator_x2"


# promise: missing.rst / What about missing values?
def test_imputer_in_a_pipeline():
    X = with_holes(low_rank(120, 6))
    y = np.arange(120) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = make_pipeline(
            AutoencoderImputer(autoencoder=tiny()), LogisticRegression()
        ).fit(X, y)
    assert pipeline.predict(X).shape == (120,)


def test_imputer_chooses_the_width_of_low_rank_data_on_hidden_entries():
    rng = np.random.RandomState(0)
    X = low_rank(400, 20, rank=3) + 0.01 * rng.randn(400, 20)
    imputer = AutoencoderImputer(random_state=0).fit(with_holes(X, 0.2))
    errors = imputer.width_errors_
    assert imputer.n_components_ in (3, 4)
    assert imputer.autoencoder_.n_components_ == imputer.n_components_
    # Narrower codes miss a direction of the data: far larger errors.
    assert errors[3] < errors[2] / 10
    assert len(imputer.completion_errors_) == 4


def test_imputer_hides_observed_entries_from_the_fit_only():
    X = with_holes(low_rank(300, 8))
    before = X.copy()
    probe = skae._imputer._Probe.hide(X, np.random.RandomState(0))
    np.testing.assert_array_equal(X, before)  # the caller's X is not touched
    probed = probe.rows[: len(probe.hidden)]
    assert np.isnan(probe.X[probed][probe.hidden]).all()
    np.testing.assert_array_equal(probe.truth, X[probed][probe.hidden])
    share = probe.hidden.sum() / np.count_nonzero(~np.isnan(X[probed]))
    assert 0.05 < share < 0.15
    unprobed = probe.rows[len(probe.hidden) :]
    np.testing.assert_array_equal(probe.X[unprobed], X[unprobed])


def test_imputer_hides_nothing_when_the_entries_are_too_few_to_spare():
    # A width-2 model of 10 x 10 has 2 * (10 + 10 - 2) = 36 numbers: 38
    # observed entries determine it, the 34 or so left after hiding a tenth
    # would not, so the imputer hides none and still fits.
    X = np.full((10, 10), np.nan)
    kept = np.random.RandomState(0).permutation(100)[:38]
    X.flat[kept] = low_rank(10, 10).flat[kept]
    imputer = AutoencoderImputer(autoencoder=tiny(), random_state=0).fit(X)
    assert imputer.completion_errors_ == []
    assert np.isfinite(imputer.transform(X)).all()


@pytest.mark.parametrize(
    ("n_samples", "epochs"), [(50, 150), (1797, 150), (5000, 75), (60000, 7)]
)
def test_default_imputer_trains_for_about_the_same_steps(n_samples, epochs):
    assert skae._imputer.default_epochs(n_samples) == epochs


def test_grid_search_with_missing_entries():
    from sklearn.model_selection import GridSearchCV

    rng = np.random.RandomState(0)
    X = with_holes(low_rank(300, 10, rank=3) + 0.01 * rng.randn(300, 10))
    search = GridSearchCV(
        MLPAutoencoder(hidden_layer_sizes=(), max_iter=5, random_state=0),
        {"n_components": [1, 3]},
        cv=2,
    ).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert np.isfinite(scores).all()
    # The data has rank 3: one component misses two directions of it.
    assert search.best_params_ == {"n_components": 3}
    assert np.isfinite(search.best_estimator_.transform(X)).all()


def test_imputer_in_a_grid_search():
    from sklearn.model_selection import GridSearchCV

    X = with_holes(low_rank(200, 8))
    y = (np.nan_to_num(X[:, 0]) > np.nanmedian(X[:, 0])).astype(int)
    pipeline = make_pipeline(
        AutoencoderImputer(autoencoder=tiny()), LogisticRegression()
    )
    search = GridSearchCV(
        pipeline, {"autoencoderimputer__add_indicator": [False, True]}, cv=2
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()


def test_a_refused_fit_leaves_a_fitted_imputer_usable():
    X = with_holes(low_rank(120, 6))
    imputer = AutoencoderImputer(autoencoder=tiny()).fit(X)
    before = imputer.transform(X)
    with pytest.raises(ValueError, match="no observed entry"):
        imputer.fit(np.full((10, 4), np.nan))
    assert imputer.n_features_in_ == 6
    np.testing.assert_array_equal(imputer.transform(X), before)


def test_the_width_and_the_low_rank_model_are_settled_by_more_rounds(monkeypatch):
    # Exact rank-3 data: after the search's 5 rounds width 2 predicts the
    # probe best; settled by more rounds, width 3 does, and far better.
    rng = np.random.RandomState(0)
    holed = with_holes(rng.rand(200, 3) @ rng.rand(3, 8), 0.2)
    settled = AutoencoderImputer(random_state=0).fit(holed)
    assert settled.n_components_ == 3
    errors = settled.width_errors_
    assert errors[2] < errors[3]
    monkeypatch.setattr(skae._imputer, "MODEL_ROUNDS", skae._imputer.SEARCH_ROUNDS)
    unsettled = AutoencoderImputer(random_state=0).fit(holed)
    best = min(settled.low_rank_["errors"].values())
    assert best < 0.8 * min(unsettled.low_rank_["errors"].values())


# promise: missing.rst / AutoencoderImputer
def test_ctrl_c_in_an_imputer_fit_goes_through_and_leaves_it_as_it_was():
    X = with_holes(low_rank(120, 6))
    imputer = AutoencoderImputer(autoencoder=tiny(), random_state=0).fit(X)
    before, fitted = imputer.transform(X), imputer.autoencoder_
    imputer.set_params(
        autoencoder=tiny(max_iter=5, callbacks=[interrupt_after_epoch(1)])
    )
    with warnings.catch_warnings():
        # No "keeps the epochs it finished; call resume(X)": nothing is kept.
        warnings.simplefilter("error")
        with pytest.raises(KeyboardInterrupt):
            imputer.fit(with_holes(low_rank(150, 6, seed=3)))
    assert imputer.autoencoder_ is fitted
    np.testing.assert_array_equal(imputer.transform(X), before)
    # A new imputer interrupted stays unfitted.
    fresh = AutoencoderImputer(
        autoencoder=tiny(max_iter=5, callbacks=[interrupt_after_epoch(0)])
    )
    with pytest.raises(KeyboardInterrupt):
        fresh.fit(X)
    assert not hasattr(fresh, "autoencoder_")


@pytest.mark.parametrize("given", [False, True], ids=["default", "autoencoder given"])
def test_a_code_wider_than_x_is_named_before_the_missing_entries(given):
    X = with_holes(low_rank(120, 8))
    imputer = AutoencoderImputer(n_components=20)
    if given:
        imputer = AutoencoderImputer(autoencoder=MLPAutoencoder(n_components=20))
    with pytest.raises(ValueError, match="n_components=20 must be <= n_features=8"):
        imputer.fit(X)
    with pytest.raises(ValueError, match="n_components=20 must be <= n_features=8"):
        MLPAutoencoder(20).fit(X)


@pytest.mark.parametrize("estimator", [MLPAutoencoder, AutoencoderImputer])
def test_n_components_true_is_refused_by_name(estimator):
    with pytest.raises(ValueError, match="n_components=True is a bool"):
        estimator(n_components=True).fit(with_holes(low_rank(60, 6)))


def test_an_imputer_whose_autoencoder_diverges_names_its_own_fixes():
    # Values near 1e-6: Adam's default steps move the network far more than
    # the data varies, and the loss explodes.
    X = with_holes(low_rank(200, 8, rank=3) * 1e-6)
    imputer = AutoencoderImputer(random_state=0)
    with pytest.raises(ValueError, match="diverged") as refused:
        imputer.fit(X)
    assert "StandardScaler" in str(refused.value)
    assert "learning_rate_init" in str(refused.value)
    assert "autoencoder=MLPAutoencoder" in str(refused.value)
    assert not hasattr(imputer, "autoencoder_")


# promise: missing.rst / AutoencoderImputer
@pytest.mark.parametrize("given", [False, True], ids=["default", "autoencoder given"])
def test_imputer_fills_a_feature_never_observed_with_0(given):
    rng = np.random.RandomState(0)
    # (Here float32 eigenvectors put ~1e-8, not 0, on the empty feature.)
    X = with_holes(low_rank(500, 30, rank=4) + 0.01 * rng.randn(500, 30))
    X[:, 7] = np.nan
    imputer = AutoencoderImputer(
        autoencoder=tiny(max_iter=5) if given else None, random_state=0
    ).fit(X)
    assert imputer.method_ == ("autoencoder" if given else "low-rank")
    new = with_holes(low_rank(20, 30, rank=4, seed=3), 0.5)
    hidden = np.isnan(new[:, 7])
    assert hidden.any()
    np.testing.assert_array_equal(imputer.transform(new)[hidden, 7], 0.0)
