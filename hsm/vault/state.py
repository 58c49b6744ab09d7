"""The mutable state of one key label — per version status and rewrapped ciphertext — kept
where Vault offers check-and-set.

Why a KV v2 secret of its own (``<prefix>/<label>/state``) and not the key secret's
``custom_metadata``: Vault has no check-and-set on metadata (POST replaces the whole map), so
two writers that each read the map and write it back lose one another's change — a disabled
key comes back, a destroyed key's wrapped copy comes back, a rewrap is lost. KV *data* writes
take ``options.cas`` (https://developer.hashicorp.com/vault/api-docs/secret/kv/kv-v2#create-update-secret):
a write based on a stale read is refused with "check-and-set parameter did not match the
current version". :meth:`StateSecret.update` reads, lets the operation change only the entries
it owns, writes with ``cas`` = the version it read, and on a refusal reads again and re-applies
the change to the fresh state (with a short random pause, so two writers do not collide in
lockstep). PATCH on metadata (Vault >= 1.10) would merge keys server-side but still lets a
writer act on a stale view (re-enable what was destroyed meanwhile); check-and-set does not.

The state secret keeps only its latest version (``max_versions`` = 1): older versions would
hold rewrapped ciphertexts a destroy has removed, and KV deletes versions beyond
``max_versions`` for good. :meth:`StateSecret.destroy_history` destroys any older version
still there (should someone have raised ``max_versions``), as part of destroying a key.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable

import hvac.exceptions

from ..errors import KeyStoreBackendError, KeyStoreConflict
from .connection import VaultConnection, vault_error_text

STATE_LEAF = "state"
#: How often an update is re-applied to a fresh read before giving up (KeyStoreConflict).
STATE_RETRIES = 10

Entries = dict[int, dict]


class StateSecret:
    """``<kv>/data/<prefix>/<label>/state``: {"label", "algorithm", "versions": {"<N>": entry}}."""

    def __init__(self, connection: VaultConnection, kv_mount: str, key_path: str, label: str, algorithm: str):
        self.connection = connection
        self.kv_mount = kv_mount
        self.path = f"{key_path}/{STATE_LEAF}"
        self.label = label
        self.algorithm = algorithm

    def _refused(self, doing: str, exc: hvac.exceptions.VaultError) -> KeyStoreBackendError:
        return KeyStoreBackendError(f"Vault refused to {doing} the state of key {self.label!r}: "
                                    f"{vault_error_text(exc) or 'no detail'}")

    def prepare(self) -> None:
        """Pin ``max_versions`` = 1 and ``cas_required`` before the first state is written."""
        try:
            self.connection.call(f"set up the state of key {self.label!r}", lambda c: (
                c.secrets.kv.v2.update_metadata(path=self.path, max_versions=1, cas_required=True,
                                                mount_point=self.kv_mount)))
        except (hvac.exceptions.InvalidRequest, hvac.exceptions.InvalidPath) as exc:
            raise self._refused("set up", exc) from None

    def read(self) -> tuple[Entries, int]:
        """The entries and the state secret's current version (0: none written yet)."""
        try:
            answer = self.connection.call(f"read the state of key {self.label!r}", lambda c: (
                c.secrets.kv.v2.read_secret_version(path=self.path, mount_point=self.kv_mount,
                                                    raise_on_deleted_version=True)))
        except hvac.exceptions.InvalidPath:
            return {}, self._current_version()
        except hvac.exceptions.InvalidRequest as exc:
            raise self._refused("read", exc) from None
        data = answer["data"]["data"] or {}
        if data.get("label") != self.label:
            raise KeyStoreBackendError(f"the state secret of key {self.label!r} names another key; it was "
                                       "altered outside this service")
        entries = {int(n): dict(e) for n, e in (data.get("versions") or {}).items() if isinstance(e, dict)}
        return entries, int(answer["data"]["metadata"]["version"])

    def _current_version(self) -> int:
        """After a 404 on the data: 0, or the version a deleted latest state still counts for cas."""
        try:
            answer = self.connection.call(f"read the state metadata of key {self.label!r}", lambda c: (
                c.secrets.kv.v2.read_secret_metadata(path=self.path, mount_point=self.kv_mount)))
        except hvac.exceptions.InvalidPath:
            return 0
        except hvac.exceptions.InvalidRequest as exc:
            raise self._refused("read", exc) from None
        return int(answer["data"].get("current_version") or 0)

    def update(self, change: Callable[[Entries], bool]) -> Entries:
        """Apply ``change`` (which edits only the entries its operation owns and says whether
        anything changed) to the latest state and write it with check-and-set; on a lost race
        read again and re-apply. Exceptions from ``change`` propagate, nothing written."""
        for attempt in range(STATE_RETRIES):
            entries, cas = self.read()
            if not change(entries):
                return entries
            document = {"label": self.label, "algorithm": self.algorithm,
                        "versions": {str(n): entries[n] for n in sorted(entries)}}
            try:
                what = f"record the state of key {self.label!r}"
                self.connection.call(what, lambda c, cas=cas, document=document: (
                    c.secrets.kv.v2.create_or_update_secret(path=self.path, secret=document, cas=cas,
                                                            mount_point=self.kv_mount)))
            except hvac.exceptions.InvalidRequest as exc:
                if "check-and-set" not in vault_error_text(exc):
                    raise self._refused("record", exc) from None
                time.sleep(random.uniform(0, 0.02 * (attempt + 1)))  # noqa: S311 - a back-off, not a secret
                continue
            except hvac.exceptions.InvalidPath:
                raise KeyStoreBackendError(f"the KV v2 mount {self.kv_mount!r} does not exist in Vault") \
                    from None
            return entries
        raise KeyStoreConflict(f"the state of key {self.label!r} kept changing under this operation "
                               f"({STATE_RETRIES} attempts); nothing of it was recorded, try again")

    def destroy_history(self) -> None:
        """Destroy every version of the state secret but the latest (see the module docstring)."""
        try:
            answer = self.connection.call(f"read the state metadata of key {self.label!r}", lambda c: (
                c.secrets.kv.v2.read_secret_metadata(path=self.path, mount_point=self.kv_mount)))
        except hvac.exceptions.InvalidPath:
            return
        except hvac.exceptions.InvalidRequest as exc:
            raise self._refused("read", exc) from None
        meta = answer["data"]
        current = int(meta.get("current_version") or 0)
        older = [int(n) for n, v in (meta.get("versions") or {}).items()
                 if int(n) != current and not v.get("destroyed")]
        if meta.get("max_versions") != 1:
            self.prepare()
        if older:
            try:
                self.connection.call(f"destroy old states of key {self.label!r}", lambda c: (
                    c.secrets.kv.v2.destroy_secret_versions(path=self.path, versions=sorted(older),
                                                            mount_point=self.kv_mount)))
            except (hvac.exceptions.InvalidRequest, hvac.exceptions.InvalidPath) as exc:
                raise self._refused("destroy old versions of", exc) from None
