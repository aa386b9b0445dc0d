"""Missing values (NaN): the masked loss, the PCA start and the completion of rows.

Torch only: this module never imports scikit-learn. A missing entry is a NaN in
a float tensor. Training fills the encoder's missing inputs with the column
means of the training rows (the "fill") and scores the reconstruction on the
observed entries alone, each row normalised by its number of observed entries;
inference fills, reconstructs and refills the missing entries for a few rounds
before encoding, so that a code uses what is observed. Data objects that are
not tensors (`skae._sparse.SparseRows`) bring their own PCA and are never
missing anything.
"""

import torch
from torch import nn
from torch.nn import functional

import skae._distributed as _distributed
from skae._modules import pca_basis, refined_axes

# Rounds of fill, PCA, refill for the PCA start of data with missing entries
# ("hard impute"), as in the EM algorithm for PCA with missing data.
PCA_ROUNDS = 10
# Fill, reconstruct, refill rounds before a row with missing entries is encoded.
# On digits with 20% missing (RMSE on the hidden entries, 0 / 1 / 3 / 10 rounds):
# 0.184 / 0.161 / 0.159 / 0.216 for a plain fit, 0.152 / 0.144 / 0.171 / 0.224
# for one trained with noise={"missing": 0.2}: one round, then the errors grow.
COMPLETION_ROUNDS = 1


def has_missing(X):
    """Whether the tensor X has a NaN; False for other data objects."""
    return isinstance(X, torch.Tensor) and bool(torch.isnan(X).any())


def column_fill(X, sample_weight=None):
    """Return each column's (weighted) mean over its observed entries.

    Columns without an observed entry (or whose observed rows all weigh 0) get 0.
    Data objects other than tensors provide ``column_means(sample_weight)``.
    """
    if not isinstance(X, torch.Tensor):
        return X.column_means(sample_weight)
    # Across ranks, every rank takes the summing path below: the sums are added
    # up over the ranks.
    if _distributed.current() is None and not has_missing(X):
        if sample_weight is None:
            return X.mean(dim=0)
        weights = (sample_weight / sample_weight.sum()).to(X)
        return weights @ X
    observed = ~torch.isnan(X)
    weights = observed.to(X.dtype)
    if sample_weight is not None:
        weights = weights * sample_weight.to(X)[:, None]
    values = torch.where(observed, X, 0.0)
    totals = weights.sum(dim=0, dtype=torch.float64)
    sums = (weights * values).sum(dim=0, dtype=torch.float64)
    if _distributed.current() is not None:
        totals, sums = _distributed.all_sum(torch.stack([totals, sums]))
    return torch.where(totals > 0, sums / totals.clamp(min=1e-300), 0.0).to(X.dtype)


def filled(X, fill):
    """Return X with its missing entries replaced by `fill` (a row of values)."""
    return torch.where(torch.isnan(X), fill, X)


def entry_losses(output, target, loss, logits=False):
    """Return the loss of every entry of `output` (or of its logits) against target."""
    if loss == "squared_error":
        return 0.5 * functional.mse_loss(output, target, reduction="none")
    if loss == "binary_crossentropy":
        if logits:
            return functional.binary_cross_entropy_with_logits(
                output, target, reduction="none"
            )
        return functional.binary_cross_entropy(output, target, reduction="none")
    raise ValueError(f"loss={loss!r} is not one of squared_error, binary_crossentropy.")


def masked_row_losses(encoder, decoder, X_input, X_target, fill, loss):
    """Return each row's mean loss over its observed entries, and the mask.

    Missing inputs are filled with `fill`; a missing target entry (NaN) adds
    nothing. A row without an observed entry has loss 0.
    """
    observed = ~torch.isnan(X_target)
    target = torch.where(observed, X_target, fill)
    code = encoder(filled(X_input, fill))
    logits = False
    if loss == "binary_crossentropy" and isinstance(decoder, nn.Sequential):
        if len(decoder) and isinstance(decoder[-1], nn.Sigmoid):
            decoder, logits = decoder[:-1], True
    entries = entry_losses(decoder(code), target, loss, logits) * observed
    counts = observed.sum(dim=1)
    return entries.sum(dim=1) / counts.clamp(min=1), observed


def masked_loss(encoder, decoder, X_input, X_target, fill, loss, sample_weight=None):
    """Mean over the rows of their observed-entry losses, weighted by sample_weight.

    With nothing missing it equals the loss of complete data
    (`skae._training.reconstruction_loss`).
    """
    rows, _ = masked_row_losses(encoder, decoder, X_input, X_target, fill, loss)
    if sample_weight is not None:
        rows = rows * sample_weight
    return rows.mean()


def masked_evaluation(encoder, decoder, batch, fill, loss):
    """Return (row losses, row mean squared errors) over the observed entries.

    Both in float64; rows without an observed entry get 0 for both.
    """
    observed = ~torch.isnan(batch)
    target = torch.where(observed, batch, fill)
    output = decoder(encoder(torch.where(observed, batch, fill)))
    counts = observed.sum(dim=1).clamp(min=1).double()
    squared = ((output - target).square() * observed).sum(dim=1, dtype=torch.float64)
    squared = squared / counts
    if loss == "squared_error":
        return 0.5 * squared, squared
    rows, _ = masked_row_losses(encoder, decoder, batch, batch, fill, loss)
    return rows.double(), squared


