"""n_components as a fraction of variance, and explained variance, against PCA."""

import pickle
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skae
from skae import MLPAutoencoder
from skae.metrics import explained_variance

from _helpers import FAST, interrupt_after_epoch, run_compare

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def low_rank(n_samples=200, n_features=12, rank=4, seed=0):
    """Data close to a `rank`-dimensional subspace, plus a little noise."""
    rng = np.random.RandomState(seed)
    scales = np.linspace(3, 1, rank)
    X = (rng.randn(n_samples, rank) * scales) @ rng.randn(rank, n_features)
    return X + 0.1 * rng.randn(n_samples, n_features)


def small(n_components, **params):
    return MLPAutoencoder(
        n_components,
        **{"hidden_layer_sizes": (16,), "max_iter": 3, "random_state": 0, **params},
    )


# explained_variance, the function


# promise: sizing.rst / Explained variance, for any model
@pytest.mark.parametrize("n_components", [1, 3, 7])
def test_explained_variance_equals_pca_ratio_sum(n_components):
    X = low_rank()
    pca = PCA(n_components=n_components).fit(X)
    assert_allclose(
        explained_variance(pca, X), pca.explained_variance_ratio_.sum(), atol=1e-6
    )


def test_explained_variance_is_variance_weighted_r2():
    X = low_rank()
    ae = small(2).fit(X)
    assert_allclose(
        explained_variance(ae, X),
        r2_score(X, ae.reconstruct(X), multioutput="variance_weighted"),
        atol=1e-6,
    )


# promise: sizing.rst / Explained variance, for any model
def test_explained_variance_of_a_pipeline():
    X = low_rank()
    pipeline = make_pipeline(StandardScaler(), PCA(n_components=2)).fit(X)
    reconstructed = pipeline.inverse_transform(pipeline.transform(X))
    expected = r2_score(X, reconstructed, multioutput="variance_weighted")
    assert_allclose(explained_variance(pipeline, X), expected, atol=1e-10)


def test_explained_variance_around_a_given_mean():
    X = low_rank()
    pca = PCA(n_components=2).fit(X[:150])
    X_test = X[150:]
    residual = np.sum((X_test - pca.inverse_transform(pca.transform(X_test))) ** 2)
    expected = 1 - residual / np.sum((X_test - pca.mean_) ** 2)
    assert_allclose(explained_variance(pca, X_test, mean=pca.mean_), expected)
    # Around the rows' own mean, the total is smaller, and so is the score.
    assert explained_variance(pca, X_test) < expected


def test_explained_variance_weights_equal_repeated_rows():
    X = low_rank()
    pca = PCA(n_components=2).fit(X)
    weights = np.random.RandomState(0).randint(0, 4, size=X.shape[0])
    assert_allclose(
        explained_variance(pca, X, sample_weight=weights),
        explained_variance(pca, np.repeat(X, weights, axis=0)),
    )


def test_explained_variance_refuses_a_mean_of_the_wrong_shape():
    X = low_rank()
    pca = PCA(n_components=2).fit(X)
    with pytest.raises(ValueError, match=r"mean has shape \(3,\); expected \(12,\)"):
        explained_variance(pca, X, mean=np.zeros(3))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_explained_variance_of_data_without_variance():
    X = np.ones((10, 3))
    pca = PCA(n_components=1).fit(X)
    # Nothing to explain: a perfect reconstruction scores 1, as in r2_score.
    assert explained_variance(pca, X) == 1.0
    assert explained_variance(pca, X + 1, mean=np.full(3, 2.0)) == 0.0


# The fitted attributes of an int n_components


def test_int_n_components_sets_the_width_and_the_score_on_training_rows():
    X = low_rank()
    ae = small(3, early_stopping=False).fit(X)
    assert ae.n_components_ == 3
    assert ae.n_components_search_ is None
    assert_allclose(ae.explained_variance_score_, explained_variance(ae, X))


