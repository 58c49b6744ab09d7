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


class KeyStoreBackendError(HsmError):
    """The key store's backend (e.g. Vault) refused or could not serve a request.

    Raised before anything is committed where the operation has several steps, so a
    failed signing issues nothing. Messages name the backend, the operation and what to
    check; they never carry a token, a secret ID or key material.
    """


class KeyStoreUnavailable(KeyStoreBackendError):
    """The backend cannot be reached or does not answer (connection refused, timeout, 5xx)."""


class KeyStoreSealed(KeyStoreUnavailable):
    """The backend is up but sealed: an operator must unseal it before keys can be used."""


class KeyStorePermissionDenied(KeyStoreBackendError):
    """The backend refused the credentials or the policy does not allow the operation."""


class KeyStoreMisconfigured(KeyStoreBackendError):
    """The backend is set up wrongly for this store: a CA bundle file that does not exist, a
    mount that is not the engine it should be (Vault answers 405), a missing KV mount."""


class KeyStoreConflict(KeyStoreBackendError):
    """Another writer kept changing the same key while this operation tried to record its
    change (check-and-set lost repeatedly); nothing of this operation was recorded, try again."""


class KeyStoreClosed(KeyStoreBackendError):
    """The key store was closed (its cached keys dropped, its login given up) and is not used again."""
