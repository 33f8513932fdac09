"""The single version source for the Python package (and later the labextension)."""

__version__ = "0.1.0"