@pytest.mark.parametrize("early_stopping", ["auto", True])
def test_score_is_measured_on_the_held_out_rows(early_stopping):
    # Defaults hold rows out from 1,000 on; init="random" keeps the best epoch
    # (never PCA of every row), whose validation score is recorded.
    X = low_rank(n_samples=1000 if early_stopping == "auto" else 200)
    ae = small(2, init="random", early_stopping=early_stopping).fit(X)
    split = ae._state.history.split
    import torch

    order = torch.randperm(
        X.shape[0], generator=torch.Generator().manual_seed(split["seed"])
    )
    held_out = X[order[: split["validation_size"]].numpy()]
    assert_allclose(ae.explained_variance_score_, explained_variance(ae, held_out))
    # best_validation_score_ is minus the mean squared error on the same rows.
    total = np.sum((held_out - held_out.mean(axis=0)) ** 2)
    from_score = 1 + ae.best_validation_score_ * held_out.size / total
    assert_allclose(ae.explained_variance_score_, from_score, rtol=1e-4)


@pytest.mark.parametrize("weighted", [False, True])
def test_score_is_the_same_measured_a_chunk_at_a_time(monkeypatch, weighted):
    from skae import _variance

    X = low_rank()
    weights = np.random.RandomState(2).rand(X.shape[0]) if weighted else None
    ae = small(3, early_stopping=False).fit(X, sample_weight=weights)
    monkeypatch.setattr(_variance, "MEASURED_ROWS", 7)
    chunked = _variance.measured_explained_variance(
        ae._state, ae._fit_config(X), X, weights
    )
    assert_allclose(chunked, explained_variance(ae, X, sample_weight=weights))
    assert_allclose(chunked, ae.explained_variance_score_)


def test_partial_fit_leaves_no_score():
    X = low_rank()
    ae = small(3).fit(X)
    ae.partial_fit(X)
    assert ae.explained_variance_score_ is None
    assert ae.n_components_search_ is None
    assert ae.n_components_ == 3


def test_single_row_with_an_int_width():
    X = low_rank(n_samples=1)
    ae = small(2).fit(X)
    assert ae.explained_variance_score_ in (0.0, 1.0)


# n_components as a fraction


# promise: sizing.rst / ``n_components`` as a fraction
# promise: sizing.rst / From the command line
@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
def test_fraction_finds_the_smallest_width_tried_below_pca(fraction):
    X = low_rank()
    ae = small(fraction).fit(X)
    pca_width = PCA(n_components=fraction).fit(X).n_components_
    assert 1 <= ae.n_components_ <= pca_width
    assert ae.transform(X).shape == (X.shape[0], ae.n_components_)
    tried = {entry["n_components"]: entry for entry in ae.n_components_search_}
    assert ae.n_components_ in tried
    chosen = tried[ae.n_components_]
    assert ae.explained_variance_score_ == chosen["explained_variance"]
    assert chosen["explained_variance"] >= fraction or ae.n_components_ == pca_width
    # The width below was tried and fell short, as did every narrower width.
    assert ae.n_components_ == 1 or ae.n_components_ - 1 in tried
    for width, entry in tried.items():
        if width < ae.n_components_:
            assert entry["explained_variance"] < fraction
        assert entry["n_iter"] >= 1
    # Each width's seconds are a part of the whole search's.
    assert sum(entry["seconds"] for entry in tried.values()) <= ae.fit_time_


# promise: sizing.rst / ``n_components`` as a fraction
def test_fraction_gives_the_fit_of_the_width_it_chose():
    X = low_rank()
    ae = small(0.9).fit(X)
    same = small(ae.n_components_).fit(X)
    assert_allclose(ae.transform(X), same.transform(X), rtol=1e-6, atol=1e-7)
    assert ae.loss_curve_ == same.loss_curve_


def test_fraction_with_early_stopping_searches_on_held_out_rows():
    X = low_rank(n_samples=300)
    ae = small(0.9, early_stopping=True).fit(X)
    assert ae.validation_scores_ is not None
    tried = {entry["n_components"]: entry for entry in ae.n_components_search_}
    assert tried[ae.n_components_]["explained_variance"] == pytest.approx(
        ae.explained_variance_score_
    )


def test_fraction_with_none_random_state_shares_one_seed():
    X = low_rank()
    np.random.seed(0)
    first = small(0.9, random_state=None).fit(X)
    np.random.seed(0)
    second = small(0.9, random_state=None).fit(X)
    assert first.n_components_search_ is not None
    assert [e["explained_variance"] for e in first.n_components_search_] == [
        e["explained_variance"] for e in second.n_components_search_
    ]


