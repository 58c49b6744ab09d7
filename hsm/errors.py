"""Errors raised by the crypto provider and key stores.

Each carries enough for the caller to act: which key, which version, what was wrong.
"""


#: What asn1crypto raises, lazily, wherever a field of malformed input is first read
#: (AttributeError from a malformed ANY, RecursionError from deeply nested hostile BER). Every
#: reader of untrusted ASN.1 catches exactly these and turns them into its own format error.
ASN1_PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError,
                     RecursionError)


class HsmError(Exception):
    """Base class of every error raised by :mod:`hsm`."""


class InvalidSignature(HsmError):
    """The signature does not verify for this key and data (or is malformed)."""


class InvalidKey(HsmError):
    """A key value is unusable: off the curve, out of range, or badly encoded."""


class UnsupportedAlgorithm(HsmError):
    """An algorithm or parameter this provider refuses (only SM2/SM3/SM4 are accepted)."""


class KeyNotFound(HsmError):
    """No key with this label (or no such version of it) exists in the store."""

    def __init__(self, label: str, version: int | None = None):
        self.label = label
        self.version = version
        what = f"key {label!r}" if version is None else f"version {version} of key {label!r}"
        super().__init__(f"{what} does not exist in the key store")


class KeyExists(HsmError):
    """A key with this label already exists; use rotate to add a version."""

    def __init__(self, label: str):
        self.label = label
        super().__init__(f"key {label!r} already exists; rotate it to add a new version")


class KeyUnavailable(HsmError):
    """The key version exists but may not be used for this operation (disabled/destroyed)."""

    def __init__(self, label: str, version: int, state: str, operation: str):
        self.label, self.version, self.state = label, version, state
        super().__init__(
            f"version {version} of key {label!r} is {state} and cannot be used to {operation}"
        )


class WrongPassphrase(HsmError):
    """The passphrase does not decrypt the key material (nothing was changed)."""


class KeyFormatError(HsmError):
    """Key material (PEM, PKCS#8, PKCS#12) could not be parsed."""
