"""Pystrument SDK: measures every request and profiles a sample with pyinstrument."""

__version__ = "0.1.0"
