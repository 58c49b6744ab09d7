"""The composition root: one home's settings, database, audit log, key store, CA and seal office.

Everything the command line (and later the HTTP services) does starts by opening a
:class:`TrustDomain`; it wires the lower rooms together so that, for instance, every key
event lands in the audit log without hsm/ knowing that an audit log exists.
"""

from __future__ import annotations

import os
import pwd
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ca.authority import AuthorityPolicy, CertificateAuthority
from hsm.keystore import KeyEvent
from hsm.soft import SoftKeyStore
from ledger.audit import AuditLog
from ledger.config import ConfigError, Settings, load_settings
from ledger.database import Database
from seals.office import SealOffice

if TYPE_CHECKING:
    from hsm.vault import VaultKeyStore


#: Development only: who a command-line session acts as (tests and demos play two officers).
ACTOR_VARIABLE = "ZHENGYIN_ACTOR"


class ActorError(ConfigError):
    """Who is acting cannot be told (or may not be told this way)."""


def os_account() -> str:
    """The OS account this process runs as (its effective user), from the system's user
    database — not LOGNAME or USER, which anyone can set to another officer's name."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:  # an account the user database does not know (a bare container uid)
        return str(uid)


def default_actor(settings: Settings | None = None) -> str:
    """Who acts, for the audit log and dual control: ``cli:<OS account>``.

    In development ``ZHENGYIN_ACTOR`` may name someone else (a test or demo playing two
    officers); in production it is never honoured: the identity is the OS account.
    """
    production = settings is not None and settings.production
    override = os.environ.get(ACTOR_VARIABLE, "").strip()
    if override and production:
        raise ActorError(f"{ACTOR_VARIABLE} is honoured only in development: in production you act as "
                         f"your OS account ({os_account()}); unset {ACTOR_VARIABLE}")
    if override:
        if len(override) > 64 or not override.isprintable() or ":" in override or " " in override:
            raise ActorError(f"{ACTOR_VARIABLE} must be an account name (no spaces or colons), "
                             f"not {override[:70]!r}")
        return f"cli:{override}"
    return f"cli:{os_account()}"


#: The parts an actor's view shares with the domain it was made from: they hold connections,
#: pools, caches or loaded data, and record no actor of their own for the acts a view performs.
SHARED_PARTS = ("db", "audit", "keys", "catalogue")


@dataclass
class TrustDomain:
    settings: Settings
    actor: str
    #: The domain this one is a view of (:meth:`acting_as`); None for a domain that owns its parts.
    view_of: TrustDomain | None = field(default=None, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @classmethod
    def open(cls, home: str | None = None, *, actor: str | None = None) -> TrustDomain:
        settings = load_settings(home)
        return cls(settings, actor or default_actor(settings))

    def acting_as(self, actor: str) -> TrustDomain:
        """This domain as ``actor``: the same database engine, audit log, key store and
        catalogue (made once, here, if they were not yet), with its own CA, seal office,
        licence library and desk, which are light objects that record ``actor`` for every act.

        A service serving many callers keeps one domain and makes a view per request: nothing
        per caller outlives the request, and closing a view closes nothing — the domain it
        came from owns the connections. Key-store events (a Vault unwrap, say) are process
        level and stay recorded under this domain's actor.
        """
        owner = self.view_of or self
        with owner._lock:  # cached_property is not thread-safe: make each shared part once
            shared = {name: getattr(owner, name) for name in SHARED_PARTS}
        view = TrustDomain(owner.settings, actor, view_of=owner)
        view.__dict__.update(shared)
        return view

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.db)

    @cached_property
    def keys(self) -> SoftKeyStore | VaultKeyStore:
        """The configured key store (``keys.backend``): encrypted files, or HashiCorp Vault."""
        if self.settings.key_backend == "vault":
            return self._vault_keys()
        return SoftKeyStore(self.settings.keys_dir, self.settings.key_passphrase(),
                            on_event=self._record_key_event)

    def _vault_keys(self) -> VaultKeyStore:
        from hsm.vault import AppRoleAuth, TokenAuth, VaultConnection, VaultKeyStore

        vault = self.settings.vault
        if vault.auth_method == "approle":
            vault.secret_id()  # fail now, with the setting to fix, rather than at the first signature
            auth = AppRoleAuth(vault.role_id, vault.secret_id, mount=vault.approle_mount)
        else:
            auth = TokenAuth(vault.token())
        connection = VaultConnection(vault.address, auth, namespace=vault.namespace,
                                     ca_bundle=vault.ca_bundle, timeout=vault.timeout_seconds)
        return VaultKeyStore(connection, kv_mount=vault.kv_mount, transit_mount=vault.transit_mount,
                             transit_key=vault.transit_key, key_prefix=vault.key_prefix,
                             unwrap_cache_seconds=vault.unwrap_cache_seconds,
                             on_event=self._record_key_event, actor=self.actor)

    @cached_property
    def ca(self) -> CertificateAuthority:
        policy = AuthorityPolicy(crl_base_url=self.settings.crl_base_url, ocsp_url=self.settings.ocsp_url)
        return CertificateAuthority(self.db, self.keys, self.audit, actor=self.actor, policy=policy)

    @cached_property
    def seals(self) -> SealOffice:
        return SealOffice(self.db, self.keys, self.ca, self.audit, actor=self.actor)

    @cached_property
    def licences(self):
        """The licence library (证照库): registry rows here, documents under the home."""
        from licences.lifecycle import LicenceLibrary
        from licences.storage import DocumentStore

        return LicenceLibrary(self.db, self.audit, DocumentStore(self.settings.home / "documents"),
                              actor=self.actor)

    @property
    def qr_base(self) -> str:
        """The base URL of this home's licence QR codes: the public verification service answers
        them at ``/V/<payload>`` (upper case: QR alphanumeric mode). What the desk prints and what
        ``verify-qr`` expects of a code (checked when used, by licences.qr_url.verification_base)."""
        return self.settings.public_url.rstrip("/") + "/V/"

    @cached_property
    def licence_desk(self):
        """Issuing licences with this home's seals, QR codes pointing at the public service."""
        from licences.issuance import LicenceDesk

        return LicenceDesk(self.catalogue, self.licences, self.seals, base_url=self.qr_base)

    @cached_property
    def catalogue(self):
        """The licence types (read once from licences/types)."""
        from licences.catalogue import Catalogue

        return Catalogue.load()

    def verification_trust(self):
        """What a verifier on this home trusts: the root as anchor, the issuing CA, the CRLs the
        CA has published and its seal makers. Read-only: nothing is signed or written."""
        from ca.authority import certificate_of
        from ca.crl import load_crl

        from .validation import TrustContext, licence_registry_proof

        ca = self.ca
        if not self.db.table_names() or ca.root() is None or ca.issuing() is None:
            return TrustContext()
        # Every live CA certificate: after a CA rotation the old ones still vouch for what they
        # signed (and the old root anchors the paths made before a root rotation).
        roots = tuple(certificate_of(r) for r in ca.live_ca_certificates("root"))
        issuing = tuple(certificate_of(r) for r in ca.live_ca_certificates("issuing"))
        crls = tuple(load_crl(record.der) for record in ca.latest_crls())
        makers = tuple(certificate_of(r) for r in ca.certificates(profile="seal-maker"))
        return TrustContext(anchors=roots, intermediates=issuing, crls=crls, seal_makers=makers,
                            seal_histories=self.seals.histories(),
                            registry_proof=licence_registry_proof(self.db))

    def _record_key_event(self, event: KeyEvent) -> None:
        self.audit.record(event.action, actor=self.actor,
                          subject=f"key:{event.label}/v{event.version}", details=event.details)

    def close(self) -> None:
        """Release the database engine and the key store (a Vault store drops its cached clear
        keys and revokes its login); a view (:meth:`acting_as`) leaves its owner's open."""
        if self.view_of is not None:
            return
        keys = self.__dict__.get("keys")
        if keys is not None and hasattr(keys, "close"):
            keys.close()
        if "db" in self.__dict__:
            self.db.dispose()