def complete(encoder, decoder, X, fill, n_rounds):
    """Return X with its missing entries estimated by the autoencoder.

    Fill the missing entries with `fill`, reconstruct, put the reconstruction
    into the missing entries only, and repeat `n_rounds` times: each round lets
    the observed entries pull the code further from the fill's.
    """
    missing = torch.isnan(X)
    if not bool(missing.any()):
        return X
    current = torch.where(missing, fill, X)
    for _ in range(n_rounds):
        current = torch.where(missing, decoder(encoder(current)), X)
    return current


class ObservedEncoder(nn.Module):
    """Encode rows that may have missing entries: `complete`, then encode."""

    def __init__(self, encoder, decoder, fill, n_rounds=None):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.register_buffer("fill", fill)
        self.n_rounds = COMPLETION_ROUNDS if n_rounds is None else n_rounds

    def forward(self, X):
        """Return the codes of the rows of X, completed first."""
        return self.encoder(
            complete(self.encoder, self.decoder, X, self.fill, self.n_rounds)
        )


class EveryRound(nn.Module):
    """Reconstruct rows after 0 to `max_rounds` completion rounds, in one pass.

    The output stacks, side by side, what `reconstructor` with 0, 1, ...,
    `max_rounds` rounds returns: each round reuses the one before it.
    """

    def __init__(self, encoder, decoder, fill, max_rounds):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.register_buffer("fill", fill)
        self.max_rounds = max_rounds

    def forward(self, X):
        """Return the reconstructions, (n_samples, n_features * (max_rounds + 1))."""
        missing = torch.isnan(X)
        current = torch.where(missing, self.fill, X)
        outputs = []
        for _ in range(self.max_rounds + 1):
            outputs.append(self.decoder(self.encoder(current)))
            current = torch.where(missing, outputs[-1], X)
        return torch.cat(outputs, dim=1)


def reconstructor(encoder, decoder, fill, n_rounds=None):
    """Return the module that reconstructs rows, completing their missing entries."""
    return nn.Sequential(ObservedEncoder(encoder, decoder, fill, n_rounds), decoder)


def low_rank_completion(
    X,
    n_components,
    sample_weight=None,
    fill=None,
    rounds=PCA_ROUNDS,
    precise=True,
    start=None,
):
    """Complete X by PCA of its rows: fill, then refine by low-rank refills.

    Starts from the column means (or `fill`) and the principal axes of X so
    filled; `start`, those ``(axes, mean)`` computed once (`pca_basis`, with at
    least `n_components` axes), lets several widths share one decomposition.
    Then, `rounds` times, replaces the missing entries by their reconstruction
    ("hard impute", the EM algorithm of PCA with missing data) and refines the
    axes to the refilled rows by a step of subspace iteration
    (`skae._modules.refined_axes`) rather than a new decomposition: the rows
    change little from one round to the next, and the rounds converge to the
    same completion. Returns (components, mean, completed X); the axes are
    those of the last completion.
    """
    missing = torch.isnan(X)
    if fill is None:
        fill = column_fill(X, sample_weight)
    current = torch.where(missing, fill, X)
    if start is None:
        components, mean = pca_basis(current, n_components, sample_weight, precise)
    else:
        components, mean = start[0][:n_components], start[1]
    if not _distributed.any_rank(bool(missing.any())):
        return components, mean, current
    for _ in range(rounds):
        centred = current - mean
        reconstruction = centred @ components.T @ components + mean
        current = torch.where(missing, reconstruction, X)
        components, mean = refined_axes(current, components, sample_weight, precise)
    return components, mean, current


def linear_completion(X, components, mean, n_rounds):
    """Return X with its missing entries estimated by the PCA basis (components, mean).

    `complete` with the linear encoder and decoder of that basis: fill with the
    mean, project, refill, `n_rounds` times; many rounds approach each row's
    least-squares fit of its observed entries within the basis.
    """
    return complete(
        lambda rows: (rows - mean) @ components.T,
        lambda codes: codes @ components + mean,
        X,
        mean,
        n_rounds,
    )


def pca_with_missing(X, n_components, sample_weight=None, fill=None):
    """PCA of rows with missing entries (`low_rank_completion`): (components, mean)."""
    components, mean, _ = low_rank_completion(X, n_components, sample_weight, fill)
    return components, mean


def principal_axes(X, n_components, sample_weight=None):
    """PCA of any training data: complete tensors, tensors with NaN, or others.

    Data objects that are not tensors provide ``principal_axes(n_components,
    sample_weight)`` (the sparse rows compute it without densifying).
    """
    if not isinstance(X, torch.Tensor):
        return X.principal_axes(n_components, sample_weight)
    # Across ranks, every rank takes the path of missing entries if one has
    # them: the sums it adds up must be the others'.
    if _distributed.any_rank(has_missing(X)):
        return pca_with_missing(X, n_components, sample_weight)
    return pca_basis(X, n_components, sample_weight)
