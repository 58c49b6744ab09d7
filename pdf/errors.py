"""Errors of the pdf room.

A :class:`PdfFormatError` means the bytes are not a PDF we can read at all (no header, no
cross-reference section, truncated beyond repair); the message names what is missing and
where, e.g. ``"startxref at offset 1234 points past the end of the file"``. Flaws *inside*
a readable PDF — a broken signature dictionary, a suspicious update — are not raised but
reported as failed checks, so the user sees every reason at once.
"""

from __future__ import annotations


class PdfError(Exception):
    """Base of every error the pdf room raises."""


class PdfFormatError(PdfError):
    """The input is not a readable PDF; the message names the structure that is broken."""
