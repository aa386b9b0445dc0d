"""Torch building blocks of the autoencoder: layers, activations, initialisation.

This module never imports scikit-learn: it can be used and tested with tensors alone.
"""

import itertools
import math

import torch
from torch import nn

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


def build_autoencoder(
    n_features,
    hidden_layer_sizes,
    n_components,
    *,
    activation="relu",
    latent_activation="identity",
    output_activation="identity",
    generator=None,
):
    """Build an encoder and its mirrored decoder.

    Returns
    -------
    encoder : torch.nn.Sequential
        ``n_features -> hidden_layer_sizes... -> n_components``.
    decoder : torch.nn.Sequential
        ``n_components -> reversed(hidden_layer_sizes)... -> n_features``.
    """
    sizes = [n_features, *hidden_layer_sizes, n_components]
    encoder = build_mlp(sizes, activation, latent_activation, generator)
    decoder = build_mlp(sizes[::-1], activation, output_activation, generator)
    return encoder, decoder


def split_last_activation(module):
    """Split a Sequential into (body, last activation or None).

    Losses such as binary cross-entropy are computed more stably from the
    pre-activation output (the logits) than from the sigmoid's result.
    """
    if len(module) and not isinstance(module[-1], nn.Linear):
        return module[:-1], module[-1]
    return module, None
