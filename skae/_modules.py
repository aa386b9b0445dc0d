"""Torch building blocks of the autoencoder: layers, activations, initialisation.

This module never imports scikit-learn: it can be used and tested with tensors alone.
"""

import itertools
import math

import torch
from torch import nn

import skae._distributed as _distributed

ACTIVATIONS = {
    "identity": nn.Identity,
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "gelu": nn.GELU,
}


def build_mlp(layer_sizes, activation, last_activation, generator=None):
    """Build a stack of linear layers with `activation` between them.

    Parameters
    ----------
    layer_sizes : sequence of int
        Widths from the input to the output, e.g. ``(784, 256, 128, 100)``.
    activation : str
        Name from ``ACTIVATIONS`` applied after every hidden layer.
    last_activation : str
        Name from ``ACTIVATIONS`` applied after the last layer.
    generator : torch.Generator, default=None
        Source of the initial weights; ``None`` uses torch's global generator.

    Returns
    -------
    module : torch.nn.Sequential
        ``Linear, activation, Linear, ..., Linear, last_activation``; identity
        activations are left out.
    """
    layers = []
    n_layers = len(layer_sizes) - 1
    for index, (n_in, n_out) in enumerate(itertools.pairwise(layer_sizes)):
        # skip_init builds the layer without nn.Linear's own draw from the global
        # generator; reset_linear then draws the same distribution privately.
        linear = nn.utils.skip_init(nn.Linear, n_in, n_out)
        reset_linear(linear, generator)
        layers.append(linear)
        name = last_activation if index == n_layers - 1 else activation
        if name != "identity":
            layers.append(ACTIVATIONS[name]())
    return nn.Sequential(*layers)


def reset_linear(linear, generator=None):
    """Draw torch's default `nn.Linear` initialisation from `generator`.

    ``nn.Linear.reset_parameters`` draws weight and bias from
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the global generator; drawing the same
    distribution, in the same order, from a private generator keeps the user's
    global RNG state untouched.
    """
    bound = 1.0 / math.sqrt(linear.in_features) if linear.in_features else 0.0
    with torch.no_grad():
        linear.weight.uniform_(-bound, bound, generator=generator)
        linear.bias.uniform_(-bound, bound, generator=generator)


class LinearResidual(nn.Module):
    """A linear path plus a nonlinear correction: ``linear(x) + correction(x)``.

    Built by `build_autoencoder` from PCA, with the correction's last layer at
    zero, so that the model starts exactly as PCA and training only has to learn
    what PCA misses.
    """

    def __init__(self, linear, correction):
        super().__init__()
        self.linear = linear
        self.correction = correction

    def forward(self, x):
        """Return ``linear(x) + correction(x)``."""
        return self.linear(x) + self.correction(x)


