"""Errors of the seals room."""

from __future__ import annotations


class SealError(Exception):
    """Base class of every error raised by :mod:`seals`."""


class SealFormatError(SealError):
    """The bytes are not a seal or seal signature of any known layout (or are damaged)."""
