"""The key store protocol: labelled, versioned SM2 keys that never leave the store.

A label names a key's purpose (``root-ca``, ``dept-913100001234567890-signer``); each
rotation adds a version and makes it current, older versions stay usable for verification
(and, until disabled, for signing on request), so documents signed years ago still verify.
Backends: :mod:`hsm.soft` (encrypted PKCS#8 files) and :mod:`hsm.vault` (wrapped by HashiCorp
Vault Transit, versioned in KV v2); one contract test suite runs against both. Callers sign through
:meth:`KeyStore.sign` or a :class:`KeyRef`; the private key is never returned.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from .sm2 import DEFAULT_UID, SM2PublicKey


class KeyState(enum.StrEnum):
    ACTIVE = "active"
    """Usable for signing and verification."""
    DISABLED = "disabled"
    """Kept for verification only; signing refused. Reversible."""
    DESTROYED = "destroyed"
    """Private part erased; the public key stays so old signatures still verify."""


@dataclass(frozen=True)
class KeyVersion:
    label: str
    version: int
    state: KeyState
    created: datetime
    public_key: SM2PublicKey
    current: bool = False
    origin: str = "generated"  # or "imported"


@dataclass(frozen=True)
class KeyEvent:
    """A security-relevant act in the store, handed to the configured event sink (audit)."""

    action: str  # key.generate, key.import, key.rotate, key.disable, key.enable, key.destroy
    label: str
    version: int
    details: dict = field(default_factory=dict)


KeyEventSink = Callable[[KeyEvent], None]


@runtime_checkable
class Signer(Protocol):
    """Anything that signs with one SM2 key: what the CA and the seal code need."""

    def public_key(self) -> SM2PublicKey: ...

    def sign(self, data: bytes, uid: bytes = DEFAULT_UID) -> bytes:
        """DER SEQUENCE{r, s} over SM3(Z_A || data)."""
        ...


class KeyStore(Protocol):
    def generate(self, label: str) -> KeyVersion:
        """Create a new key; it becomes version 1. Raises KeyExists if the label is taken."""
        ...

    def import_key(self, label: str, private_key_data: bytes, password: bytes | None = None) -> KeyVersion:
        """Import an SM2 key from PEM, PKCS#8 (encrypted or not) or PKCS#12 as a new key/version."""
        ...

    def rotate(self, label: str) -> KeyVersion:
        """Add a fresh version and make it current."""
        ...

    def sign(self, label: str, data: bytes, version: int | None = None,
             uid: bytes = DEFAULT_UID) -> bytes:
        """Sign with the given version (default: current). Refused for disabled/destroyed."""
        ...

    def public_key(self, label: str, version: int | None = None) -> SM2PublicKey: ...

    def versions(self, label: str) -> list[KeyVersion]: ...

    def list(self) -> list[KeyVersion]:
        """Every version of every key."""
        ...

    def disable(self, label: str, version: int) -> KeyVersion: ...

    def enable(self, label: str, version: int) -> KeyVersion: ...

    def destroy(self, label: str, version: int) -> KeyVersion:
        """Erase the private part for good; the public key remains for verification."""
        ...

    def signer(self, label: str, version: int | None = None) -> KeyRef: ...


class KeyRef:
    """A :class:`Signer` bound to one version of one key in a store.

    It holds the store and the key's name, never the key: signing goes back through the store,
    so disabling a version stops every outstanding reference at once.
    """

    __slots__ = ("_public", "_store", "label", "version")

    def __init__(self, store: KeyStore, label: str, version: int, public_key: SM2PublicKey):
        self._store = store
        self.label = label
        self.version = version
        self._public = public_key

    def public_key(self) -> SM2PublicKey:
        return self._public

    def sign(self, data: bytes, uid: bytes = DEFAULT_UID) -> bytes:
        return self._store.sign(self.label, data, version=self.version, uid=uid)

    def __repr__(self) -> str:
        return f"KeyRef({self.label!r}, v{self.version})"