def build_autoencoder(
    n_features,
    hidden_layer_sizes,
    n_components,
    *,
    activation="relu",
    latent_activation="identity",
    output_activation="identity",
    generator=None,
    pca=None,
):
    """Build an encoder and its mirrored decoder.

    Parameters
    ----------
    n_features, n_components : int
        Widths of the input and of the code.
    hidden_layer_sizes : tuple of int
        Encoder's hidden widths, input side first; the decoder mirrors them.
    activation, latent_activation, output_activation : str
        Names from ``ACTIVATIONS``: after hidden layers, the code, the output.
    generator : torch.Generator, default=None
        Source of the random initial weights.
    pca : tuple of (components, mean), default=None
        ``components`` of shape (n_pca, n_features) with orthonormal rows,
        n_pca <= n_components, and ``mean`` of shape (n_features,). When given,
        each module is a `LinearResidual`: the encoder's linear path projects on
        the components (units beyond n_pca start random), the decoder's maps
        back and adds the mean, and the nonlinear corrections start at zero, so
        the untrained model reconstructs exactly as PCA does. Needs identity
        latent and output activations.

    Returns
    -------
    encoder : torch.nn.Module
        ``n_features -> hidden_layer_sizes... -> n_components``.
    decoder : torch.nn.Module
        ``n_components -> reversed(hidden_layer_sizes)... -> n_features``.
    """
    sizes = [n_features, *hidden_layer_sizes, n_components]
    if pca is None:
        encoder = build_mlp(sizes, activation, latent_activation, generator)
        decoder = build_mlp(sizes[::-1], activation, output_activation, generator)
        return encoder, decoder
    if latent_activation != "identity" or output_activation != "identity":
        raise ValueError(
            "A PCA start needs identity latent and output activations, got "
            f"latent_activation={latent_activation!r} and "
            f"output_activation={output_activation!r}."
        )
    encode = build_mlp([n_features, n_components], "identity", "identity", generator)
    decode = build_mlp([n_components, n_features], "identity", "identity", generator)
    set_pca_paths(encode[0], decode[0], *pca)
    if not hidden_layer_sizes:
        return encode, decode
    corrections = []
    for layer_sizes in (sizes, sizes[::-1]):
        correction = build_mlp(layer_sizes, activation, "identity", generator)
        with torch.no_grad():
            correction[-1].weight.zero_()
            correction[-1].bias.zero_()
        corrections.append(correction)
    return LinearResidual(encode, corrections[0]), LinearResidual(
        decode, corrections[1]
    )


def set_pca_paths(encode, decode, components, mean):
    """Make the linear layers `encode` and `decode` project on PCA and back.

    The first ``len(components)`` code units become the principal components
    (others keep their weights but are not decoded), so that
    ``decode(encode(x))`` is PCA's reconstruction of x.
    """
    n_pca = components.shape[0]
    with torch.no_grad():
        encode.weight[:n_pca] = components.to(encode.weight)
        encode.bias.copy_(-(encode.weight @ mean.to(encode.weight)))
        decode.weight.copy_(encode.weight.T)
        decode.weight[:, n_pca:] = 0
        decode.bias.copy_(mean)


def pca_linear_paths(encoder, decoder):
    """Return the linear layers of a PCA-started encoder and decoder."""
    if isinstance(encoder, LinearResidual):
        return encoder.linear[0], decoder.linear[0]
    return encoder[0], decoder[0]


def pca_basis(X, n_components, sample_weight=None, precise=True):
    """Return the top principal axes and the mean of the rows of X.

    Parameters
    ----------
    X : torch.Tensor of shape (n_samples, n_features)
        Data, on any device.
    n_components : int
        Number of axes wanted; at most min(n_samples, n_features) are returned.
    sample_weight : torch.Tensor of shape (n_samples,), default=None
        Weight of each row in the mean and the covariance.
    precise : bool, default=True
        Decompose in float64; False decomposes in X's dtype, about twice as
        fast in float32 (enough where the axes only compare widths).

    Returns
    -------
    components : torch.Tensor of shape (n_pca, n_features)
        Orthonormal rows, by decreasing variance, each with its largest entry
        positive (scikit-learn's sign convention).
    mean : torch.Tensor of shape (n_features,)
    """
    if _distributed.current() is not None:
        return _shared_pca_basis(X, n_components, sample_weight, precise)
    n_samples, n_features = X.shape
    n_pca = min(n_components, n_samples, n_features)
    mean, scaled, _ = _centred(X, sample_weight)
    if n_samples >= n_features:
        # The covariance is small (n_features squared); its eigenvectors are the
        # axes. float64 for the decomposition, float32 for the big product.
        covariance = scaled.T @ scaled
        _, vectors = torch.linalg.eigh(covariance.double() if precise else covariance)
        components = vectors.flip(-1).T[:n_pca]
    else:
        scaled = scaled.double() if precise else scaled
        _, _, vectors = torch.linalg.svd(scaled, full_matrices=False)
        components = vectors[:n_pca]
    return signed_axes(components).to(X.dtype), mean


