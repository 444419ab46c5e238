"""Invoke Host: a plugin-driven server for image-generation node graphs."""

__version__ = "0.1.0"
