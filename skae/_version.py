"""The version of skae, in a module of its own that imports nothing of skae."""

__version__ = "0.1.0"