def refined_axes(X, components, sample_weight=None, precise=True):
    """Return `components` refined toward the top axes of the rows of X, and their mean.

    One step of subspace iteration: the rows' covariance times the axes, an
    orthonormal basis of that product, and the k x k eigenproblem that orders
    the basis by variance (Rayleigh-Ritz). It costs products with k columns
    where `pca_basis` decomposes the whole covariance; from the axes of rows
    close to X's (the last round of a completion) one step lands close to X's
    own. Across ranks, the mean and both products are summed over every rank's
    rows. `precise` orthonormalises and decomposes in float64.
    """
    shared = _distributed.current() is not None
    mean, scaled, _ = _centred(X, sample_weight)
    product = scaled.T @ (scaled @ components.T)
    if shared:
        product = _distributed.all_sum(product)
    dtype = torch.float64 if precise else X.dtype
    basis, _ = torch.linalg.qr(product.to(dtype))
    projected = (scaled @ basis.to(X.dtype)).to(dtype)
    gram = projected.T @ projected
    if shared:
        gram = _distributed.all_sum(gram)
    _, vectors = torch.linalg.eigh(gram)
    components = signed_axes((basis @ vectors.flip(-1)).T)
    return components.to(X.dtype), mean


def _centred(X, sample_weight):
    """Return (mean, scaled rows, number of rows) of the rows of X.

    The rows are centred on their (weighted) mean and scaled by the square
    root of their weight's share: their Gram matrix is the covariance, up to
    scale. Across ranks, the counts, weights and weighted sums of every rank's
    rows make the mean, the shares and the number.
    """
    if _distributed.current() is None:
        if sample_weight is None:
            mean = X.mean(dim=0)
            return mean, X - mean, X.shape[0]
        weights = (sample_weight / sample_weight.sum()).to(X.dtype)[:, None]
        mean = (weights * X).sum(dim=0)
        return mean, (X - mean) * weights.sqrt(), X.shape[0]
    n_samples = X.shape[0]
    if sample_weight is None:
        weights = torch.ones(n_samples, dtype=torch.float64, device=X.device)
    else:
        weights = sample_weight.to(X.device, torch.float64)
    first = _distributed.all_sum(
        torch.cat(
            [
                torch.tensor([n_samples], dtype=torch.float64, device=X.device),
                weights.sum()[None],
                weights @ X.double(),
            ]
        )
    )
    total_rows, total_weight, sums = int(first[0]), first[1], first[2:]
    mean = (sums / total_weight).to(X.dtype)
    scaled = (X - mean) * (weights / total_weight).sqrt().to(X.dtype)[:, None]
    return mean, scaled, total_rows


def signed_axes(components):
    """Return the axes (rows), each with its largest entry positive (sklearn signs)."""
    largest = components.abs().argmax(dim=1, keepdim=True)
    return components * torch.sign(components.gather(1, largest))


def _shared_pca_basis(X, n_components, sample_weight, precise):
    """`pca_basis` of the rows of every rank (across ranks).

    The ranks add up their row counts, weights and weighted sums, then their
    covariances about the common mean: every rank decomposes the same matrix.
    """
    n_features = X.shape[1]
    mean, scaled, total_rows = _centred(X, sample_weight)
    covariance = _distributed.all_sum((scaled.T @ scaled).double())
    _, vectors = torch.linalg.eigh(covariance if precise else covariance.float())
    n_pca = min(n_components, total_rows, n_features)
    components = vectors.flip(-1).T[:n_pca]
    return signed_axes(components).to(X.dtype), mean


def split_last_activation(module):
    """Split a Sequential into (body, last activation or None).

    Losses such as binary cross-entropy are computed more stably from the
    pre-activation output (the logits) than from the sigmoid's result.
    """
    if len(module) and not isinstance(module[-1], nn.Linear):
        return module[:-1], module[-1]
    return module, None
