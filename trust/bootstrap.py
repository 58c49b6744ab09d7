"""Building the development trust domain in a home (``zhengyin init``).

Idempotent: each step looks for what it would create and keeps what exists, and the
result says which items were created and which were already there.
"""

from __future__ import annotations

import base64
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import x509

from ca.authority import utc_now
from ledger.config import CONFIG_FILE, load_settings

from .domain import TrustDomain

PASSPHRASE_FILE = "secrets/keystore.pass"  # noqa: S105 - a path, not a password

_CONFIG_TEMPLATE = """\
# zhengyin home configuration (written by `zhengyin init`).
# Environment variables override these: ZHENGYIN_ENV (which can make a home production but
# never turn a production home back), ZHENGYIN_DATABASE_URL, ZHENGYIN_KEY_PASSPHRASE,
# ZHENGYIN_KEY_PASSPHRASE_FILE.
[zhengyin]
env = "development"

[keys]
backend = "soft"
dir = "keys"
# Development only: a random passphrase in a file beside the keys. In production, supply it
# through ZHENGYIN_KEY_PASSPHRASE from a secret manager instead.
passphrase_file = "{passphrase_file}"

[ca]
# Where relying parties fetch the issuing CA's CRL and ask OCSP (written into certificates).
crl_base_url = "{crl_base_url}"
ocsp_url = "{ocsp_url}"
"""


@dataclass
class InitReport:
    home: Path
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)

    def note(self, item: str, created: bool) -> None:
        (self.created if created else self.existing).append(item)

    def as_dict(self) -> dict:
        return {"home": str(self.home), "created": self.created, "existing": self.existing}


def _write_new(path: Path, data: bytes, mode: int) -> bool:
    """Create ``path`` with ``data`` unless it exists; True if created."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return True


def prepare_home(home: str | None) -> InitReport:
    """Home directory, configuration file and development passphrase."""
    from keys_dev import ensure_development

    settings = load_settings(home)
    ensure_development(settings.env)
    from keys_dev import domain as dev

    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    report = InitReport(settings.home)
    report.note(f"config {settings.home / CONFIG_FILE}", _write_new(
        settings.home / CONFIG_FILE,
        _CONFIG_TEMPLATE.format(passphrase_file=PASSPHRASE_FILE, crl_base_url=dev.CRL_BASE_URL,
                                ocsp_url=dev.OCSP_URL).encode(), 0o600))
    passphrase = base64.b64encode(secrets.token_bytes(32)) + b"\n"
    report.note("development key passphrase", _write_new(settings.home / PASSPHRASE_FILE, passphrase, 0o600))
    return report


def initialise(home: str | None = None, actor: str | None = None) -> InitReport:
    """Create (or complete) the development trust domain in ``home``."""
    from keys_dev import domain as dev

    report = prepare_home(home)
    td = TrustDomain.open(str(report.home), actor=actor)
    try:
        before = td.db.current_revision() if td.db.table_names() else None
        td.db.migrate()
        report.note(f"database {td.db.safe_url}", before != td.db.current_revision())
        for party in dev.KEYED_PARTIES:
            exists = td.keys.exists(party.key_label)
            if not exists:
                td.keys.generate(party.key_label)
            report.note(f"key {party.key_label}", not exists)
        _certify(td, report)
        _make_demo_seals(td, report)
    finally:
        td.close()
    return report


def _name(party) -> x509.Name:
    from ca.names import subject_name

    return subject_name(party.common_name, organisation=party.name, credit_code=party.credit_code)


def _certify(td: TrustDomain, report: InitReport) -> None:
    """Root, issuing CA, and one certificate per development party, unless valid ones exist."""
    from keys_dev import domain as dev

    ca = td.ca
    root = ca.root()
    report.note("root CA certificate", root is None)
    if root is None:
        ca.create_root(dev.ROOT_CA.key_label, _name(dev.ROOT_CA))
    issuing = ca.issuing()
    report.note("issuing CA certificate", issuing is None)
    if issuing is None:
        ca.create_issuing(dev.ISSUING_CA.key_label, _name(dev.ISSUING_CA))
    for profile, party in dev.CERTIFIED_PARTIES:
        have = [r for r in ca.certificates(profile=profile, include_revoked=False)
                if r.key_label == party.key_label and r.not_after > utc_now()]
        report.note(f"{profile} certificate for {party.common_name}", not have)
        if not have:
            ca.issue(profile, _name(party), key_label=party.key_label)
    for which in ("root", "issuing"):
        before = ca.latest_crl(which)
        crl = ca.current_crl(which)
        report.note(f"{which} CA CRL number {crl.number}", before is None or before.id != crl.id)


def _make_demo_seals(td: TrustDomain, report: InitReport) -> None:
    """The demo department's seals, each applied, approved, made and activated, unless an
    active one of that kind exists. Approval is the same person here: development only."""
    from keys_dev import domain as dev

    office = td.seals
    for demo in dev.DEMO_SEALS:
        active = office.seals(demo.credit_code, "active", kind=demo.kind)
        if active:
            report.note(f"{demo.kind} seal {active[0].name} ({active[0].es_id})", False)
            continue
        record = office.apply(demo.department, demo.credit_code, demo.kind)
        office.approve(record.es_id, reason="development trust domain (zhengyin init)")
        office.make(record.es_id)
        record = office.activate(record.es_id)
        report.note(f"{demo.kind} seal {record.name} ({record.es_id})", True)
