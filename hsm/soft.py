"""The ``soft`` key store: SM2 keys as encrypted PKCS#8 files in a directory.

Layout (all files 0600, directories 0700)::

    keys/store.json              passphrase canary (SM4-GCM under a PBKDF2-HMAC-SM3 key)
    keys/<label>/key.json        versions: number, state, created, origin, public point
    keys/<label>/v<N>.p8.pem     ENCRYPTED PRIVATE KEY (PBES2, PBKDF2-HMAC-SM3, SM4-CBC);
                                 OpenSSL >= 3.2 (`openssl pkcs8 -in v1.p8.pem`) reads it

The canary is checked when the store opens, so a wrong passphrase is refused before
anything is written: no key can end up encrypted under a mistyped passphrase. Decrypted
keys are cached inside the store object only; nothing in the public API returns them.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from . import sm4
from .errors import HsmError, KeyExists, KeyNotFound, KeyUnavailable, WrongPassphrase
from .hazmat import SM2PrivateKey
from .keystore import KeyEvent, KeyEventSink, KeyRef, KeyState, KeyVersion
from .sm2 import DEFAULT_UID, SM2PublicKey

LABEL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_CANARY = b"zhengyin soft key store"
_STORE_FILE = "store.json"
_KEY_FILE = "key.json"
DEFAULT_ITERATIONS = 100_000
#: A key's metadata read for signing is used again, without reading and parsing key.json, while
#: the file looks unchanged — same inode, size, modification and change times (every write
#: replaces it with a new file) — and for at most this long, in case two writes within one
#: timestamp tick left a file that looks the same. A change through this store object is seen
#: at once; one by another process at the next signature, or within this time at worst.
META_REUSE_SECONDS = 1.0


def _check_label(label: str) -> str:
    if not isinstance(label, str) or not LABEL.match(label) or ".." in label:
        raise HsmError(f"invalid key label {label!r}: use lower-case letters, digits, '.', '_' and '-'"
                       " (at most 100, starting with a letter or digit)")
    return label


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically with owner-only permissions."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _canary_key(passphrase: bytes, salt: bytes, iterations: int) -> bytes:
    kdf = PBKDF2HMAC(algorithm=hashes.SM3(), length=16, salt=salt, iterations=iterations)
    return kdf.derive(passphrase)


class SoftKeyStore:
    """Versioned SM2 keys in encrypted files; see the module docstring for the layout."""

    backend = "soft"

    def __init__(self, directory: str | Path, passphrase: bytes, *,
                 on_event: KeyEventSink | None = None, iterations: int = DEFAULT_ITERATIONS):
        if not passphrase:
            raise WrongPassphrase("the key store needs a non-empty passphrase")
        self.directory = Path(directory)
        self._passphrase = bytes(passphrase)
        self._iterations = iterations
        self._on_event = on_event
        self._loaded: dict[tuple[str, int], SM2PrivateKey] = {}
        self._meta_kept: dict[str, tuple[tuple[int, int, int, int], float, dict]] = {}
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with self._locked():
            self._open_or_create()

    # ---- store-level ----------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock on the store for the duration of a change (other processes wait)."""
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _open_or_create(self) -> None:
        path = self.directory / _STORE_FILE
        if path.exists():
            meta = json.loads(path.read_text())
            key = _canary_key(self._passphrase, base64.b64decode(meta["salt"]), meta["iterations"])
            try:
                if sm4.gcm_decrypt(key, base64.b64decode(meta["canary"])) != _CANARY:
                    raise sm4.DecryptionFailed("canary mismatch")
            except sm4.DecryptionFailed as exc:
                raise WrongPassphrase(f"wrong passphrase for the key store at {self.directory}") from exc
            return
        salt = secrets.token_bytes(16)
        key = _canary_key(self._passphrase, salt, self._iterations)
        meta = {"format": 1, "kdf": "pbkdf2-hmac-sm3", "iterations": self._iterations,
                "salt": base64.b64encode(salt).decode(),
                "canary": base64.b64encode(sm4.gcm_encrypt(key, _CANARY)).decode()}
        _write_private(path, json.dumps(meta, indent=2).encode())

    def _emit(self, action: str, label: str, version: int, **details) -> None:
        if self._on_event is not None:
            self._on_event(KeyEvent(action, label, version, details))

    # ---- per-key metadata -----------------------------------------------------------
    def _key_dir(self, label: str) -> Path:
        return self.directory / _check_label(label)

    def _read_meta(self, label: str) -> dict:
        path = self._key_dir(label) / _KEY_FILE
        if not path.exists():
            raise KeyNotFound(label)
        return json.loads(path.read_text())

    def _write_meta(self, label: str, meta: dict) -> None:
        self._meta_kept.pop(label, None)
        _write_private(self._key_dir(label) / _KEY_FILE, json.dumps(meta, indent=2).encode())
        self._meta_kept.pop(label, None)

    def _meta_for_signing(self, label: str) -> dict:
        """:meth:`_read_meta` for the signing path, which asks it for every signature: a stat
        instead of a read and a JSON parse while key.json is unchanged (META_REUSE_SECONDS).
        The dict returned is only read."""
        path = self._key_dir(label) / _KEY_FILE
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise KeyNotFound(label) from None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        now = time.monotonic()
        kept = self._meta_kept.get(label)
        if kept is not None and kept[0] == stamp and now - kept[1] < META_REUSE_SECONDS:
            return kept[2]
        # Read after the stat: a file replaced in between is read new and kept under the old
        # stamp, which the next stat no longer matches.
        meta = self._read_meta(label)
        self._meta_kept[label] = (stamp, now, meta)
        return meta

    @staticmethod
    def _version_of(label: str, meta: dict, version: int | None) -> dict:
        wanted = meta["current"] if version is None else version
        for entry in meta["versions"]:
            if entry["version"] == wanted:
                return entry
        raise KeyNotFound(label, wanted)

    @staticmethod
    def _as_key_version(label: str, meta: dict, entry: dict) -> KeyVersion:
        return KeyVersion(
            label=label, version=entry["version"], state=KeyState(entry["state"]),
            created=datetime.fromisoformat(entry["created"]),
            public_key=SM2PublicKey.from_encoded_point(bytes.fromhex(entry["public_point"])),
            current=entry["version"] == meta["current"], origin=entry.get("origin", "generated"))

    def _store_version(self, label: str, meta: dict, key: SM2PrivateKey, origin: str) -> KeyVersion:
        from .pkcs8 import encrypt_private_key, encrypted_private_key_pem

        version = max((e["version"] for e in meta["versions"]), default=0) + 1
        der = encrypt_private_key(key, self._passphrase, iterations=self._iterations)
        key_dir = self._key_dir(label)
        key_dir.mkdir(mode=0o700, exist_ok=True)
        _write_private(key_dir / f"v{version}.p8.pem", encrypted_private_key_pem(der))
        entry = {"version": version, "state": KeyState.ACTIVE.value,
                 "created": datetime.now(UTC).isoformat(), "origin": origin,
                 "public_point": key.public_key().encoded_point().hex()}
        meta["versions"].append(entry)
        meta["current"] = version
        self._write_meta(label, meta)
        self._loaded[(label, version)] = key
        return self._as_key_version(label, meta, entry)

    # ---- KeyStore protocol ----------------------------------------------------------
    def generate(self, label: str) -> KeyVersion:
        with self._locked():
            if (self._key_dir(label) / _KEY_FILE).exists():
                raise KeyExists(label)
            kv = self._store_version(label, {"label": label, "versions": [], "current": 0},
                                     SM2PrivateKey.generate(), "generated")
        self._emit("key.generate", label, kv.version, public_key=kv.public_key.encoded_point().hex())
        return kv

    def import_key(self, label: str, private_key_data: bytes, password: bytes | None = None, *,
                   as_new_version: bool = False) -> KeyVersion:
        """Import from PEM/DER PKCS#8 (encrypted or not), SEC1, or PKCS#12.

        A new label gets version 1; with ``as_new_version`` an existing label gets the
        imported key as its new current version (a rotation to known key material).
        """
        key = _load_any_private_key(private_key_data, password)
        with self._locked():
            exists = (self._key_dir(label) / _KEY_FILE).exists()
            if exists and not as_new_version:
                raise KeyExists(label)
            meta = self._read_meta(label) if exists else {"label": label, "versions": [], "current": 0}
            kv = self._store_version(label, meta, key, "imported")
        self._emit("key.import", label, kv.version, public_key=kv.public_key.encoded_point().hex())
        return kv

    def rotate(self, label: str) -> KeyVersion:
        with self._locked():
            meta = self._read_meta(label)
            previous = meta["current"]
            kv = self._store_version(label, meta, SM2PrivateKey.generate(), "generated")
        self._emit("key.rotate", label, kv.version, previous_version=previous,
                   public_key=kv.public_key.encoded_point().hex())
        return kv

    def _private(self, label: str, version: int | None, operation: str) -> tuple[int, SM2PrivateKey]:
        meta = self._meta_for_signing(label)
        entry = self._version_of(label, meta, version)
        number = entry["version"]
        if entry["state"] != KeyState.ACTIVE.value:
            raise KeyUnavailable(label, number, entry["state"], operation)
        key = self._loaded.get((label, number))
        if key is None:
            from .pkcs8 import load_private_key

            path = self._key_dir(label) / f"v{number}.p8.pem"
            try:
                key = load_private_key(path.read_bytes(), self._passphrase)
            except FileNotFoundError as exc:
                raise KeyNotFound(label, number) from exc
            if key.public_key().encoded_point().hex() != entry["public_point"]:
                raise HsmError(f"key file for version {number} of {label!r} does not match its metadata")
            self._loaded[(label, number)] = key
        return number, key

    def sign(self, label: str, data: bytes, version: int | None = None,
             uid: bytes = DEFAULT_UID) -> bytes:
        _, key = self._private(label, version, "sign")
        return key.sign(data, uid)

    def sign_digest(self, label: str, e: bytes, version: int | None = None) -> bytes:
        """Sign a precomputed e = SM3(Z_A || M) (for callers that hash streams themselves)."""
        _, key = self._private(label, version, "sign")
        return key.sign_digest(e)

    def public_key(self, label: str, version: int | None = None) -> SM2PublicKey:
        meta = self._read_meta(label)
        entry = self._version_of(label, meta, version)
        return SM2PublicKey.from_encoded_point(bytes.fromhex(entry["public_point"]))

    def versions(self, label: str) -> list[KeyVersion]:
        meta = self._read_meta(label)
        return [self._as_key_version(label, meta, e) for e in meta["versions"]]

    def list(self) -> list[KeyVersion]:
        out: list[KeyVersion] = []
        for child in sorted(self.directory.iterdir()):
            if child.is_dir() and (child / _KEY_FILE).exists():
                out.extend(self.versions(child.name))
        return out

    def labels(self) -> list[str]:
        return sorted({kv.label for kv in self.list()})

    def exists(self, label: str) -> bool:
        return (self._key_dir(label) / _KEY_FILE).exists()

    def _set_state(self, label: str, version: int, state: KeyState, action: str) -> KeyVersion:
        with self._locked():
            meta = self._read_meta(label)
            entry = self._version_of(label, meta, version)
            if entry["state"] == KeyState.DESTROYED.value and state is not KeyState.DESTROYED:
                raise KeyUnavailable(label, version, "destroyed", "change its state")
            previous = entry["state"]
            entry["state"] = state.value
            if state is KeyState.DESTROYED:
                self._erase(self._key_dir(label) / f"v{version}.p8.pem")
            self._write_meta(label, meta)
            self._loaded.pop((label, version), None)
            kv = self._as_key_version(label, meta, entry)
        self._emit(action, label, version, previous_state=previous)
        return kv

    @staticmethod
    def _erase(path: Path) -> None:
        """Overwrite, then remove (best effort on journaling/copy-on-write file systems)."""
        if path.exists():
            size = path.stat().st_size
            with open(path, "r+b") as fh:
                fh.write(secrets.token_bytes(size))
                fh.flush()
                os.fsync(fh.fileno())
            path.unlink()

    def disable(self, label: str, version: int) -> KeyVersion:
        return self._set_state(label, version, KeyState.DISABLED, "key.disable")

    def enable(self, label: str, version: int) -> KeyVersion:
        return self._set_state(label, version, KeyState.ACTIVE, "key.enable")

    def destroy(self, label: str, version: int) -> KeyVersion:
        return self._set_state(label, version, KeyState.DESTROYED, "key.destroy")

    def signer(self, label: str, version: int | None = None) -> KeyRef:
        meta = self._read_meta(label)
        entry = self._version_of(label, meta, version)
        return KeyRef(self, label, entry["version"],
                      SM2PublicKey.from_encoded_point(bytes.fromhex(entry["public_point"])))

    def __repr__(self) -> str:
        return f"SoftKeyStore({str(self.directory)!r})"


def _load_any_private_key(data: bytes, password: bytes | None) -> SM2PrivateKey:
    """PKCS#12 when the data is one, otherwise the PEM/DER forms of :mod:`hsm.pkcs8`."""
    from .pkcs8 import load_private_key
    from .pkcs12 import is_pkcs12, load_pkcs12

    if is_pkcs12(data):
        return load_pkcs12(data, password or b"").key
    return load_private_key(data, password)
