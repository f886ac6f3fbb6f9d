"""Tokenwise: a human-feedback workbench for language models (the library)."""

__version__ = "0.1.0"
