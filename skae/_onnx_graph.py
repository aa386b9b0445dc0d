"""ONNX operators for skae's torch modules, written from their fitted weights.

Knows the layers `skae._modules` builds and the ONNX operators that compute
them in float32; knows neither scikit-learn nor skl2onnx. The caller supplies
a ``graph`` with two methods, so that the same walk serves any ONNX builder:

- ``graph.constant(array) -> name`` adds a float32 initializer;
- ``graph.node(op_type, inputs, **attributes) -> name`` adds a node with one
  output and returns that output's name.
"""

import math

import numpy as np
from torch import nn

from skae._modules import LinearResidual

_ELEMENTWISE = {nn.Sigmoid: "Sigmoid", nn.Tanh: "Tanh", nn.ReLU: "Relu"}


def add_module(graph, module, x):
    """Add the operators computing ``module(x)`` to `graph`; return the output name.

    Parameters
    ----------
    graph : object
        Has ``constant(array)`` and ``node(op_type, inputs, **attributes)``.
    module : torch.nn.Module
        A module built by `skae._modules.build_autoencoder`.
    x : str
        Name of the float32 input, of shape (n_samples, in_features).

    Returns
    -------
    y : str
        Name of the float32 output.
    """
    if isinstance(module, nn.Sequential):
        for layer in module:
            x = add_module(graph, layer, x)
        return x
    if isinstance(module, nn.Linear):
        # Gemm computes x @ weight.T + bias for any number of rows.
        weight = graph.constant(_to_numpy(module.weight))
        bias = graph.constant(_to_numpy(module.bias))
        return graph.node("Gemm", [x, weight, bias], transB=1)
    if isinstance(module, LinearResidual):
        linear = add_module(graph, module.linear, x)
        correction = add_module(graph, module.correction, x)
        return graph.node("Add", [linear, correction])
    if isinstance(module, nn.Identity):
        return x
    if type(module) in _ELEMENTWISE:
        return graph.node(_ELEMENTWISE[type(module)], [x])
    if isinstance(module, nn.GELU) and module.approximate == "none":
        # torch's exact GELU, 0.5 * x * (1 + erf(x / sqrt(2))); opset 20's Gelu
        # would shut out older runtimes. Written with Div, onnxruntime fuses the
        # five operators into one kernel (not with a Mul by 1 / sqrt(2)).
        scaled = graph.node("Div", [x, graph.constant(np.float32(math.sqrt(2)))])
        one_plus = graph.node(
            "Add", [graph.node("Erf", [scaled]), graph.constant(np.float32(1))]
        )
        half = graph.node("Mul", [x, graph.constant(np.float32(0.5))])
        return graph.node("Mul", [half, one_plus])
    raise NotImplementedError(
        f"{module!r} has no ONNX conversion: skae converts nn.Linear, "
        "LinearResidual, nn.Sequential and the activations "
        "identity, logistic, tanh, relu and gelu (exact, not approximate='tanh')."
    )


def widths(module):
    """Return (in_features, out_features) of a module built by skae."""
    if isinstance(module, LinearResidual):
        module = module.linear
    linears = [layer for layer in module.modules() if isinstance(layer, nn.Linear)]
    return linears[0].in_features, linears[-1].out_features


def _to_numpy(parameter):
    """Copy a parameter, on any device, to a float32 numpy array."""
    return parameter.detach().cpu().numpy().astype(np.float32)
