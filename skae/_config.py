"""The parameters a fit reads, frozen: what the estimator hands to the trainer.

Never imports scikit-learn. `MLPAutoencoder` validates its parameters and the
data, then builds one `FitConfig`; `skae._trainer` and the width search read it
and never the estimator. ``architecture`` is the one description of the
network that the modules (`skae._state`), the files and the ONNX graph read.
"""

from dataclasses import dataclass, fields, replace

import numpy as np

# hidden_layer_sizes="auto" adds a third hidden layer for codes up to this wide.
AUTO_DEEP_MAX_COMPONENTS = 16
# The parameters an interrupted fit's plan depends on: `resume` refuses to
# finish a fit after one of them changed.
PLAN_PARAMS = (
    "solver",
    "learning_rate",
    "learning_rate_init",
    "alpha",
    "batch_size",
    "max_iter",
    "max_time",
    "shuffle",
    "tol",
    "n_iter_no_change",
    "validation_fraction",
    "momentum",
    "noise",
    "precision",
    "loss",
)


def resolve_hidden_layer_sizes(hidden_layer_sizes, n_components):
    """Return the hidden widths: "auto" resolved for a code `n_components` wide."""
    if isinstance(hidden_layer_sizes, str):
        if n_components <= AUTO_DEEP_MAX_COMPONENTS:
            return (512, 256, 128)
        return (512, 256)
    return tuple(hidden_layer_sizes)


def resolve_init(init, latent_activation, output_activation):
    """Return "pca" or "random", resolving "auto"."""
    if init == "auto":
        identity = latent_activation == output_activation == "identity"
        return "pca" if identity else "random"
    return init


@dataclass(frozen=True)
class FitConfig:
    """Every parameter a fit, partial_fit or resume reads, checked.

    ``hidden_layer_sizes`` is "auto" or a tuple of ints, ``noise`` a dict (empty
    for none) and ``n_features`` the width of the training rows. ``params``
    holds the parameters of `PLAN_PARAMS` as JSON values, as given.
    """

    n_components: int | float
    hidden_layer_sizes: tuple | str
    init: str
    activation: str
    latent_activation: str
    output_activation: str
    loss: str
    solver: str
    learning_rate: str
    learning_rate_init: float
    momentum: float
    alpha: float
    batch_size: int
    max_iter: int
    max_time: float | None
    shuffle: bool
    tol: float
    n_iter_no_change: int
    early_stopping: bool | str
    validation_fraction: float
    precision: str
    device: str
    verbose: int
    random_state: object
    n_features: int
    noise: dict
    params: dict

    @classmethod
    def from_params(cls, params, *, n_features, hidden_layer_sizes, noise):
        """Build the configuration from an estimator's `get_params()` and checks."""
        taken = {
            field.name: params[field.name]
            for field in fields(cls)
            if field.name in params
        }
        taken.update(
            hidden_layer_sizes=hidden_layer_sizes,
            noise=noise,
            n_features=int(n_features),
            # NumPy scalars (np.float32(60) for max_time, say) as plain JSON values.
            params={name: _plain(params[name]) for name in PLAN_PARAMS},
        )
        return cls(**taken)

    @property
    def architecture(self):
        """Return what must stay the same for training to continue: the network."""
        return {
            "n_features": self.n_features,
            "hidden_layer_sizes": resolve_hidden_layer_sizes(
                self.hidden_layer_sizes, self.n_components
            ),
            "n_components": self.n_components,
            "activation": self.activation,
            "latent_activation": self.latent_activation,
            "output_activation": self.output_activation,
            "init": resolve_init(
                self.init, self.latent_activation, self.output_activation
            ),
        }

    def at_width(self, n_components, **changes):
        """Return this configuration with a code `n_components` wide (and `changes`)."""
        return replace(self, n_components=int(n_components), **changes)


def _plain(value):
    """Return a NumPy scalar as the Python value it holds; anything else as is."""
    return value.item() if isinstance(value, np.generic) else value
