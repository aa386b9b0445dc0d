"""The parameters a fit reads, frozen: what the estimator hands to the fit procedure.

Never imports scikit-learn. `MLPAutoencoder` builds one `FitConfig` per call
from its parameters; `skae._fitting` reads it and never the estimator.
"""

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class FitConfig:
    """Every parameter a fit, partial_fit or resume reads, as given.

    ``params`` holds the ones an interrupted fit's plan depends on, as JSON
    values: `resume` refuses to finish a fit after one of them changed.
    """

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
    init: str
    latent_activation: str
    output_activation: str
    params: dict

    @classmethod
    def names(cls):
        """Return the names of the fields taken from the estimator's parameters."""
        return [field.name for field in fields(cls) if field.name != "params"]
