"""skae._selection: keep the trained model only when it beats PCA beyond noise.

The model and PCA are built so that every row's error is known in advance:
rows of two features, PCA keeping the first (so it loses the second), and a
model that returns each row shifted by a chosen offset on the first feature.
The decision and its statistics are then checked against NumPy.
"""

import math

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

from skae._selection import Z, beats_pca


class Shifted(nn.Module):
    """Return each row plus its own offset on the first feature.

    Rows come in order, a batch at a time: the module counts the rows it saw.
    """

    def __init__(self, offsets):
        super().__init__()
        self.register_buffer("offsets", torch.as_tensor(offsets, dtype=torch.float32))
        self.seen = 0

    def forward(self, X):
        shift = torch.zeros_like(X)
        shift[:, 0] = self.offsets[self.seen : self.seen + X.shape[0]]
        self.seen += X.shape[0]
        return X + shift


BASIS = (torch.tensor([[1.0, 0.0]]), torch.zeros(2))


def decide(second, offsets, validation_weight=None, fill=None):
    """beats_pca on rows (0, second[i]), the model shifting row i by offsets[i].

    With a first feature of 0, both errors are computed exactly alike: a model
    shifted by ``second`` loses exactly what PCA loses.
    """
    X_validation = torch.tensor(
        np.column_stack([np.zeros(len(second)), second]), dtype=torch.float32
    )
    return beats_pca(
        nn.Identity(),
        Shifted(offsets),
        X_validation,  # the training rows are not read when the basis is given
        None,
        X_validation,
        validation_weight,
        fill=fill,
        basis=BASIS,
    )


def expected(second, offsets, weights=None):
    """(decision, mean difference, standard error, PCA score) computed in NumPy."""
    model = np.square(offsets) / 2
    pca = np.square(second) / 2
    differences = model - pca
    weights = np.ones(len(second)) if weights is None else np.asarray(weights, float)
    weights = weights / weights.sum()
    mean = weights @ differences
    variance = weights @ np.square(differences - mean)
    effective = 1 / np.sum(np.square(weights))
    error = math.sqrt(variance / max(effective - 1, 1))
    return mean + margin(effective) * error < 0, mean, error, -(weights @ pca)


def margin(effective):
    """Student's t quantile at the confidence of Z normal standard errors."""
    if effective < 5 - 1e-9:
        return math.inf
    return stats.t.ppf(stats.norm.cdf(Z), effective - 1)


def check(result, second, offsets, weights=None):
    decision, statistics = result
    want, mean, error, pca_score = expected(second, offsets, weights)
    assert decision == want
    assert statistics["n_rows"] == len(second)
    assert statistics["mean_difference"] == pytest.approx(mean, rel=1e-5, abs=1e-7)
    assert statistics["standard_error"] == pytest.approx(error, rel=1e-5, abs=1e-7)
    assert statistics["pca_score"] == pytest.approx(pca_score, rel=1e-5)


# promise: vs_pca.rst / Never worse than PCA
def test_a_model_better_on_every_row_is_kept():
    second = np.linspace(0.5, 1.0, 20)
    offsets = 0.5 * second
    result = decide(second, offsets)
    assert result[0] is True
    check(result, second, offsets)


def test_a_model_equal_to_pca_is_not_kept():
    second = np.linspace(0.5, 1.0, 20)
    result = decide(second, second)
    assert result[0] is False
    assert result[1]["mean_difference"] == 0.0
    check(result, second, second)


# promise: vs_pca.rst / Never worse than PCA
def test_a_better_mean_within_noise_is_not_kept():
    # Better by a little on average, far worse or far better row by row.
    # Differences of -0.45 and +0.25 in turn: a mean of -0.1, and a standard
    # error of 0.35 / sqrt(11), so the mean is within two of zero.
    second = np.ones(12)
    offsets = np.sqrt(np.tile([0.1, 1.5], 6))
    result = decide(second, offsets)
    assert result[1]["mean_difference"] < 0
    assert result[0] is False
    check(result, second, offsets)


# promise: vs_pca.rst / Never worse than PCA
def test_the_margin_is_z_standard_errors():
    # Two designs with the same mean difference and another spread: the one whose
    # mean sits beyond Z standard errors is kept, the other is not.
    second = np.ones(10)
    narrow = np.sqrt(np.tile([0.6, 0.8], 5))
    wide = np.sqrt(np.tile([0.0, 1.4], 5))
    kept, not_kept = decide(second, narrow), decide(second, wide)
    assert kept[1]["mean_difference"] == pytest.approx(
        not_kept[1]["mean_difference"], abs=1e-6
    )
    assert kept[0] is True and not_kept[0] is False
    check(kept, second, narrow)
    check(not_kept, second, wide)


def test_validation_weights_weigh_rows_and_their_effective_number():
    second = np.ones(10)
    offsets = np.sqrt(np.tile([0.2, 1.5], 5))
    # The rows where the model is worse weigh nothing: it then wins clearly.
    weights = np.tile([1.0, 0.0], 5)
    result = decide(second, offsets, torch.tensor(weights))
    assert result[0] is True
    check(result, second, offsets, weights)
    # Unequal but positive weights: Kish's effective number of rows.
    weights = np.linspace(1, 3, 10)
    check(decide(second, offsets, torch.tensor(weights)), second, offsets, weights)


