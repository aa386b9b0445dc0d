"""RowSource: one interface for dense, memmapped, sparse and holed rows."""

import numpy as np
import pytest
import scipy.sparse
import torch
from numpy.testing import assert_array_equal

from skae._rows import RowSource, ZeroWeightSplit, held_out_indices, new_split

X = np.random.RandomState(0).rand(50, 6).astype(np.float32)


def test_the_split_holds_out_the_rows_its_seed_names_and_trains_on_the_rest():
    split = new_split(50, 5, torch.Generator().manual_seed(0))
    parts = RowSource(X).split(5, split, "cpu")
    held = held_out_indices(split).numpy()
    assert len(held) == 5 and len(set(held)) == 5
    assert_array_equal(parts.X_validation.numpy(), X[held])
    kept = np.setdiff1d(np.arange(50), held)
    assert sorted(map(tuple, parts.X.numpy())) == sorted(map(tuple, X[kept]))


def test_a_split_that_leaves_a_side_without_weight_is_refused():
    split = new_split(50, 5, torch.Generator().manual_seed(0))
    weight = torch.zeros(50)
    weight[held_out_indices(split)] = 1.0
    with pytest.raises(ZeroWeightSplit, match="training row"):
        RowSource(X, weight).split(5, split, "cpu")


@pytest.mark.parametrize("kind", ["memmap", "sparse", "float64"])
def test_the_digest_is_of_the_values_not_of_the_container(tmp_path, kind):
    if kind == "memmap":
        other = np.lib.format.open_memmap(
            tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=X.shape
        )
        other[:] = X
    elif kind == "sparse":
        other = scipy.sparse.csr_matrix(X)
    else:
        other = X.astype(np.float64)
    dense = RowSource(X).digest()
    if kind == "sparse":
        # Sparse rows are digested as CSR: equal to themselves, not to dense.
        assert RowSource(other).digest() == RowSource(other.copy()).digest()
        assert RowSource(other).digest() != dense
    else:
        assert RowSource(other).digest() == dense


def test_the_digest_changes_with_one_value_or_one_weight():
    changed = X.copy()
    changed[3, 4] += 1e-3
    assert RowSource(changed).digest() != RowSource(X).digest()
    weight = torch.ones(50)
    other = weight.clone()
    other[7] = 2.0
    assert RowSource(X, weight).digest() != RowSource(X, other).digest()


def test_rows_are_converted_once_per_device():
    rows = RowSource(X.astype(np.float64))
    assert rows.on("cpu") is rows.on("cpu")
    assert rows.on("cpu").dtype == torch.float32


def test_the_fill_is_the_mean_of_the_observed_entries():
    holed = X.copy()
    holed[0, 0] = np.nan
    fill = RowSource(holed, missing=True).column_fill("cpu").numpy()
    assert fill[0] == pytest.approx(np.nanmean(holed[:, 0]), rel=1e-6)
    assert fill[1] == pytest.approx(X[:, 1].mean(), rel=1e-6)
