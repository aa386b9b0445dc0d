"""The rows a fit trains on, whatever their kind: one interface for the trainer.

`RowSource` wraps validated rows (a NumPy array, a memory map or a
scipy.sparse matrix, possibly with missing entries) and their sample weights.
It converts them once for the training device, holds out the early-stopping
rows (`split_indices` is the one rule of the split), and digests them, so that
`resume` can tell whether it was given the same data. Never imports
scikit-learn.
"""

import hashlib
from typing import NamedTuple

import numpy as np
import torch

from skae._missing import column_fill
from skae._sparse import is_sparse, rows_for_training, take_rows, update_digest


def split_indices(n_samples, validation_size, generator):
    """Return (training rows, held-out rows) of the early-stopping split.

    The one rule of the split: the first `validation_size` of a permutation
    drawn from `generator` are held out.
    """
    order = torch.randperm(n_samples, generator=generator)
    return order[validation_size:], order[:validation_size]


def held_out_indices(split):
    """Return the rows a fit's split (a ``History.split`` dict) held out."""
    generator = torch.Generator().manual_seed(split["seed"])
    return split_indices(split["n_samples"], split["validation_size"], generator)[1]


def new_split(n_samples, validation_size, generator):
    """Return a new early-stopping split (a seed drawn from `generator`), or None."""
    if not validation_size:
        return None
    seed = int(torch.randint(2**62, (1,), generator=generator))
    return {"n_samples": n_samples, "validation_size": validation_size, "seed": seed}


def same_split(split, n_samples, validation_size):
    """Whether `split` holds out `validation_size` of `n_samples` rows."""
    return split is not None and (
        split["n_samples"],
        split["validation_size"],
    ) == (n_samples, validation_size)


class Parts(NamedTuple):
    """Training and validation rows (and their weights) on the training device."""

    X: torch.Tensor
    weight: torch.Tensor | None
    X_validation: torch.Tensor | None
    validation_weight: torch.Tensor | None


class ZeroWeightSplit(ValueError):
    """One side of the early-stopping split has only zero sample weights."""


class RowSource:
    """Validated training rows and their weights, as the trainer reads them.

    Parameters
    ----------
    X : ndarray, memmap or scipy.sparse matrix of shape (n_samples, n_features)
        Validated rows; dense rows may have missing entries (NaN).
    weight : torch.Tensor of shape (n_samples,), default=None
        Sample weights (float32), None for equal weights.
    missing : bool, default=False
        Whether X has missing entries.
    """

    def __init__(self, X, weight=None, missing=False):
        self.X = X
        self.weight = weight
        self.missing = missing
        self._tensors = {}

    @property
    def n_samples(self):
        """Number of rows."""
        return self.X.shape[0]

    @property
    def n_features(self):
        """Width of a row."""
        return self.X.shape[1]

    @property
    def sparse(self):
        """Whether the rows are a scipy.sparse matrix."""
        return is_sparse(self.X)

    def weights(self):
        """Return the sample weights as a float64 NumPy array, or None."""
        return None if self.weight is None else self.weight.numpy().astype(np.float64)

    def on(self, device):
        """Return every row for training on `device`: a tensor or `SparseRows`.

        Converted once per device: the split, the PCA start and the fill all
        read the same float32 copy.
        """
        key = str(torch.device(device))
        if key not in self._tensors:
            self._tensors[key] = rows_for_training(self.X, device)
        return self._tensors[key]

    def weight_on(self, device):
        """Return the sample weights on `device`, or None."""
        return None if self.weight is None else self.weight.to(device)

    def column_fill(self, device):
        """Return the (weighted) mean of each column over its observed entries."""
        return column_fill(self.on(device), self.weight_on(device))

    def digest(self):
        """Return a SHA-256 of the rows and weights, as the fit sees them."""
        digest = hashlib.sha256()
        update_digest(digest, self.X)
        if self.weight is not None:
            digest.update(self.weight.numpy().tobytes())
        return digest.hexdigest()

    def split(self, validation_size, split, device):
        """Hold out the validation rows of `split` (a split dict or a generator).

        Returns `Parts`. Raises `ZeroWeightSplit`, before anything is trained,
        when the weights of either side are all zero.
        """
        X = self.on(device)
        weight = self.weight
        if not validation_size:
            return Parts(X, weight, None, None)
        generator = split
        if isinstance(split, dict):
            generator = torch.Generator().manual_seed(split["seed"])
        keep, held_out = split_indices(self.n_samples, validation_size, generator)
        validation_weight = None
        if weight is not None:
            weight, validation_weight = weight[keep], weight[held_out]
            for side, values in (
                ("training", weight),
                ("validation", validation_weight),
            ):
                if not bool((values > 0).any()):
                    raise ZeroWeightSplit(
                        f"Every {side} row of the early-stopping split has "
                        "sample_weight 0: give more rows a weight, or set "
                        "early_stopping=False."
                    )
            validation_weight = validation_weight.to(X.device)
        keep, held_out = keep.to(X.device), held_out.to(X.device)
        return Parts(
            take_rows(X, keep), weight, take_rows(X, held_out), validation_weight
        )
