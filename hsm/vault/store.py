"""The ``vault`` key store: SM2 keys wrapped by Vault Transit and versioned in Vault KV v2.

Vault has no SM2, so Vault never signs. A key is generated here (:mod:`hsm.hazmat`), its
32-byte private scalar is at once encrypted by a Transit key (``POST <transit>/encrypt/<key>``)
and only the ciphertext is stored, in KV v2::

    <kv>/data/<prefix>/<label>          one secret per key label
        KV version N = key version N    data: algorithm "SM2", format, ciphertext
                                        ("vault:v<T>:..."), transit key, public key (hex),
                                        label, version, created, created_by, origin
    <kv>/metadata/<prefix>/<label>      max_versions and cas_required pinned, custom_metadata
                                        {algorithm, label, state}: written once, before the
                                        first version, never rewritten
    <kv>/data/<prefix>/<label>/state    the mutable part (:mod:`hsm.vault.state`): one entry
                                        per version — status, public key, created, created_by,
                                        origin and, after a Transit rewrap, "wrapped" (the
                                        ciphertext under the newest Transit version) — written
                                        with check-and-set only

Why the split: KV versions are immutable, so what changes after creation — the status
(active/disabled/destroyed) and the rewrapped ciphertext — lives in a state secret that every
writer updates with check-and-set, re-reading and re-applying only its own change when it
lost a race (so a disable, a destroy and a rewrap on three nodes at once all survive). The
public key is kept there too because destroying a KV version (``POST <kv>/destroy/<path>``)
erases its data for good while old signatures must still verify. A version Vault reports
``destroyed`` is destroyed whatever the state says; a state entry that is missing (a
transient failure right after a version was stored) is rebuilt from the data on read and
written with the next state change of that label. KV's own soft delete is not used for
"disabled": a version someone deleted in Vault is reported as missing ("deleted in Vault")
and cannot sign until it is undeleted there.

Writes of key versions use check-and-set too: ``generate`` with cas=0, so a label taken
meanwhile is refused; ``rotate`` with the current version, so two rotations cannot both win.
``max_versions`` (= :data:`MAX_VERSIONS`) and ``cas_required`` are set before the first
version is written — a policy that forbids it fails the generate with nothing stored — and
put back before a rotation if someone changed them, so KV never prunes an old version (and
with it an old public key).

Destroying a version: first the state says "destroyed" and loses the version's rewrapped
ciphertext (from then on nothing signs with it and no decryptable copy is left in the state),
then older versions of the state secret are destroyed, then the KV version. Should Vault fail
in between, the version already reports destroyed and running destroy again completes the
erasure (:meth:`VaultKeyStore.rewrap_all` lists such versions). What destroy does not do is
crypto-erasure: every version of every label is wrapped by the same Transit key, so a Vault
storage snapshot or backup taken before the destroy still holds a ciphertext that key opens.
Where that matters, retire the whole Transit key (rotate, ``rewrap_all``, raise its
``min_decryption_version``) after destroying, or keep backups under their own retention.

Signing reads the key's metadata and state (the status is checked on every signature, so a
disable anywhere stops signing at once), fetches the version's ciphertext, decrypts it through
Transit, checks that the key matches the recorded public key, signs in memory and keeps the
clear key for at most ``unwrap_cache_seconds`` (:mod:`hsm.vault.cache`). Each actual unwrap
emits a ``key.unwrap`` event, so the audit log sees unwraps aggregated by the cache time.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import hvac.exceptions

from ..errors import (
    HsmError,
    KeyExists,
    KeyNotFound,
    KeyStoreBackendError,
    KeyStoreConflict,
    KeyStorePermissionDenied,
    KeyStoreUnavailable,
    KeyUnavailable,
)
from ..hazmat import SM2PrivateKey
from ..keystore import KeyEvent, KeyEventSink, KeyRef, KeyState, KeyVersion
from ..sm2 import DEFAULT_UID, SM2PublicKey
from ..soft import _check_label, _load_any_private_key
from .cache import UnwrapCache
from .connection import VaultConnection, vault_error_text
from .state import Entries, StateSecret

#: Versions per label; KV's max_versions is pinned to it so no version is ever pruned.
MAX_VERSIONS = 60
ALGORITHM = "SM2"
PLAINTEXT_FORMAT = "sm2-private-scalar"  # Transit plaintext: the 32-byte big-endian scalar d
_CREATED_BY_MAX = 64
_DELETED_IN_VAULT = "deleted in Vault"
_DESTROYED = KeyState.DESTROYED.value


class TransitRefused(KeyStoreBackendError):
    """Transit answered 400/404 for one ciphertext or key (e.g. a wrapping retired as too old)."""


@dataclass(frozen=True)
class RewrapResult:
    """What :meth:`VaultKeyStore.rewrap_all` did, version by version."""

    transit_key: str
    transit_version: int
    rewrapped: list[tuple[str, int, int]] = field(default_factory=list)  # label, version, from v<T>
    up_to_date: list[tuple[str, int]] = field(default_factory=list)
    skipped: list[tuple[str, int, str]] = field(default_factory=list)  # label, version, why

    @property
    def complete(self) -> bool:
        """Every ciphertext left is under the newest Transit version: the old ones can be retired.

        Only versions that are fully destroyed may be skipped for that."""
        return all(why == _DESTROYED for _, _, why in self.skipped)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _transit_version(ciphertext: str) -> int:
    """T of "vault:v<T>:..." (Transit's ciphertext prefix)."""
    try:
        prefix, version, _ = ciphertext.split(":", 2)
        if prefix != "vault" or not version.startswith("v"):
            raise ValueError
        return int(version[1:])
    except ValueError:
        raise KeyStoreBackendError("a stored key ciphertext is not in Vault Transit's 'vault:v<N>:' form") \
            from None


def _scalar_from_plaintext(plaintext_b64: str) -> SM2PrivateKey:
    """Load the key from Transit's base64 plaintext, zeroing the one mutable copy at once.

    Only this ``bytearray`` can be overwritten; the base64 ``str`` it came from (and the
    response body) are immutable and left to the garbage collector (see :mod:`hsm.vault.cache`).
    """
    buffer = bytearray(base64.b64decode(plaintext_b64, validate=True))
    try:
        if len(buffer) != 32:
            raise HsmError("the key Vault decrypted is not a 32-byte SM2 private scalar")
        return SM2PrivateKey.from_scalar(int.from_bytes(buffer, "big"))
    finally:
        for i in range(len(buffer)):
            buffer[i] = 0


def _info_from_data(data: dict) -> dict:
    """A state entry as a freshly stored version has it (rebuilt from the immutable data)."""
    return {"status": KeyState.ACTIVE.value, "public_key": data["public_key"], "created": data["created"],
            "created_by": str(data.get("created_by", ""))[:_CREATED_BY_MAX],
            "origin": data.get("origin", "generated")}


class VaultKeyStore:
    """Versioned SM2 keys in Vault; see the module docstring for the layout and the rules."""

    backend = "vault"

    def __init__(self, connection: VaultConnection, *, kv_mount: str = "secret",
                 transit_mount: str = "transit", transit_key: str = "zhengyin",
                 key_prefix: str = "zhengyin/keys", unwrap_cache_seconds: float = 60,
                 on_event: KeyEventSink | None = None, actor: str | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.connection = connection
        self.kv_mount = kv_mount.strip("/")
        self.transit_mount = transit_mount.strip("/")
        self.transit_key = transit_key
        self.key_prefix = key_prefix.strip("/")
        self.actor = actor or "unknown"
        self._on_event = on_event
        self._cache = UnwrapCache(unwrap_cache_seconds, clock)

    def close(self) -> None:
        """Drop every cached clear key and give up the Vault login; the store is not used again."""
        self._cache.close()
        self.connection.close()

    # ---- plumbing ---------------------------------------------------------------------
    def _emit(self, action: str, label: str, version: int, **details) -> None:
        if self._on_event is not None:
            self._on_event(KeyEvent(action, label, version, details))

    def _path(self, label: str) -> str:
        return f"{self.key_prefix}/{_check_label(label)}"

    def _state(self, label: str) -> StateSecret:
        return StateSecret(self.connection, self.kv_mount, self._path(label), label, ALGORITHM)

    def _metadata(self, label: str) -> dict:
        path = self._path(label)
        try:
            answer = self.connection.call(f"read the metadata of key {label!r}", lambda c: (
                c.secrets.kv.v2.read_secret_metadata(path=path, mount_point=self.kv_mount)))
        except hvac.exceptions.InvalidPath:
            raise KeyNotFound(label) from None
        except hvac.exceptions.InvalidRequest as exc:
            raise KeyStoreBackendError(f"Vault refused to read key {label!r}: {vault_error_text(exc)}") \
                from None
        meta = answer["data"]
        if not meta.get("versions"):
            raise KeyNotFound(label)
        return meta

    def _read_data(self, label: str, version: int) -> dict:
        path = self._path(label)
        try:
            answer = self.connection.call(f"read version {version} of key {label!r}", lambda c: (
                c.secrets.kv.v2.read_secret_version(path=path, version=version, mount_point=self.kv_mount,
                                                    raise_on_deleted_version=True)))
        except hvac.exceptions.InvalidPath:
            raise KeyNotFound(label, version) from None
        except hvac.exceptions.InvalidRequest as exc:
            raise KeyStoreBackendError(f"Vault refused to read version {version} of key {label!r}: "
                                       f"{vault_error_text(exc)}") from None
        data = answer["data"]["data"] or {}
        if data.get("label") != label or data.get("version") != version or data.get("algorithm") != ALGORITHM:
            raise HsmError(f"the Vault secret for version {version} of key {label!r} does not describe that "
                           "key version; it was altered outside this service")
        return data

    def _fill_missing(self, label: str, meta: dict, states: Entries) -> None:
        """Rebuild state entries a failed write left out, from the (immutable) version data."""
        for name, kv in meta["versions"].items():
            number = int(name)
            if number not in states and not kv.get("destroyed") and not kv.get("deletion_time"):
                states[number] = _info_from_data(self._read_data(label, number))

    def _entries(self, label: str, meta: dict, states: Entries) -> list[dict]:
        """Every version with its state, public key and wrapping, in version order."""
        out = []
        for number in sorted(int(n) for n in meta["versions"]):
            kv = meta["versions"][str(number)]
            info = states.get(number)
            if info is None:
                if kv.get("destroyed") or kv.get("deletion_time"):
                    raise HsmError(f"version {number} of key {label!r} has no recorded state and its data is "
                                   "gone from Vault; its public key cannot be recovered here")
                info = _info_from_data(self._read_data(label, number))
            entry = dict(info, version=number)
            if kv.get("destroyed"):
                # Destroyed in Vault; a state that does not know it yet (or still holds a
                # rewrapped copy) is cleaned up by running destroy again.
                entry["erasure_pending"] = info.get("status") != _DESTROYED or "wrapped" in info
                entry["status"] = _DESTROYED
            elif entry["status"] == _DESTROYED:
                entry["erasure_pending"] = True  # the KV destroy did not happen yet
            elif kv.get("deletion_time"):
                entry["deleted_in_vault"] = True
            out.append(entry)
        return out

    def _snapshot(self, label: str) -> tuple[dict, list[dict]]:
        meta = self._metadata(label)
        states, _ = self._state(label).read()
        return meta, self._entries(label, meta, states)

    @staticmethod
    def _pick(label: str, meta: dict, entries: list[dict], version: int | None) -> dict:
        wanted = meta["current_version"] if version is None else version
        for entry in entries:
            if entry["version"] == wanted:
                return entry
        raise KeyNotFound(label, wanted)

    @staticmethod
    def _key_state(entry: dict) -> KeyState:
        if entry.get("deleted_in_vault") and entry["status"] == KeyState.ACTIVE.value:
            return KeyState.DISABLED
        return KeyState(entry["status"])

    def _as_key_version(self, label: str, current: int, entry: dict) -> KeyVersion:
        return KeyVersion(
            label=label, version=entry["version"], state=self._key_state(entry),
            created=datetime.fromisoformat(entry["created"]),
            public_key=SM2PublicKey.from_encoded_point(bytes.fromhex(entry["public_key"])),
            current=entry["version"] == current, origin=entry.get("origin", "generated"))

    # ---- the key secret's settings -------------------------------------------------------
    def _pin_key_metadata(self, label: str, *, with_custom: bool) -> None:
        """max_versions and cas_required on the key secret (and, once, its custom_metadata)."""
        path = self._path(label)
        custom = {"algorithm": ALGORITHM, "label": label, "state": f"{path}/state"} if with_custom else None
        try:
            self.connection.call(f"set up the metadata of key {label!r}", lambda c: (
                c.secrets.kv.v2.update_metadata(path=path, max_versions=MAX_VERSIONS, cas_required=True,
                                                custom_metadata=custom, mount_point=self.kv_mount)))
        except (hvac.exceptions.InvalidRequest, hvac.exceptions.InvalidPath) as exc:
            raise KeyStoreBackendError(f"Vault refused the metadata of key {label!r}: "
                                       f"{vault_error_text(exc) or 'no detail'}") from None

    def _prepare_label(self, label: str) -> None:
        """Before the first version: pin the settings, set up the state, and prove (by writing
        an empty state) that the policy lets this token record states — all before any key."""
        self._pin_key_metadata(label, with_custom=True)
        state = self._state(label)
        state.prepare()

        def reset(entries: Entries) -> bool:
            try:
                self._metadata(label)
            except KeyNotFound:  # still no version: whatever state is left over is stale
                entries.clear()
                return True
            return False  # someone else stored version 1 meanwhile; their data write decides

        state.update(reset)

    # ---- Transit ----------------------------------------------------------------------
    def _transit(self, what: str, request):
        try:
            return self.connection.call(what, request)
        except (hvac.exceptions.InvalidRequest, hvac.exceptions.InvalidPath) as exc:
            raise TransitRefused(f"Vault Transit ({self.transit_mount}/{self.transit_key}) refused to "
                                 f"{what}: {vault_error_text(exc) or 'no detail'}") from None

    def _wrap(self, label: str, key: SM2PrivateKey) -> str:
        plaintext = base64.b64encode(key.private_scalar().to_bytes(32, "big")).decode()
        answer = self._transit(f"wrap a new version of key {label!r}", lambda c: (
            c.secrets.transit.encrypt_data(name=self.transit_key, plaintext=plaintext,
                                           mount_point=self.transit_mount)))
        return answer["data"]["ciphertext"]

    def _unwrap(self, label: str, version: int, ciphertext: str) -> SM2PrivateKey:
        answer = self._transit(f"unwrap version {version} of key {label!r}", lambda c: (
            c.secrets.transit.decrypt_data(name=self.transit_key, ciphertext=ciphertext,
                                           mount_point=self.transit_mount)))
        try:
            return _scalar_from_plaintext(answer["data"]["plaintext"])
        except (ValueError, TypeError, KeyError):
            raise HsmError(f"Vault Transit returned no usable key for version {version} of {label!r}") \
                from None

    def ensure_transit_key(self) -> int:
        """Create the Transit key (aes256-gcm96) if it does not exist; its latest version."""
        try:
            return self.transit_key_version()
        except TransitRefused:
            self._transit("create the wrapping key", lambda c: c.secrets.transit.create_key(
                name=self.transit_key, key_type="aes256-gcm96", mount_point=self.transit_mount))
            return self.transit_key_version()

    def transit_key_version(self) -> int:
        answer = self._transit("read the wrapping key", lambda c: c.secrets.transit.read_key(
            name=self.transit_key, mount_point=self.transit_mount))
        return int(answer["data"]["latest_version"])

    def rotate_transit_key(self) -> int:
        """``POST <transit>/keys/<key>/rotate``: new wraps use the new version; run :meth:`rewrap_all`."""
        before = self.transit_key_version()
        self._transit("rotate the wrapping key", lambda c: c.secrets.transit.rotate_key(
            name=self.transit_key, mount_point=self.transit_mount))
        after = self.transit_key_version()
        self._emit("key.transit_rotate", self.transit_key, after, previous_version=before)
        return after

    # ---- writing versions -------------------------------------------------------------
    def _store_version(self, label: str, key: SM2PrivateKey, origin: str, meta: dict | None) -> KeyVersion:
        current = meta["current_version"] if meta else 0
        if current >= MAX_VERSIONS:
            raise KeyStoreBackendError(f"key {label!r} has {current} versions, the most the vault backend "
                                       "keeps per label; generate a new label for further keys")
        if meta is None:
            self._prepare_label(label)
        elif meta.get("max_versions") != MAX_VERSIONS or not meta.get("cas_required"):
            self._pin_key_metadata(label, with_custom=False)  # repaired before KV could prune a version
        ciphertext = self._wrap(label, key)
        version = current + 1
        public_hex = key.public_key().encoded_point().hex()
        data = {"algorithm": ALGORITHM, "format": PLAINTEXT_FORMAT, "ciphertext": ciphertext,
                "transit_mount": self.transit_mount, "transit_key": self.transit_key,
                "public_key": public_hex, "label": label, "version": version, "created": _now(),
                "created_by": self.actor, "origin": origin}
        path = self._path(label)
        try:
            answer = self.connection.call(f"store version {version} of key {label!r}", lambda c: (
                c.secrets.kv.v2.create_or_update_secret(path=path, secret=data, cas=current,
                                                        mount_point=self.kv_mount)))
        except hvac.exceptions.InvalidRequest as exc:
            if "check-and-set" in vault_error_text(exc) and current == 0:
                raise KeyExists(label) from None
            if "check-and-set" in vault_error_text(exc):
                raise KeyStoreConflict(f"key {label!r} was rotated by someone else meanwhile; nothing was "
                                       "written, try again") from None
            raise KeyStoreBackendError(f"Vault refused to store key {label!r}: {vault_error_text(exc)}") \
                from None
        except hvac.exceptions.InvalidPath:
            raise KeyStoreBackendError(f"the KV v2 mount {self.kv_mount!r} does not exist in Vault") from None
        if answer["data"]["version"] != version:
            raise HsmError(f"Vault stored key {label!r} as version {answer['data']['version']}, "
                           f"not {version}")
        # The data is authoritative from here on: the version exists and can sign. Its state
        # entry carries the status and keeps the public key through a destroy. A transient
        # failure to record it now is tolerated — the entry is rebuilt from the data on every
        # read and written with the next state change — but a refusal is not hidden.
        info = _info_from_data(data)

        def record(entries: Entries) -> bool:
            if version in entries:
                return False  # already recorded (rebuilt from the data and changed by someone)
            entries[version] = dict(info)
            return True

        try:
            self._state(label).update(record)
        except KeyStorePermissionDenied as exc:
            raise KeyStorePermissionDenied(f"version {version} of key {label!r} was stored but its state "
                                           f"could not be recorded: {exc}") from None
        except (KeyStoreUnavailable, KeyStoreConflict):
            pass
        self._cache.put(label, version, key)
        return self._as_key_version(label, version, dict(info, version=version))

    # ---- KeyStore protocol --------------------------------------------------------------
    def generate(self, label: str) -> KeyVersion:
        if self.exists(label):
            raise KeyExists(label)
        kv = self._store_version(label, SM2PrivateKey.generate(), "generated", None)
        self._emit("key.generate", label, kv.version, public_key=kv.public_key.encoded_point().hex())
        return kv

    def import_key(self, label: str, private_key_data: bytes, password: bytes | None = None, *,
                   as_new_version: bool = False) -> KeyVersion:
        """Import from PEM/DER PKCS#8 (encrypted or not), SEC1 or PKCS#12 (as the soft store)."""
        key = _load_any_private_key(private_key_data, password)
        try:
            meta = self._metadata(label)
        except KeyNotFound:
            meta = None
        if meta is not None and not as_new_version:
            raise KeyExists(label)
        kv = self._store_version(label, key, "imported", meta)
        self._emit("key.import", label, kv.version, public_key=kv.public_key.encoded_point().hex())
        return kv

    def rotate(self, label: str) -> KeyVersion:
        meta = self._metadata(label)
        kv = self._store_version(label, SM2PrivateKey.generate(), "generated", meta)
        self._emit("key.rotate", label, kv.version, previous_version=meta["current_version"],
                   public_key=kv.public_key.encoded_point().hex())
        return kv

    def _private(self, label: str, version: int | None, operation: str) -> SM2PrivateKey:
        meta, entries = self._snapshot(label)
        entry = self._pick(label, meta, entries, version)
        number = entry["version"]
        if entry.get("deleted_in_vault") and entry["status"] != _DESTROYED:
            raise KeyUnavailable(label, number, _DELETED_IN_VAULT, operation)
        if entry["status"] != KeyState.ACTIVE.value:
            raise KeyUnavailable(label, number, entry["status"], operation)
        key = self._cache.get(label, number)
        if key is None:
            ciphertext = entry.get("wrapped") or self._read_data(label, number)["ciphertext"]
            key = self._unwrap(label, number, ciphertext)
            if key.public_key().encoded_point().hex() != entry["public_key"]:
                raise HsmError(f"the key Vault unwrapped for version {number} of {label!r} does not match "
                               "its public key; the stored ciphertext was replaced")
            self._cache.put(label, number, key)
            self._emit("key.unwrap", label, number, cached_seconds=self._cache.seconds)
        return key

    def sign(self, label: str, data: bytes, version: int | None = None,
             uid: bytes = DEFAULT_UID) -> bytes:
        return self._private(label, version, "sign").sign(data, uid)

    def sign_digest(self, label: str, e: bytes, version: int | None = None) -> bytes:
        """Sign a precomputed e = SM3(Z_A || M)."""
        return self._private(label, version, "sign").sign_digest(e)

    def public_key(self, label: str, version: int | None = None) -> SM2PublicKey:
        meta, entries = self._snapshot(label)
        return SM2PublicKey.from_encoded_point(bytes.fromhex(self._pick(label, meta, entries, version)
                                                             ["public_key"]))

    def versions(self, label: str) -> list[KeyVersion]:
        meta, entries = self._snapshot(label)
        return [self._as_key_version(label, meta["current_version"], e) for e in entries]

    def labels(self) -> list[str]:
        prefix = self.key_prefix
        try:
            answer = self.connection.call("list the keys", lambda c: c.secrets.kv.v2.list_secrets(
                path=prefix, mount_point=self.kv_mount))
        except hvac.exceptions.InvalidPath:
            return []
        except hvac.exceptions.InvalidRequest as exc:
            raise KeyStoreBackendError(f"Vault refused to list the keys: {vault_error_text(exc)}") from None
        return sorted(name for name in answer["data"]["keys"] if not name.endswith("/"))

    def list(self) -> list[KeyVersion]:
        out: list[KeyVersion] = []
        for label in self.labels():
            try:
                out.extend(self.versions(label))
            except KeyNotFound:
                continue  # metadata left without versions (deleted in Vault, or a generate that failed)
        return out

    def exists(self, label: str) -> bool:
        try:
            self._metadata(label)
        except KeyNotFound:
            return False
        return True

    def _set_state(self, label: str, version: int, state: KeyState, action: str) -> KeyVersion:
        meta = self._metadata(label)
        if str(version) not in meta["versions"]:
            raise KeyNotFound(label, version)
        destroyed_in_kv = bool(meta["versions"][str(version)].get("destroyed"))
        seen: dict = {}

        def change(entries: Entries) -> bool:
            self._fill_missing(label, meta, entries)
            entry = entries.get(version)
            if entry is None:
                raise HsmError(f"version {version} of key {label!r} has no recorded state and its data is "
                               "gone from Vault; its public key cannot be recovered here")
            was = _DESTROYED if destroyed_in_kv else entry["status"]
            if was == _DESTROYED and state is not KeyState.DESTROYED:
                raise KeyUnavailable(label, version, "destroyed", "change its state")
            seen["previous"] = was
            entry["status"] = state.value
            if state is KeyState.DESTROYED:
                entry.pop("wrapped", None)  # no decryptable copy outlives the destroy
            seen["entry"] = dict(entry, version=version)
            return True

        store_state = self._state(label)
        store_state.update(change)
        self._cache.drop(label, version)
        if state is KeyState.DESTROYED:
            store_state.destroy_history()
            if not destroyed_in_kv:
                path = self._path(label)
                try:
                    self.connection.call(f"destroy version {version} of key {label!r}", lambda c: (
                        c.secrets.kv.v2.destroy_secret_versions(path=path, versions=[version],
                                                                mount_point=self.kv_mount)))
                except (hvac.exceptions.InvalidRequest, hvac.exceptions.InvalidPath) as exc:
                    raise KeyStoreBackendError(f"Vault refused to destroy version {version} of key {label!r} "
                                               f"(it no longer signs; run destroy again to erase its data): "
                                               f"{vault_error_text(exc)}") from None
        self._emit(action, label, version, previous_state=seen["previous"])
        return self._as_key_version(label, meta["current_version"], seen["entry"])

    def disable(self, label: str, version: int) -> KeyVersion:
        return self._set_state(label, version, KeyState.DISABLED, "key.disable")

    def enable(self, label: str, version: int) -> KeyVersion:
        return self._set_state(label, version, KeyState.ACTIVE, "key.enable")

    def destroy(self, label: str, version: int) -> KeyVersion:
        """Erase a version; also completes a destroy that Vault interrupted (see the module doc)."""
        return self._set_state(label, version, KeyState.DESTROYED, "key.destroy")

    def signer(self, label: str, version: int | None = None) -> KeyRef:
        meta, entries = self._snapshot(label)
        entry = self._pick(label, meta, entries, version)
        return KeyRef(self, label, entry["version"],
                      SM2PublicKey.from_encoded_point(bytes.fromhex(entry["public_key"])))

    # ---- Transit rotation ---------------------------------------------------------------
    def rewrap_all(self) -> RewrapResult:
        """Rewrap every stored ciphertext under the newest Transit key version.

        KV versions are immutable, and a new KV version would break "one KV version per key
        version", so the rewrapped ciphertext goes into the version's state entry ("wrapped"),
        which unwrapping prefers; it is recorded with check-and-set, never over a destroy or
        a state change made meanwhile. The original ciphertext in the KV data stays under the
        old Transit version: once :attr:`RewrapResult.complete`, the operator can raise the
        Transit key's ``min_decryption_version`` and the old wraps are dead. A ciphertext
        Transit refuses (e.g. "too old" after that was raised too early) is listed in
        ``skipped`` and the others go on; so are versions deleted in Vault and destroys that
        Vault interrupted.
        """
        latest = self.transit_key_version()
        result = RewrapResult(self.transit_key, latest)
        for label in self.labels():
            try:
                _, entries = self._snapshot(label)
            except KeyNotFound:
                continue
            planned: dict[int, tuple[str, int]] = {}
            for entry in entries:
                number = entry["version"]
                if entry["status"] == _DESTROYED:
                    why = ("destroyed, but not yet erased: run destroy again" if entry.get("erasure_pending")
                           else _DESTROYED)
                    result.skipped.append((label, number, why))
                    continue
                ciphertext = entry.get("wrapped")
                if ciphertext is None:
                    if entry.get("deleted_in_vault"):
                        result.skipped.append((label, number, f"{_DELETED_IN_VAULT}: undelete it to rewrap"))
                        continue
                    ciphertext = self._read_data(label, number)["ciphertext"]
                source = _transit_version(ciphertext)
                if source >= latest:
                    result.up_to_date.append((label, number))
                    continue
                try:
                    answer = self._transit(f"rewrap version {number} of key {label!r}",
                                           lambda c, ct=ciphertext: c.secrets.transit.rewrap_data(
                                               name=self.transit_key, ciphertext=ct,
                                               mount_point=self.transit_mount))
                except TransitRefused as exc:
                    result.skipped.append((label, number, str(exc)))
                    continue
                planned[number] = (answer["data"]["ciphertext"], source)
            if planned:
                self._record_rewraps(label, latest, planned, result)
        return result

    def _record_rewraps(self, label: str, latest: int, planned: dict[int, tuple[str, int]],
                        result: RewrapResult) -> None:
        applied: dict[int, str] = {}

        def change(entries: Entries) -> bool:
            applied.clear()
            fresh = self._metadata(label)  # a version destroyed in Vault meanwhile gets no copy
            self._fill_missing(label, fresh, entries)
            for number, (ciphertext, _) in planned.items():
                entry = entries.get(number)
                kv = fresh["versions"].get(str(number)) or {}
                if entry is None or kv.get("destroyed") or entry["status"] == _DESTROYED:
                    applied[number] = "destroyed"
                elif entry.get("wrapped") and _transit_version(entry["wrapped"]) >= latest:
                    applied[number] = "up to date"  # another node rewrapped it meanwhile
                else:
                    entry["wrapped"] = ciphertext
                    applied[number] = "rewrapped"
            return "rewrapped" in applied.values()

        self._state(label).update(change)
        for number, (_, source) in sorted(planned.items()):
            outcome = applied.get(number)
            if outcome == "rewrapped":
                result.rewrapped.append((label, number, source))
                self._emit("key.rewrap", label, number, transit_key=self.transit_key, transit_version=latest)
            elif outcome == "up to date":
                result.up_to_date.append((label, number))
            else:
                result.skipped.append((label, number, _DESTROYED))

    def __repr__(self) -> str:
        return (f"VaultKeyStore({self.connection.address!r}, kv={self.kv_mount!r}, "
                f"transit={self.transit_mount}/{self.transit_key})")
