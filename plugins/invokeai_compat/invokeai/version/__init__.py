"""The InvokeAI version whose node API this package provides."""

__version__ = "6.14.0"
