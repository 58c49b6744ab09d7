"""What the public service may read of a home: registry rows, public certificates, published files.

It opens the home's database (the CA's certificates, the licence library, the seal registry)
and ``<home>/public`` (what ``zhengyin publish`` wrote), and nothing else. It holds no key
material in any form:

* the settings it opens the home with are :func:`public_settings` — the key passphrase (from
  the environment or a file), the key directory and the Vault settings cleared — so even a
  fresh :class:`trust.domain.TrustDomain` made from them cannot open the key store;
* the key store itself is replaced by :class:`NoKeyStore`, which refuses every operation;
* in production it refuses to start at all while the process could read a key passphrase
  file, the key directory or a Vault credential file, or has a key secret in its environment
  (:class:`KeyMaterialReachable`): the public service runs as its own OS user that cannot
  (``verify_api/DEPLOYMENT.md``).

Trust material (the unrevoked department-signer certificates that QR codes are checked
against, and the document verifier's trust: root, issuing CA, published CRLs, seal makers, seal
registry) is read at most every ``trust_ttl`` seconds per worker: a revocation reaches the
public service within that time.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from asn1crypto import x509
from sqlalchemy import or_, select
from sqlalchemy.exc import SQLAlchemyError

from ca.authority import certificate_of
from ledger.config import ConfigError, Settings, load_settings
from ledger.database import DatabaseError
from licences.identifiers import IdentifierError
from licences.registry import LicenceRecord
from licences.states import LicenceNotFound
from trust.domain import TrustDomain
from trust.trust_list import public_dir
from trust.validation import TrustContext

T = TypeVar("T")


#: Where the public service's settings point the key store: a path that cannot be a directory.
NO_KEYS_DIR = Path("/dev/null/zhengyin-public-service-has-no-keys")
#: Environment variables that carry key secrets, or say where they are (prefixes end in ``_``).
SECRET_VARIABLES = ("ZHENGYIN_KEY_PASSPHRASE", "ZHENGYIN_KEY_PASSPHRASE_FILE", "ZHENGYIN_VAULT_", "VAULT_")


class KeyMaterialReachable(ConfigError):
    """Production refuses to run the public service where it could read signing-key secrets."""


def is_secret_variable(name: str) -> bool:
    return any(name.startswith(v) if v.endswith("_") else name == v for v in SECRET_VARIABLES)


def drop_key_secrets(environ: MutableMapping[str, str] | None = None) -> list[str]:
    """Remove every key secret variable (:data:`SECRET_VARIABLES`) from ``environ`` (default the
    process's): what ``serve-verify`` does before uvicorn starts, so no worker inherits one.
    Returns the names removed (never the values)."""
    env = os.environ if environ is None else environ
    removed = sorted(name for name in env if is_secret_variable(name))
    for name in removed:
        del env[name]
    return removed


def _reachable_key_material(settings: Settings, environ: Mapping[str, str]) -> list[str]:
    found = [f"${name}" for name in sorted(environ) if is_secret_variable(name) and environ[name]]
    if settings.key_passphrase_env and "$ZHENGYIN_KEY_PASSPHRASE" not in found:
        found.append("$ZHENGYIN_KEY_PASSPHRASE")  # read into these settings from some environment
    candidates = [("key passphrase file", settings.key_passphrase_file), ("key directory", settings.keys_dir)]
    if settings.vault is not None:
        candidates += [("Vault token file", settings.vault.token_file),
                       ("Vault secret ID file", settings.vault.secret_id_file)]
    for what, path in candidates:
        if path is not None and path.exists() and os.access(path, os.R_OK):
            found.append(f"the {what} {path}")
    return found


def public_settings(settings: Settings, environ: Mapping[str, str] | None = None) -> Settings:
    """``settings`` with every way to key material taken out: no passphrase (environment or
    file), a key directory that cannot exist, no Vault. In production, KeyMaterialReachable if
    this process could still read a secret (``environ`` defaults to the process environment)."""
    if settings.production:
        found = _reachable_key_material(settings, os.environ if environ is None else environ)
        if found:
            raise KeyMaterialReachable(
                "the public verification service must not be able to reach signing-key secrets, but this "
                f"process can read {', '.join(found)}: run it as its own OS user with access to the "
                "database (read-only role) and <home>/public only (see verify_api/DEPLOYMENT.md)")
    return dataclasses.replace(settings, key_passphrase_env=None, key_passphrase_file=None,
                               keys_dir=NO_KEYS_DIR, key_backend="soft", vault=None)


def document_query(sm3_hex: str):
    """The licence row whose OFD or PDF has SM3 ``sm3_hex``: answered from the two indexes of
    migration 0007, never by scanning the register (an upload costs two index look-ups)."""
    return (select(LicenceRecord)
            .where(or_(LicenceRecord.ofd_sm3 == sm3_hex, LicenceRecord.pdf_sm3 == sm3_hex))
            .order_by(LicenceRecord.id).limit(1))


class KeyOperationRefused(RuntimeError):
    """The public verification service holds no private key and never uses one."""


class NoKeyStore:
    """A key store stand-in that refuses everything: the public service must never sign."""

    def __getattr__(self, name: str) -> Any:
        raise KeyOperationRefused(f"the public verification service has no key store (asked for {name!r})")

    def close(self) -> None:
        """Nothing to release (TrustDomain.close closes its key store)."""


@dataclass
class _Cached:
    value: Any
    until: float


class PublicRecords:
    """The read-only view of one home that the public service answers from."""

    def __init__(self, home: str | Path | Settings | None, *, trust_ttl: float = 30.0,
                 clock: Callable[[], float] = time.monotonic):
        settings = home if isinstance(home, Settings) else load_settings(None if home is None else str(home))
        self.domain = TrustDomain(public_settings(settings), "verify_api")
        self.domain.__dict__["keys"] = NoKeyStore()  # pre-empts the cached property: no key store opened
        self.trust_ttl, self.clock = trust_ttl, clock
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}  # one loader per key; the others wait for it
        self._catalogue = None
        self._version_lock = threading.Lock()
        self._version_connection: Any = None  # see register_version
        self._version_generation = 0

    def register_version(self) -> tuple[int, int] | None:
        """A value that changes whenever anything is committed to the register (SQLite's
        ``PRAGMA data_version``, asked on one connection kept for it, with that connection's
        generation: a reopened connection counts afresh), or None where there is no such value
        (a database server): an answer read from the register while this value was unchanged is
        still the register's answer. Read it *before* the look-up it vouches for, so a commit in
        between can only make a kept answer look older than it is. DatabaseError if the
        register cannot be read."""
        if not self.register_is_local:
            return None
        with self._version_lock:
            try:
                if self._version_connection is None:
                    self._version_connection = self.domain.db.engine.raw_connection()
                    self._version_generation += 1
                cursor = self._version_connection.cursor()
                try:
                    cursor.execute("PRAGMA data_version")
                    return self._version_generation, int(cursor.fetchone()[0])
                finally:
                    cursor.close()
            except (sqlite3.Error, SQLAlchemyError) as exc:
                self._drop_version_connection()
                raise DatabaseError("the licence register cannot be read: "
                                    f"{exc.__class__.__name__}") from None

    def _drop_version_connection(self) -> None:
        if self._version_connection is not None:
            try:
                self._version_connection.close()
            except (sqlite3.Error, SQLAlchemyError):
                pass  # already unusable; it goes either way
            self._version_connection = None

    @property
    def register_is_local(self) -> bool:
        """Whether the register is a SQLite file on this machine (not a database server): its
        look-ups are then quick enough to make in the event loop (:func:`verify_api.app`)."""
        return self.domain.settings.database_url.startswith("sqlite")

    @property
    def public_dir(self) -> Path:
        return public_dir(self.domain.settings)

    def _cached(self, key: str, load: Callable[[], T]) -> T:
        """``load()``'s value, re-read after ``trust_ttl`` seconds. One thread loads while the
        others asking meanwhile wait for its value: a worker's first burst of requests (or the
        burst when the value expires) loads it once, not once per thread."""
        entry = self._cache.get(key)
        if entry is not None and entry.until > self.clock():
            return entry.value
        with self._lock:
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            entry = self._cache.get(key)
            if entry is not None and entry.until > self.clock():
                return entry.value  # loaded by the thread this one waited for
            now = self.clock()
            value = load()
            with self._lock:
                self._cache[key] = _Cached(value, now + self.trust_ttl)
            return value

    def signer_certificates(self) -> list[x509.Certificate]:
        """The department-signer certificates not revoked: what a licence QR code is checked against."""
        def load() -> list[x509.Certificate]:
            records = self.domain.ca.certificates(profile="department-signer", include_revoked=False)
            return [certificate_of(r) for r in records]

        return self._cached("signers", load)

    def verification_trust(self) -> TrustContext:
        """The home's document-verification trust (read-only: nothing is signed or written)."""
        return self._cached("trust", self.domain.verification_trust)

    def find_by_qr(self, identifier: str, nonce_hex: str) -> LicenceRecord | None:
        return self.domain.licences.find_by_qr(identifier, nonce_hex)

    def licence(self, identifier: str) -> LicenceRecord | None:
        """A licence row by identifier (only to follow ``superseded_by`` from a row already found)."""
        try:
            return self.domain.licences.find(identifier)
        except (LicenceNotFound, IdentifierError):
            return None

    def find_by_document(self, sm3_hex: str) -> LicenceRecord | None:
        """The licence whose signed OFD or PDF has this SM3 (an uploaded file that is one of ours)."""
        with self.domain.db.transaction() as s:
            return s.scalars(document_query(sm3_hex)).first()

    def type_names(self, type_code: str) -> tuple[str | None, str | None]:
        """(Chinese, English) name of a licence type from the catalogue, or Nones if unknown."""
        from licences.catalogue import Catalogue, UnknownLicenceType

        if self._catalogue is None:
            with self._lock:  # loaded once per worker, not by every thread of its first burst
                if self._catalogue is None:
                    self._catalogue = Catalogue.load()
        try:
            licence_type = self._catalogue.get(type_code)
        except UnknownLicenceType:  # a retired type: the row's own name is shown instead
            return None, None
        return licence_type.name, licence_type.english_name

    def published(self, name: str) -> bytes | None:
        """A file ``zhengyin publish`` wrote (``trust-list.json``, ``crl/root.crl``, …), or None."""
        try:
            return (self.public_dir / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def close(self) -> None:
        with self._version_lock:
            self._drop_version_connection()
        self.domain.close()
