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

from ledger.config import CONFIG_FILE, load_settings

from .domain import TrustDomain

PASSPHRASE_FILE = "secrets/keystore.pass"  # noqa: S105 - a path, not a password

_CONFIG_TEMPLATE = """\
# zhengyin home configuration (written by `zhengyin init`).
# Environment variables override these: ZHENGYIN_ENV, ZHENGYIN_DATABASE_URL,
# ZHENGYIN_KEY_PASSPHRASE, ZHENGYIN_KEY_PASSPHRASE_FILE.
[zhengyin]
env = "development"

[keys]
backend = "soft"
dir = "keys"
# Development only: a random passphrase in a file beside the keys. In production, supply it
# through ZHENGYIN_KEY_PASSPHRASE from a secret manager instead.
passphrase_file = "{passphrase_file}"
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
    settings.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    report = InitReport(settings.home)
    report.note(f"config {settings.home / CONFIG_FILE}", _write_new(
        settings.home / CONFIG_FILE,
        _CONFIG_TEMPLATE.format(passphrase_file=PASSPHRASE_FILE).encode(), 0o600))
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
        for party in (dev.ROOT_CA, dev.ISSUING_CA, dev.SEAL_MAKER, dev.OCSP_RESPONDER,
                      dev.TIME_STAMPING, dev.DEMO_SIGNER):
            exists = td.keys.exists(party.key_label)
            if not exists:
                td.keys.generate(party.key_label)
            report.note(f"key {party.key_label}", not exists)
    finally:
        td.close()
    return report
