"""scikit-learn's estimator checks, run on MLPAutoencoder with fast settings."""

import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_get_feature_names_out_error,
    check_global_output_transform_pandas,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from skae import MLPAutoencoder


def fast_autoencoder():
    return MLPAutoencoder(hidden_layer_sizes=(8,), max_iter=3, batch_size=16)


@parametrize_with_checks([fast_autoencoder()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "check",
    [
        check_dataframe_column_names_consistency,
        check_transformer_get_feature_names_out,
        check_transformer_get_feature_names_out_pandas,
        check_get_feature_names_out_error,
        check_set_output_transform,
        check_set_output_transform_pandas,
        check_global_output_transform_pandas,
    ],
)
@pytest.mark.filterwarnings("ignore:X (does not have valid|has) feature names")
def test_checks_outside_the_generator(check):
    # The pandas set_output checks mix frames and arrays on purpose, and PCA warns
    # about feature names the same way there.
    check("MLPAutoencoder", fast_autoencoder())
