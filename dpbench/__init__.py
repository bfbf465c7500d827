"""dpbench: an open benchmark toolkit for digital pathology encoders."""

__version__ = "0.1.0"
