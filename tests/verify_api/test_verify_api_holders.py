"""Holder credentials (licences.holders): issue, authenticate, revoke, bound to the licence and
following its new versions, one answer for every failure, hashed at rest, failures counted in
the audit log rather than written per guess. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from hsm.sm3 import sm3
from ledger.audit import AuditLog, AuditRecord
from licences.holders import (
    GENERIC_MESSAGE,
    Holder,
    HolderAuthenticationFailed,
    HolderCredentialNotFound,
    HolderCredentialRecord,
    HolderCredentialRefused,
    HolderCredentials,
)
from licences.identifiers import IdentifierError, LicenceIdentifier
from licences.lifecycle import LicenceLibrary
from licences.registry import LicenceRecord, live_key
from licences.states import LicenceNotFound
from licences.storage import DocumentStore

TYPE = "11100000MB0000019L001"
ISSUER = "11350100MB0000000Y"
NUMBER = "91350100MA0000001X"


def add_licence(db, serial: int, *, version: int = 1, status: str = "01", number: str = NUMBER,
                holder_code: str = NUMBER, valid_until: date | None = None) -> str:
    """A licence row as the library records one (documents are not needed here)."""
    ident = LicenceIdentifier(TYPE, ISSUER, serial, version).text
    now = datetime.now(UTC)
    with db.transaction() as s:
        s.add(LicenceRecord(
            identifier=ident, type_code=TYPE, issuer_code=ISSUER, serial=serial, version=version,
            licence_number=number, holder_name="示例科技有限公司", holder_code=holder_code, status=status,
            status_changed_at=now, valid_from=date(2024, 1, 1), valid_until=valid_until,
            licence_metadata={}, data={}, ofd_sm3="0" * 64, pdf_sm3="1" * 64, created_at=now,
            qr_nonce="ab" * 16, live_key=live_key(TYPE, number) if status in ("01", "02") else None))
    return ident


def supersede(db, old: str, new_serial: int, new_version: int) -> str:
    """What a change or renewal records: the old version 99 with superseded_by, the new one live
    and naming the old one as its previous_identifier (both links, as the library writes them)."""
    with db.transaction() as s:
        s.execute(update(LicenceRecord).where(LicenceRecord.identifier == old)
                  .values(status="99", live_key=None))
    new = add_licence(db, new_serial, version=new_version)
    with db.transaction() as s:
        s.execute(update(LicenceRecord).where(LicenceRecord.identifier == old).values(superseded_by=new))
        s.execute(update(LicenceRecord).where(LicenceRecord.identifier == new).values(previous_identifier=old))
    return new


@pytest.fixture
def audit(db):
    return AuditLog(db)


@pytest.fixture
def credentials(db, audit):
    return HolderCredentials(db, audit)


@pytest.fixture
def library(db, audit, tmp_path):
    return LicenceLibrary(db, audit, DocumentStore(tmp_path / "documents"), actor="test:officer")


def _fails(credentials, token) -> str:
    with pytest.raises(HolderAuthenticationFailed) as caught:
        credentials.authenticate(token)
    return str(caught.value)


def test_issue_then_authenticate_gives_the_holder_and_the_current_identifier(db, credentials):
    ident = add_licence(db, 1)
    credential_id, token = credentials.issue(ident, actor="test:clerk")
    assert token.startswith(f"zyh_{credential_id}_") and len(token) == 4 + 16 + 1 + 64
    holder = credentials.authenticate(token)
    assert holder == Holder(credential_id, TYPE, NUMBER, NUMBER)
    assert credentials.current_identifier(holder) == ident
    assert NUMBER not in repr(holder)  # personal data stays out of logs by accident


def test_only_a_hash_of_the_secret_is_stored(db, credentials):
    ident = add_licence(db, 1)
    credential_id, token = credentials.issue(ident, actor="test:clerk")
    secret = token.rsplit("_", 1)[1]
    with db.engine.connect() as conn:
        rows = [tuple(str(v) for v in row) for row in conn.execute(text("SELECT * FROM holder_credential"))]
    stored = " ".join(" ".join(row) for row in rows)
    assert secret not in stored and token not in stored
    with db.transaction() as s:
        row = s.scalars(select(HolderCredentialRecord)).one()
    assert row.secret_sm3 == sm3(b"zhengyin-holder-credential\0" + credential_id.encode() + b"\0"
                                 + secret.encode()).hex()


@pytest.mark.parametrize("mangle", [
    lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),            # wrong secret
    lambda t: "zyh_" + "0" * 16 + t[20:],                           # unknown id, well formed
    lambda t: t.upper(),                                           # malformed
    lambda t: t[:-2],                                              # too short
    lambda t: "",
    lambda t: "zy_" + t[4:],                                       # an API key's shape
])
def test_every_bad_token_gets_the_one_generic_answer(db, credentials, mangle):
    ident = add_licence(db, 1)
    _, token = credentials.issue(ident, actor="test:clerk")
    assert _fails(credentials, mangle(token)) == GENERIC_MESSAGE


def test_a_hash_copied_onto_another_credential_does_not_authenticate(db, credentials):
    ident = add_licence(db, 1)
    first, token = credentials.issue(ident, actor="test:clerk")
    second, _ = credentials.issue(ident, actor="test:clerk")
    with db.transaction() as s:
        stolen = s.scalar(select(HolderCredentialRecord.secret_sm3)
                          .where(HolderCredentialRecord.credential_id == first))
        s.execute(update(HolderCredentialRecord).where(HolderCredentialRecord.credential_id == second)
                  .values(secret_sm3=stolen))
    assert _fails(credentials, token.replace(first, second)) == GENERIC_MESSAGE


def test_revoked_credential_stops_at_once_and_revoking_twice_or_unknown_is_refused(db, credentials, audit):
    ident = add_licence(db, 1)
    credential_id, token = credentials.issue(ident, actor="test:clerk")
    other_id, other = credentials.issue(ident, actor="test:clerk")
    credentials.revoke(credential_id, actor="test:officer")
    _fails(credentials, token)
    assert credentials.authenticate(other).credential_id == other_id  # only that one
    with pytest.raises(HolderCredentialRefused):
        credentials.revoke(credential_id, actor="test:officer")
    with pytest.raises(HolderCredentialNotFound):
        credentials.revoke("f" * 16, actor="test:officer")
    with pytest.raises(HolderAuthenticationFailed):
        credentials.current_identifier(Holder(credential_id, TYPE, NUMBER, NUMBER))
    revoked = audit.entries(action="licence.holder_credential.revoke")
    assert [e.subject for e in revoked] == [f"holder-credential:{credential_id}"]
    assert revoked[0].actor == "test:officer"


@pytest.mark.parametrize("act", ["revoke", "cancel", "deregister", "transfer"])
def test_credential_of_an_ended_licence_stops_working(db, credentials, library, act):
    ident = add_licence(db, 1)
    _, token = credentials.issue(ident, actor="test:clerk")
    getattr(library, act)(ident, "test")
    assert _fails(credentials, token) == GENERIC_MESSAGE


def test_suspended_and_expired_licences_keep_their_credential(db, credentials, library):
    suspended = add_licence(db, 1)
    expired = add_licence(db, 2, number="91350100MA0000002X", holder_code="91350100MA0000002X",
                          valid_until=date.today() - timedelta(days=3))
    _, token_s = credentials.issue(suspended, actor="test:clerk")
    _, token_e = credentials.issue(expired, actor="test:clerk")
    library.suspend(suspended, "核查中")
    assert credentials.authenticate(token_s).licence_number == NUMBER
    assert credentials.authenticate(token_e).licence_number == "91350100MA0000002X"


def test_credential_follows_changes_and_renewals_to_the_current_version(db, credentials, library):
    v1 = add_licence(db, 1)
    _, token = credentials.issue(v1, actor="test:clerk")
    v2 = supersede(db, v1, 1, 2)
    v3 = supersede(db, v2, 1, 3)
    holder = credentials.authenticate(token)
    assert credentials.current_identifier(holder) == v3
    # A credential issued for an old version is one for the licence, too.
    _, late = credentials.issue(v1, actor="test:clerk")
    assert credentials.current_identifier(credentials.authenticate(late)) == v3
    library.revoke(v3, "违法")
    _fails(credentials, token)
    _fails(credentials, late)


def test_a_new_licence_reusing_the_number_is_not_followed(db, credentials, library):
    old = add_licence(db, 1)
    _, token = credentials.issue(old, actor="test:clerk")
    library.revoke(old, "违法")
    newer = add_licence(db, 2)  # same licence number, a new licence (not a version of the old one)
    _fails(credentials, token)
    _, fresh = credentials.issue(newer, actor="test:clerk")
    assert credentials.current_identifier(credentials.authenticate(fresh)) == newer


def test_a_successor_with_another_holder_breaks_the_chain(db, credentials):
    v1 = add_licence(db, 1)
    _, token = credentials.issue(v1, actor="test:clerk")
    v2 = supersede(db, v1, 1, 2)
    with db.transaction() as s:
        s.execute(update(LicenceRecord).where(LicenceRecord.identifier == v2).values(holder_code="X" * 18))
    _fails(credentials, token)


def test_issue_refuses_unknown_malformed_and_ended_licences_and_changes_nothing(db, credentials, library):
    ident = add_licence(db, 1)
    library.revoke(ident, "违法")
    with pytest.raises(HolderCredentialRefused):
        credentials.issue(ident, actor="test:clerk")
    with pytest.raises(LicenceNotFound):
        credentials.issue(LicenceIdentifier(TYPE, ISSUER, 99).text, actor="test:clerk")
    with pytest.raises(IdentifierError):
        credentials.issue("1.2.156.3005.2.nonsense", actor="test:clerk")
    with db.transaction() as s:
        assert s.scalars(select(HolderCredentialRecord)).all() == []


def test_issue_is_audited_without_the_token(db, credentials, audit):
    ident = add_licence(db, 1)
    credential_id, token = credentials.issue(ident, actor="test:clerk")
    [entry] = audit.entries(action="licence.holder_credential.issue")
    assert entry.subject == f"holder-credential:{credential_id}" and entry.actor == "test:clerk"
    assert entry.details["licence"] == ident
    assert token.rsplit("_", 1)[1] not in entry.payload
    assert credentials.credentials_of(ident)[0]["credential_id"] == credential_id
    assert "secret" not in json.dumps(credentials.credentials_of(ident))


def test_failed_authentications_are_counted_not_written_per_guess(db, audit):
    clock = [1000.0]
    credentials = HolderCredentials(db, audit, failure_window=60, monotonic=lambda: clock[0])
    ident = add_licence(db, 1)
    credential_id, token = credentials.issue(ident, actor="test:clerk")
    wrong = token[:-1] + ("0" if token[-1] != "0" else "1")
    for _ in range(3):
        _fails(credentials, "zyh_" + "0" * 16 + "_" + "1" * 64)
    for _ in range(40):
        _fails(credentials, wrong)
        _fails(credentials, "garbage")
    entries = audit.entries(action="licence.holder_credential.auth_failed")
    assert len(entries) == 1 and entries[0].details["failures"] == 1  # the first at once, then counted
    clock[0] += 61
    _fails(credentials, wrong)
    entries = audit.entries(action="licence.holder_credential.auth_failed")
    assert len(entries) == 2
    later = entries[0].details
    assert later["failures"] == 3 + 80 + 1 - 1
    assert later["reasons"] == {"malformed": 40, "unknown": 2, "mismatch": 41}
    assert later["subjects"] == {f"holder-credential:{credential_id}": 41}
    _fails(credentials, wrong)
    credentials.close()  # shutdown writes what is still counted
    assert audit.entries(action="licence.holder_credential.auth_failed")[0].details["failures"] == 1
    with db.transaction() as s:
        payloads = " ".join(s.scalars(select(AuditRecord.payload)))
    assert token.rsplit("_", 1)[1] not in payloads and wrong.rsplit("_", 1)[1] not in payloads
    assert audit.verify().ok


def test_api_keys_hash_as_before_the_shared_module(db):
    """The signing service's keys moved onto ledger.bearer: stored hashes must still match."""
    from trust.service.credentials import secret_hash

    key_id, secret = "0123456789abcdef", "ab" * 32
    assert secret_hash(key_id, secret) == sm3(b"zhengyin-api-key\0" + key_id.encode() + b"\0"
                                              + secret.encode()).hex()


def test_0010_goes_down_and_up_again(db):
    from alembic import command
    from sqlalchemy import inspect

    from ledger.database import alembic_config

    def tables() -> set[str]:
        return {"holder_credential", "holder_presentation"} & set(inspect(db.engine).get_table_names())

    assert tables() == {"holder_credential", "holder_presentation"}
    with db.engine.begin() as conn:
        config = alembic_config(db.url)
        config.attributes["connection"] = conn
        command.downgrade(config, "0009")
    assert db.current_revision() == "0009" and tables() == set()
    db.migrate("0010")
    assert tables() == {"holder_credential", "holder_presentation"}
    indexes = {i["name"] for i in inspect(db.engine).get_indexes("holder_credential")}
    assert "ix_holder_credential_licence" in indexes
    ident = add_licence(db, 1)
    credentials = HolderCredentials(db, AuditLog(db))
    assert credentials.authenticate(credentials.issue(ident, actor="test:clerk")[1]).licence_number == NUMBER