def test_fraction_with_sample_weight():
    X = low_rank()
    weights = np.random.RandomState(1).rand(X.shape[0])
    ae = small(0.9, early_stopping=False).fit(X, sample_weight=weights)
    assert_allclose(
        ae.explained_variance_score_,
        explained_variance(ae, X, sample_weight=weights),
    )


def test_fraction_so_close_to_one_that_pca_needs_every_feature():
    X = np.random.RandomState(0).randn(60, 5)
    fraction = 1 - 1e-9
    assert PCA(n_components=fraction).fit(X).n_components_ == 5
    ae = small(fraction).fit(X)
    # Four of five equal-variance directions explain about 0.8: only all five do.
    assert ae.n_components_ == 5


@pytest.mark.parametrize(
    "X", [np.ones((20, 4)), low_rank(n_samples=1)], ids=["constant", "single row"]
)
def test_fraction_refuses_data_without_variance(X):
    ae = small(0.9)
    with pytest.raises(ValueError, match=r"n_components=0.9 asks for a fraction"):
        ae.fit(X)
    assert not hasattr(ae, "n_components_")
    assert "n_features_in_" not in ae.__dict__


@pytest.mark.parametrize("value", [0.0, 1.0, 1.5, -0.2, float("nan")])
def test_fraction_outside_the_open_interval_is_refused(value):
    with pytest.raises(ValueError, match="n_components"):
        small(value).fit(low_rank())


def test_int_above_n_features_is_refused():
    with pytest.raises(ValueError, match="n_components=13 must be <= n_features=12"):
        small(13).fit(low_rank())


@pytest.mark.parametrize("method", ["partial_fit", "resume"])
def test_streaming_refuses_a_fraction_and_changes_nothing(method):
    X = low_rank()
    ae = small(3).fit(X)
    before = ae.transform(X)
    attributes = dict(ae.__dict__)
    ae.set_params(n_components=0.9)
    with pytest.raises(ValueError, match="known before streaming"):
        getattr(ae, method)(X)
    assert ae.__dict__.keys() == attributes.keys()
    assert_allclose(ae.transform(X), before)


def test_partial_fit_refuses_a_fraction_before_the_first_chunk():
    ae = small(0.9)
    with pytest.raises(ValueError, match="partial_fit needs the code's width"):
        ae.partial_fit(low_rank())
    assert not hasattr(ae, "n_features_in_")


def test_warm_start_refuses_a_fraction_once_fitted():
    X = low_rank()
    ae = small(0.9, warm_start=True).fit(X)
    width = ae.n_components_
    with pytest.raises(ValueError, match=f"Set n_components={width}"):
        ae.fit(X)
    assert ae.n_components_ == width


def test_refused_fraction_leaves_a_fitted_model_as_it_was():
    X = low_rank()
    ae = small(3).fit(X)
    attributes = {k: v for k, v in ae.__dict__.items() if k.endswith("_")}
    ae.set_params(n_components=0.9)
    with pytest.raises(ValueError, match="asks for a fraction"):
        ae.fit(np.ones_like(X))
    assert {k: v for k, v in ae.__dict__.items() if k.endswith("_")}.keys() == (
        attributes.keys()
    )
    assert ae.n_components_ == 3
    assert ae.explained_variance_score_ == attributes["explained_variance_score_"]


