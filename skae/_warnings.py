"""Warnings that point at the user's line, not at skae's own."""

import os
import sys
import warnings

import sklearn

# The folders of skae's and scikit-learn's own modules.
_INTERNAL = tuple(
    os.path.dirname(os.path.abspath(path)) + os.sep
    for path in (__file__, sklearn.__file__)
)


def warn(message, category=UserWarning):
    """Warn with `message`, attributed to the first caller outside skae and sklearn.

    A fixed stacklevel would point into skae whenever the call comes through
    another of its layers (a width search, a pipeline, scikit-learn's fit
    wrapper); the user's own line is the one worth showing.
    """
    frame, level = sys._getframe(1), 2
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
