"""Export fitted autoencoders to ONNX, alone or inside scikit-learn pipelines.

Importing this module registers a converter for `MLPAutoencoder` with skl2onnx,
so that ``skl2onnx.to_onnx(pipeline, X[:1])`` converts any fitted pipeline that
contains one (its step computes ``transform``: data to codes). `to_onnx` exports
one estimator's encoder, decoder or both, and can write the file atomically.
Both need the ``onnx`` extra: ``pip install "skae[onnx]"``.

The graph is written operator by operator from the fitted weights (Gemm for
each linear layer, Sigmoid, Tanh, Relu, GELU in its exact erf form, Add for the
linear path and residual MLP of a model started from PCA), rather than exported
with ``torch.onnx`` and spliced in. skae's modules use a handful of layer
types, so the writer is short and every operator is known in advance;
``torch.onnx.export`` would add a second exporter (the dynamo one needs
onnxscript), trace the modules, and produce a separate graph whose opset, input
names and dtypes would then have to be reconciled with skl2onnx's. Writing the operators
ourselves also lets float64 inputs be cast to float32 and back exactly where
``transform`` does it.

The ONNX graph computes what the estimator computes, but does not validate its
input: where ``transform`` refuses NaN, infinity or float64 values beyond the
float32 range, the graph returns NaN or infinity.
"""

import os
from numbers import Integral
from pathlib import Path

import numpy as np
import scipy.sparse
from sklearn.utils.validation import check_is_fitted

from skae._autoencoder import MLPAutoencoder
from skae._imputer import AutoencoderImputer
from skae._onnx_graph import add_module, widths
from skae._persistence import _atomic_write
from skae._version import __version__

try:
    import onnx
    import skl2onnx
    from onnx import numpy_helper
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType
except ImportError as error:
    raise ImportError(
        f"skae.onnx needs onnx and skl2onnx ({error}): install them with "
        'pip install "skae[onnx]".'
    ) from error

#: What an exported graph computes: the estimator method each part stands for.
_PARTS = {
    "encoder": "transform",
    "decoder": "inverse_transform",
    "autoencoder": "reconstruct",
}
_ALIAS = "SkaeMLPAutoencoder"
# The oldest opset with every operator a graph may use: Erf, for GELU.
MIN_OPSET = 9
_TENSOR_TYPES = {
    np.dtype(np.float32): FloatTensorType,
    np.dtype(np.float64): DoubleTensorType,
}


def to_onnx(estimator, X_sample=None, *, part="encoder", path=None, target_opset=None):
    """Export a fitted MLPAutoencoder's encoder, decoder or both as an ONNX model.

    The model has one input, ``X``, of shape (n_samples, n_inputs) with any
    number of rows, and one output, ``X_transformed`` for the encoder and
    ``X_reconstructed`` otherwise, in the input's dtype. It computes in float32,
    as the estimator does. For a pipeline containing the estimator, call
    ``skl2onnx.to_onnx(pipeline, X[:1])`` after importing this module.

    Parameters
    ----------
    estimator : MLPAutoencoder
        A fitted autoencoder.

    X_sample : array-like of shape (n_samples, n_inputs), default=None
        Rows like those the model will be given: only their dtype (float32 or
        float64) and width are used. None means float32.

    part : {"encoder", "decoder", "autoencoder"}, default="encoder"
        What the graph computes: "encoder" is ``transform`` (data to codes),
        "decoder" is ``inverse_transform`` (codes to data) and "autoencoder" is
        ``reconstruct`` (data to its reconstruction).

    path : str or os.PathLike, default=None
        Where to write the model; an existing file is replaced atomically (a
        temporary file beside it, then a rename), as `MLPAutoencoder.save` does.
        None writes nothing.

    target_opset : int, default=None
        ONNX opset of the model; None lets skl2onnx choose its latest. The
        graph needs opset 9 or later.

    Returns
    -------
    model : onnx.ModelProto
        The model, to serve with e.g. ``onnxruntime.InferenceSession(
        model.SerializeToString())``. The graph takes complete rows: where
        `MLPAutoencoder.transform` completes a row with missing entries (NaN)
        before encoding it, the graph returns NaN for it. Impute first (e.g.
        with `skae.AutoencoderImputer`) to serve such rows.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ValueError
        If `part` is unknown or `X_sample` has the wrong width.
    TypeError
        If `estimator` is not an MLPAutoencoder, or `X_sample` is sparse or not
        floating point.

    See Also
    --------
    skl2onnx.to_onnx : Converts whole pipelines, with this module imported.
    MLPAutoencoder.save : skae's own file format, to continue training.

    Examples
    --------
    >>> import numpy as np, onnxruntime, skae
    >>> from skae.onnx import to_onnx
    >>> X = np.random.RandomState(0).rand(50, 6).astype(np.float32)
    >>> ae = skae.MLPAutoencoder(2, hidden_layer_sizes=(4,), max_iter=2, random_state=0)
    >>> ae = ae.fit(X)
    >>> session = onnxruntime.InferenceSession(to_onnx(ae).SerializeToString())
    >>> codes = session.run(None, {"X": X})[0]
    >>> bool(np.allclose(codes, ae.transform(X), atol=1e-5))
    True
    """
    if part not in _PARTS:
        raise ValueError(f"part={part!r} is not one of {sorted(_PARTS)}.")
    if not isinstance(estimator, MLPAutoencoder):
        raise TypeError(
            f"estimator is a {type(estimator).__name__}, not an MLPAutoencoder; "
            "for a pipeline, import skae.onnx and call skl2onnx.to_onnx(pipeline, "
            "X[:1])."
        )
    check_is_fitted(estimator)
    _check_expressible(estimator)
    _check_opset(target_opset)
    n_inputs = _part_widths(estimator, part)[0]
    dtype = np.dtype(np.float32)
    if X_sample is not None:
        dtype = _check_sample(X_sample, n_inputs, part)
    tensor_type = _TENSOR_TYPES[dtype]
    output = "X_transformed" if part == "encoder" else "X_reconstructed"
    model = skl2onnx.to_onnx(
        estimator,
        initial_types=[("X", tensor_type([None, n_inputs]))],
        # A type here would make skl2onnx end the graph with a Cast to it.
        final_types=[(output, None)],
        options={id(estimator): {"part": part}},
        target_opset=target_opset,
    )
    onnx.helper.set_model_props(
        model, {"skae_version": __version__, "part": part, "method": _PARTS[part]}
    )
    if path is not None:
        _atomic_write(Path(os.fspath(path)), model.SerializeToString())
    return model


