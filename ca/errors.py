"""Errors raised by the certificate authority room.

Every message says what the caller has to change: these errors reach operators through the
command line and issuing departments through the signing service.
"""

from __future__ import annotations


class CaError(Exception):
    """Base class of every error raised by :mod:`ca`."""


class InvalidRequest(CaError):
    """The request cannot be honoured as given: a bad CSR, a bad parameter, or a signer whose
    key does not belong to the issuing certificate."""


class CertificateNotFound(CaError):
    """No certificate matches the given serial number or name."""
