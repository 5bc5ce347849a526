"""Chitram: self-hostable image hosting."""

__version__ = "0.1.0"
