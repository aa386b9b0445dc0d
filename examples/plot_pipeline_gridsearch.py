"""
Pipelines and grid search
=========================

``MLPAutoencoder`` is a scikit-learn transformer: it sits in a ``Pipeline``
wherever PCA would, and ``GridSearchCV`` tunes it by its ``score``, the negative
reconstruction error. Here the code width is chosen by cross-validation, and the
code then feeds a classifier.

Set ``SKAE_EXAMPLES_FAST=1`` to run with tiny settings.
"""

import os

import pandas as pd
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import MinMaxScaler

from skae import MLPAutoencoder
from skae.datasets import load_mnist_sample

FAST = os.environ.get("SKAE_EXAMPLES_FAST") == "1"

X, y = load_mnist_sample()
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=1000, random_state=0, stratify=y
)
if FAST:
    X_train, y_train = X_train[:300], y_train[:300]
epochs = 1 if FAST else 10

# %%
# Choosing n_components by reconstruction error. The MinMaxScaler is there to
# show that ``pipeline.inverse_transform`` undoes every step.
pipe = Pipeline(
    [
        ("scale", MinMaxScaler()),
        ("ae", MLPAutoencoder(max_iter=epochs, random_state=0)),
    ]
)
search = GridSearchCV(pipe, {"ae__n_components": [8, 16, 32]}, cv=3)
search.fit(X_train)
print(pd.DataFrame(search.cv_results_)[["param_ae__n_components", "mean_test_score"]])
print("best:", search.best_params_)
X_back = search.best_estimator_.inverse_transform(search.transform(X_test))
print("reconstruction shape:", X_back.shape)

# %%
# The same code with PCA in the pipeline, then each code as features for a
# classifier:
for reducer in [PCA(n_components=16), MLPAutoencoder(16, max_iter=epochs)]:
    classifier = Pipeline(
        [("reduce", reducer), ("classify", LogisticRegression(max_iter=500))]
    )
    classifier.fit(X_train, y_train)
    accuracy = classifier.score(X_test, y_test)
    print(f"{type(reducer).__name__:>14} + logistic regression: {accuracy:.3f}")