def test_ctrl_c_stops_the_search_and_keeps_nothing():
    ae = small(0.9, callbacks=[interrupt_after_epoch(0)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(KeyboardInterrupt):
            ae.fit(low_rank())
    messages = [str(warning.message) for warning in caught]
    assert any("nothing to resume" in message for message in messages)
    # No advice to resume a fit the estimator does not have.
    assert not any("call resume" in message for message in messages)
    assert not hasattr(ae, "n_components_")
    with pytest.raises(NotFittedError):
        ae.resume(low_rank())


def test_an_int_fit_after_a_search_drops_the_search_record():
    X = low_rank()
    ae = small(0.9).fit(X)
    ae.set_params(n_components=2).fit(X)
    assert ae.n_components_search_ is None
    assert ae.n_components_ == 2


# scikit-learn's tools


def test_fraction_in_pipeline_grid_search_and_clone():
    X = low_rank()
    assert clone(small(0.9)).n_components == 0.9
    pipeline = make_pipeline(StandardScaler(), small(0.9))
    pipeline.fit(X)
    assert pipeline[-1].n_components_ <= X.shape[1]
    search = GridSearchCV(pipeline, {"mlpautoencoder__n_components": [0.5, 0.8]}, cv=2)
    search.fit(X)
    # A larger fraction searches a wider code, which reconstructs better.
    low, high = search.cv_results_["mean_test_score"]
    assert high > low
    assert search.best_params_["mlpautoencoder__n_components"] == 0.8
    assert search.best_estimator_[-1].n_components_search_


def test_save_load_and_pickle_keep_the_search(tmp_path):
    X = low_rank()
    ae = small(0.9).fit(X)
    path = tmp_path / "model.skae"
    ae.save(path)
    for loaded in (skae.load(path), pickle.loads(pickle.dumps(ae))):
        assert loaded.n_components == 0.9
        assert loaded.n_components_ == ae.n_components_
        assert loaded.explained_variance_score_ == ae.explained_variance_score_
        assert loaded.n_components_search_ == ae.n_components_search_
        assert_allclose(loaded.transform(X), ae.transform(X))


def test_load_refuses_a_malformed_search_record(tmp_path):
    from skae import _persistence

    ae = small(0.9).fit(low_rank())
    ae.n_components_search_ = [{"n_components": "three"}]
    path = tmp_path / "model.skae"
    _persistence.save_model(ae, path)
    with pytest.raises(skae.ModelFileError, match="n_components_search_ should list"):
        skae.load(path)


# skae compare --variance


# promise: sizing.rst / From the command line
def test_compare_variance_reports_both_widths(tmp_path, capsys):
    import json

    status, out = run_compare(tmp_path, "--variance", "0.5", "0.7", *FAST)
    assert status == 0
    printed = capsys.readouterr().out
    assert "AE/PCA" in printed and "search s" in printed
    assert {p.name for p in out.iterdir()} == {
        "variance_vs_components.png",
        "results.json",
        "report.md",
    }
    assert (out / "variance_vs_components.png").read_bytes()[:4] == b"\x89PNG"
    results = json.loads((out / "results.json").read_text())
    assert results["results"] == []
    rows = {row["fraction"]: row for row in results["variance"]}
    assert set(rows) == {0.5, 0.7}
    from skae.datasets import load_mnist_sample

    # PCA's width is the one PCA(n_components=fraction) keeps on the same rows.
    X, y = load_mnist_sample()
    from sklearn.model_selection import train_test_split

    X_train = train_test_split(X, y, test_size=100, random_state=0, stratify=y)[0]
    keep = np.sort(np.random.RandomState(0).permutation(len(X_train))[:300])
    for fraction, row in rows.items():
        pca = PCA(n_components=fraction).fit(X_train[keep])
        assert row["pca_n_components"] == pca.n_components_
        # PCA's width is on the training images; the autoencoder's is measured
        # on rows it never trained on, so it may need more.
        assert 1 <= row["autoencoder_n_components"] <= 784
        assert row["reached"] == (row["autoencoder_explained_variance"] >= fraction)
        assert row["search_fits"] == len(row["search"]) >= 1
    report = (out / "report.md").read_text()
    assert "AE/PCA" in report and "variance_vs_components.png" in report


def test_compare_variance_with_widths_runs_both(tmp_path):
    import json

    status, out = run_compare(
        tmp_path, "--variance", "0.5", "--n-components", "2", *FAST
    )
    assert status == 0
    results = json.loads((out / "results.json").read_text())
    assert len(results["results"]) == 2 and len(results["variance"]) == 1


@pytest.mark.parametrize(
    "value, message",
    [
        ("0", "0.0 must be a fraction strictly between 0 and 1"),
        ("1", "1.0 must be a fraction strictly between 0 and 1"),
        ("1.5", "1.5 must be a fraction"),
        ("-0.1", "-0.1 must be a fraction"),
        ("most", "'most' is not a number"),
        ("nan", "nan must be a fraction"),
    ],
)
def test_compare_refuses_bad_fractions_before_training(
    tmp_path, capsys, value, message
):
    with pytest.raises(SystemExit) as exit_info:
        run_compare(tmp_path, "--variance", "0.9", value, *FAST)
    assert exit_info.value.code == 2
    printed = capsys.readouterr()
    assert message in printed.err
    assert "Epoch" not in printed.out
    assert list(tmp_path.iterdir()) == []


# promise: sizing.rst / ``n_components`` as a fraction
def test_a_search_that_misses_the_fraction_warns_with_what_it_reached():
    # A random start trained one epoch explains little at any width up to PCA's.
    X = low_rank()
    ae = small(0.99, init="random", max_iter=1)
    with pytest.warns(UserWarning, match=r"n_components=0.99 was not reached") as info:
        ae.fit(X)
    assert ae.explained_variance_score_ < 0.99
    message = next(str(w.message) for w in info if "not reached" in str(w.message))
    assert f"explains {ae.explained_variance_score_:.4f}" in message
    assert f"n_components_={ae.n_components_}" in message


def test_a_search_that_reaches_the_fraction_does_not_warn():
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*was not reached")
        ae = small(0.5).fit(low_rank())
    assert ae.explained_variance_score_ >= 0.5


# promise: sizing.rst / ``n_components`` as a fraction
@pytest.mark.parametrize("n_samples", [3, 10])
def test_too_few_held_out_rows_to_decide_a_width_are_refused(n_samples):
    # One held-out row is its own mean: every width would score the same.
    ae = small(0.9)
    with pytest.raises(ValueError, match=r"1 row, too few to decide.*at least 11"):
        ae.fit(low_rank(n_samples=n_samples))
    assert not hasattr(ae, "n_components_")
    small(0.9, early_stopping=False).fit(low_rank(n_samples=n_samples))
    small(0.9).fit(low_rank(n_samples=11))


def test_compare_refuses_too_few_rows_for_a_width_search_before_training(
    tmp_path, capsys
):
    from skae._cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                *["compare", "--variance", "0.9", "--train-size", "10"],
                *["--max-iter", "1", "--out", str(tmp_path / "report")],
            ]
        )
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    assert "too few to decide" in captured.err
    assert "Epoch" not in captured.out
    assert not (tmp_path / "report").exists()


