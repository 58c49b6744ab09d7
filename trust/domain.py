"""The composition root: one home's settings, database, audit log, key store, CA and seal office.

Everything the command line (and later the HTTP services) does starts by opening a
:class:`TrustDomain`; it wires the lower rooms together so that, for instance, every key
event lands in the audit log without hsm/ knowing that an audit log exists.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from functools import cached_property

from ca.authority import AuthorityPolicy, CertificateAuthority
from hsm.keystore import KeyEvent
from hsm.soft import SoftKeyStore
from ledger.audit import AuditLog
from ledger.config import Settings, load_settings
from ledger.database import Database
from seals.office import SealOffice


def default_actor() -> str:
    """Who acts, for the audit log: the OS user of a command-line session."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}"


@dataclass
class TrustDomain:
    settings: Settings
    actor: str

    @classmethod
    def open(cls, home: str | None = None, *, actor: str | None = None) -> TrustDomain:
        return cls(load_settings(home), actor or default_actor())

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database_url)

    @cached_property
    def audit(self) -> AuditLog:
        return AuditLog(self.db)

    @cached_property
    def keys(self) -> SoftKeyStore:
        return SoftKeyStore(self.settings.keys_dir, self.settings.key_passphrase(),
                            on_event=self._record_key_event)

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

    @cached_property
    def licence_desk(self):
        """Issuing licences with this home's seals, QR codes pointing at the public service."""
        from licences.catalogue import Catalogue
        from licences.issuance import LicenceDesk

        # The public service answers QR codes at /V/<payload> (upper case: QR alphanumeric mode).
        base = self.settings.public_url.rstrip("/") + "/V/"
        return LicenceDesk(Catalogue.load(), self.licences, self.seals, base_url=base)

    def verification_trust(self):
        """What a verifier on this home trusts: the root as anchor, the issuing CA, the CRLs the
        CA has published and its seal makers. Read-only: nothing is signed or written."""
        from ca.authority import certificate_of
        from ca.crl import load_crl

        from .validation import TrustContext

        ca = self.ca
        if not self.db.table_names() or ca.root() is None or ca.issuing() is None:
            return TrustContext()
        issuing, root = ca.chain()
        published = (ca.latest_crl("issuing"), ca.latest_crl("root"))
        crls = tuple(load_crl(record.der) for record in published if record is not None)
        makers = tuple(certificate_of(r) for r in ca.certificates(profile="seal-maker"))
        return TrustContext(anchors=(root,), intermediates=(issuing,), crls=crls, seal_makers=makers,
                            seal_histories=self.seals.histories())

    def _record_key_event(self, event: KeyEvent) -> None:
        self.audit.record(event.action, actor=self.actor,
                          subject=f"key:{event.label}/v{event.version}", details=event.details)

    def close(self) -> None:
        if "db" in self.__dict__:
            self.db.dispose()