def _check_opset(target_opset):
    """Refuse an opset older than the operators skae's graphs use."""
    if target_opset is not None and (
        isinstance(target_opset, bool) or not isinstance(target_opset, Integral)
    ):
        raise TypeError(
            f"target_opset={target_opset!r} should be an int (an ONNX opset, "
            f"{MIN_OPSET} or later) or None."
        )
    if target_opset is not None and target_opset < MIN_OPSET:
        raise ValueError(
            f"target_opset={target_opset} is older than skae's graphs need: they "
            f"use Erf (for GELU), which ONNX has from opset {MIN_OPSET}. "
            f"Use target_opset={MIN_OPSET} or later, or None for skl2onnx's latest."
        )


def _check_sample(X_sample, n_inputs, part):
    """Return X_sample's dtype once its type and width fit the exported part."""
    if scipy.sparse.issparse(X_sample):
        raise TypeError(
            "X_sample is a sparse matrix, but the ONNX model takes dense float32 or "
            "float64 arrays, as MLPAutoencoder does: pass X_sample.toarray()."
        )
    X_sample = np.asarray(X_sample)
    if X_sample.dtype not in _TENSOR_TYPES:
        raise TypeError(
            f"X_sample has dtype {X_sample.dtype}, but the ONNX model takes float32 "
            "or float64: pass X_sample.astype(np.float32)."
        )
    if X_sample.ndim != 2 or X_sample.shape[1] != n_inputs:
        raise ValueError(
            f"X_sample has shape {X_sample.shape}, but part={part!r} takes rows of "
            f"{n_inputs} values."
        )
    return X_sample.dtype


def _part_widths(estimator, part):
    """Return (n_inputs, n_outputs) of a part, read from the fitted modules."""
    n_features, n_components = widths(estimator.encoder_)
    return {
        "encoder": (n_features, n_components),
        "decoder": (n_components, n_features),
        "autoencoder": (n_features, n_features),
    }[part]


def _check_expressible(estimator):
    """Refuse models whose transform does what the graph cannot express.

    MLPAutoencoder's completion of rows with missing entries is left out of the
    graph, which returns NaN for such rows (see `to_onnx`); other models that
    accept NaN are refused.
    """
    accepts_nan = estimator.__sklearn_tags__().input_tags.allow_nan
    if accepts_nan and type(estimator).transform is not MLPAutoencoder.transform:
        raise NotImplementedError(
            f"{type(estimator).__name__} accepts missing values (NaN) in its input, "
            "which skae's ONNX converter cannot express: its graph would return NaN "
            "codes. Impute missing values in a pipeline step before it instead."
        )