def test_one_validation_row_never_decides_for_the_model():
    decision, statistics = decide(np.ones(1), np.zeros(1))
    assert decision is False
    assert statistics["standard_error"] == math.inf
    assert statistics["n_rows"] == 1
    assert statistics["mean_difference"] == pytest.approx(-0.5)
    assert statistics["pca_score"] == pytest.approx(-0.5)


def test_missing_entries_are_filled_as_inputs_and_left_out_of_the_errors():
    # PCA keeps the second feature and loses the first. The second is missing in
    # every other row: filled with 0 as input, left out of the errors, so PCA
    # loses the whole first feature there, over one observed entry.
    first = np.full(8, 0.6)
    offsets = np.full(8, 0.5)
    X_validation = torch.tensor(
        np.column_stack([first, np.ones(8)]), dtype=torch.float32
    )
    X_validation[::2, 1] = torch.nan
    decision, statistics = beats_pca(
        nn.Identity(),
        Shifted(offsets),
        X_validation,
        None,
        X_validation,
        None,
        fill=torch.zeros(2),
        basis=(torch.tensor([[0.0, 1.0]]), torch.zeros(2)),
    )
    # Holed rows: the model is off by 0.5 and PCA by 0.6, over one entry;
    # complete rows: the same errors over two entries.
    model = np.tile([0.25, 0.125], 4)
    pca = np.tile([0.36, 0.18], 4)
    assert statistics["mean_difference"] == pytest.approx(
        (model - pca).mean(), rel=1e-5
    )
    assert statistics["pca_score"] == pytest.approx(-pca.mean(), rel=1e-5)
    assert decision is True


# promise: vs_pca.rst / Never worse than PCA
@pytest.mark.parametrize("n_rows", [2, 4])
def test_fewer_than_five_validation_rows_never_keep_the_model(n_rows):
    # Better on every row, by a clear margin: on so few rows, chosen as the
    # best epoch on these same rows, that proves nothing.
    second = np.ones(n_rows)
    offsets = np.sqrt(np.linspace(0.0, 0.2, n_rows))
    result = decide(second, offsets)
    assert result[1]["mean_difference"] < -0.3
    assert result[0] is False
    check(result, second, offsets)


# promise: vs_pca.rst / Never worse than PCA
def test_on_few_rows_the_margin_is_students_t():
    # Ten rows whose mean difference lies 2.15 standard errors below zero:
    # beyond Z = 2, within Student's t quantile for 9 degrees of freedom (2.32).
    differences = np.tile([-0.3595, 0.0595], 5)
    second = np.ones(10)
    offsets = np.sqrt(1 + 2 * differences)
    result = decide(second, offsets)
    ratio = -result[1]["mean_difference"] / result[1]["standard_error"]
    assert Z < ratio < margin(10)
    assert result[0] is False
    check(result, second, offsets)
    # Five rows better beyond their t quantile (2.87) are kept.
    second = np.ones(5)
    offsets = np.sqrt(np.linspace(0.5, 0.6, 5))
    result = decide(second, offsets)
    assert result[0] is True
    check(result, second, offsets)


def test_the_validation_rows_are_scored_a_batch_at_a_time(monkeypatch):
    from skae import _selection

    monkeypatch.setattr(_selection, "batch_rows", lambda n_features: 3)
    second = np.linspace(0.5, 1.0, 20)
    offsets = 0.5 * second
    check(decide(second, offsets), second, offsets)


def test_without_a_basis_pca_of_the_training_rows_is_computed():
    # Training rows along the first axis: their PCA is the BASIS above.
    rng = np.random.RandomState(0)
    X = torch.tensor(
        np.column_stack([rng.randn(50), np.zeros(50)]), dtype=torch.float32
    )
    second = np.linspace(0.5, 1.0, 20)
    offsets = 0.5 * second
    X_validation = torch.tensor(
        np.column_stack([np.ones(20), second]), dtype=torch.float32
    )

    class Encoder(nn.Module):
        # One code unit, so that PCA keeps one component; the decoder below
        # ignores the code and shifts the input it remembers.
        def forward(self, inputs):
            self.inputs = inputs
            return inputs[:, :1]

    encoder = Encoder()

    class Decoder(nn.Module):
        def forward(self, code):
            return Shifted(offsets)(encoder.inputs)

    result = beats_pca(encoder, Decoder(), X, None, X_validation, None)
    check(result, second, offsets)
    # Sample weights weigh the training rows of that PCA: unweighted, the wide
    # spread along the first axis wins; weighted, the rows along the second do,
    # and PCA then loses the first feature (1 in every validation row).
    X = torch.tensor(
        np.vstack(
            [
                np.column_stack([3 * rng.randn(50), np.zeros(50)]),
                np.column_stack([np.zeros(50), rng.randn(50)]),
            ]
        ),
        dtype=torch.float32,
    )
    weights = torch.tensor(np.r_[np.full(50, 1e-3), np.ones(50)], dtype=torch.float32)
    _, weighted = beats_pca(encoder, Decoder(), X, weights, X_validation, None)
    _, unweighted = beats_pca(encoder, Decoder(), X, None, X_validation, None)
    rows, w = X.numpy().astype(float), weights.numpy().astype(float)
    mean_x = w @ rows[:, 0] / w.sum()
    mean_y = rows[:, 1].mean()
    # Centring tilts each axis by a little: hence 1e-3.
    assert weighted["pca_score"] == pytest.approx(-((1 - mean_x) ** 2) / 2, abs=1e-3)
    assert unweighted["pca_score"] == pytest.approx(
        -np.mean(np.square(second - mean_y)) / 2, abs=1e-3
    )