# promise: sizing.rst / From the command line
def test_compare_reports_a_missed_fraction(tmp_path, capsys):
    # The chapter's model (sigmoid output, random start) in two epochs.
    status, out = run_compare(
        tmp_path, "--variance", "0.9", "--preset", "chapter", *FAST
    )
    assert status == 0
    import json

    results = json.loads((out / "results.json").read_text())
    (row,) = results["variance"]
    assert row["reached"] is False
    assert row["autoencoder_explained_variance"] < 0.9
    assert "MISSED" in capsys.readouterr().out


def test_a_fit_that_returns_pca_of_all_rows_is_scored_by_pca_of_the_others():
    # Noise: no epoch beats PCA, so the fit returns PCA of all 60 rows, which
    # has seen the held-out ones. Its held-out score is that of PCA of the
    # training rows, as a model that never saw them would score.
    from skae._rows import held_out_indices

    X = np.random.RandomState(0).rand(60, 30)
    ae = small(10, max_iter=1, early_stopping=True).fit(X)
    everything = PCA(10, svd_solver="full").fit(X)
    assert_allclose(
        ae.reconstruct(X),
        everything.inverse_transform(everything.transform(X)),
        atol=1e-4,
    )
    held = held_out_indices(ae._state.history.split).numpy()
    training = np.setdiff1d(np.arange(len(X)), held)
    honest = explained_variance(PCA(10, svd_solver="full").fit(X[training]), X[held])
    assert ae.explained_variance_score_ == pytest.approx(honest, rel=1e-4)
    # The model itself, on rows it has seen, would claim more.
    assert explained_variance(ae, X[held]) > honest + 0.05


def test_the_search_tries_no_width_beyond_the_training_rows():
    # 30 rows of 100 noisy features, cross-validated: each fold trains on 24
    # rows, PCA never explains 0.9 of the rows left out, and no width beyond
    # the rank of the rows a fold trains on can help.
    X = np.random.RandomState(0).rand(30, 100)
    with pytest.warns(UserWarning, match="was not reached"):
        ae = small(0.9, max_iter=1).fit(X)
    tried = [entry["n_components"] for entry in ae.n_components_search_]
    assert max(tried) <= 24
    assert ae.n_components_ <= 24
    # With the held-out rule: 27 training rows.
    with pytest.warns(UserWarning, match="was not reached"):
        ae = small(0.9, max_iter=1, early_stopping=True).fit(X)
    assert max(entry["n_components"] for entry in ae.n_components_search_) <= 27