def _part_option(operator):
    """Return the converter's ``part`` option for this operator."""
    try:
        options = operator.scope_inst.get_options(
            operator.raw_operator, {"part": "encoder"}
        )
    except NameError as error:
        # skl2onnx reports an unknown option name as a NameError.
        raise ValueError(
            f"{error} The option part takes one of {list(_PARTS)}."
        ) from None
    return options["part"]


def _calculate_shape(operator):
    """skl2onnx shape calculator: the output's type and shape from the input's."""
    estimator = operator.raw_operator
    check_is_fitted(estimator)
    _check_expressible(estimator)
    part = _part_option(operator)
    # A DataFrame arrives as one input per column: the graph concatenates them.
    tensor_types = {type(X.type) for X in operator.inputs}
    tensor_type = tensor_types.pop()
    if tensor_types or tensor_type not in (FloatTensorType, DoubleTensorType):
        got = sorted({type(X.type).__name__ for X in operator.inputs})
        raise TypeError(
            f"{type(estimator).__name__}'s ONNX converter takes dense float32 or "
            f"float64 tensors of one dtype, got {', '.join(got)}: cast the data to "
            "float32 first."
        )
    n_inputs, n_outputs = _part_widths(estimator, part)
    columns = [X.get_second_dimension() for X in operator.inputs]
    if None not in columns and sum(columns) != n_inputs:
        raise ValueError(
            f"The input has {sum(columns)} columns, but the fitted "
            f"{type(estimator).__name__}'s {part} (part={part!r}) takes {n_inputs}."
        )
    n_samples = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = tensor_type([n_samples, n_outputs])


def _convert(scope, operator, container):
    """skl2onnx converter: write the part's operators from the fitted weights."""
    estimator = operator.raw_operator
    _check_opset(container.target_opset)
    part = _part_option(operator)
    modules = {
        "encoder": [estimator.encoder_],
        "decoder": [estimator.decoder_],
        "autoencoder": [estimator.encoder_, estimator.decoder_],
    }[part]
    graph = _Skl2OnnxGraph(scope, container)
    x = operator.inputs[0].full_name
    if len(operator.inputs) > 1:
        x = graph.node("Concat", [X.full_name for X in operator.inputs], axis=1)
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    if double:
        # transform computes float64 input in float32 and returns float64.
        x = graph.node("Cast", [x], to=onnx.TensorProto.FLOAT)
    for module in modules:
        x = add_module(graph, module, x)
    output = operator.outputs[0].full_name
    if double:
        container.add_node(
            "Cast",
            [x],
            [output],
            name=scope.get_unique_operator_name("Cast"),
            to=onnx.TensorProto.DOUBLE,
        )
    else:
        container.add_node(
            "Identity", [x], [output], name=scope.get_unique_operator_name("Identity")
        )


class _Skl2OnnxGraph:
    """The ``graph`` that `skae._onnx_graph.add_module` writes into, on skl2onnx."""

    def __init__(self, scope, container):
        self._scope = scope
        self._container = container

    def constant(self, array):
        """Add a float32 initializer; return its name."""
        name = self._scope.get_unique_variable_name("skae_constant")
        tensor = numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)
        self._container.add_initializer(name, tensor.data_type, None, tensor)
        return name

    def node(self, op_type, inputs, **attributes):
        """Add a node with one output; return the output's name."""
        output = self._scope.get_unique_variable_name(f"skae_{op_type.lower()}")
        self._container.add_node(
            op_type,
            inputs,
            [output],
            name=self._scope.get_unique_operator_name(f"Skae{op_type}"),
            **attributes,
        )
        return output


def _refuse_imputer(operator):
    """skl2onnx shape calculator for AutoencoderImputer: refuse it, saying why."""
    raise NotImplementedError(
        "AutoencoderImputer has no ONNX converter: its completion rounds (fill, "
        "reconstruct, put back the observed entries) are not written as a graph. "
        "To serve a pipeline through ONNX, impute with an imputer skl2onnx "
        "converts (e.g. sklearn.impute.SimpleImputer) or impute in Python before "
        "the exported part."
    )


skl2onnx.update_registered_converter(
    MLPAutoencoder,
    _ALIAS,
    _calculate_shape,
    _convert,
    options={"part": list(_PARTS)},
)
# Registered only to be refused with skae's own message, rather than
# skl2onnx's generic "MissingShapeCalculator".
skl2onnx.update_registered_converter(
    AutoencoderImputer,
    "SkaeAutoencoderImputer",
    _refuse_imputer,
    lambda scope, operator, container: _refuse_imputer(operator),
)

__all__ = ["to_onnx"]
