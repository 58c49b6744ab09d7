"""Grants and usage rows belong to one licence's chain of versions (licences.succession), not to
a licence number: a new licence that reuses the number — for another holder or the same — gets
neither; a licence that has ended serves no data under its grants; data under a grant is the
current version's; an ambiguous licence number is logged before it is refused. SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, update
from test_verify_api_holders import NUMBER, TYPE, add_licence, supersede

from ledger.audit import AuditLog
from licences.holders import HolderCredentials
from licences.lifecycle import LicenceLibrary
from licences.registry import LicenceRecord
from licences.reuse import LicenceTypeRequired, ReuseDesk, ReuseRequest
from licences.reuse_clients import ClientRegistry
from licences.reuse_grants import GrantBook, GrantedLicence, GrantNotFound
from licences.storage import DocumentStore
from licences.succession import licence_versions
from licences.usage_log import TYPE_REQUIRED, UsageRecord, usage_of_licence

PURPOSE = "办理贷款"
OTHER_TYPE = "11100000MB0000019L002"


def _sign(content: bytes) -> dict:
    return {"value": "test"}


def _set_data(db, identifier: str, data: dict) -> None:
    with db.transaction() as s:
        s.execute(update(LicenceRecord).where(LicenceRecord.identifier == identifier)
                  .values(data=data, licence_metadata={"identifier": identifier, "type_code": TYPE}))


@pytest.fixture
def world(db, tmp_path):
    audit = AuditLog(db)
    clients = ClientRegistry(db, audit)
    _, token = clients.create("银行", [(TYPE, "data"), (OTHER_TYPE, "data")], actor="test")
    return {"audit": audit, "client": clients.authenticate(token), "book": GrantBook(db, audit),
            "desk": ReuseDesk(db, audit), "credentials": HolderCredentials(db, audit),
            "library": LicenceLibrary(db, audit, DocumentStore(tmp_path / "documents"), actor="test:officer")}


def _grant(world, identifier: str, fields=None):
    return world["book"].grant(GrantedLicence(TYPE, NUMBER, identifier, ["姓名", "住址"]), world["client"].id,
                               purpose=PURPOSE, valid_until=datetime.now(UTC) + timedelta(days=30),
                               fields=fields, granted_by="cred-test")


def _ask(world, reference: str, **extra):
    return world["desk"].answer(world["client"], ReuseRequest(reference, PURPOSE, **extra), sign=_sign)["body"]


@pytest.mark.parametrize("same_holder", [False, True], ids=["other-holder", "same-holder"])
def test_a_new_licence_reusing_the_number_gets_none_of_the_old_grants_or_usage(db, world, same_holder):
    first = add_licence(db, 1, holder_code="H1" + "0" * 16)
    _set_data(db, first, {"姓名": "张三", "住址": "A"})
    grant = _grant(world, first)
    assert _ask(world, first)["data"] == {"姓名": "张三", "住址": "A"}
    world["library"].revoke(first, "违法")
    second = add_licence(db, 2, holder_code="H1" + "0" * 16 if same_holder else "H2" + "0" * 16)
    _set_data(db, second, {"姓名": "李四", "住址": "B"})

    body = _ask(world, NUMBER)  # the live licence with the number: the new one
    assert body["licence"]["identifier"] == second
    assert (body["access"], body["grant"], body["data"]) == ("metadata", None, None)
    versions = licence_versions(db, second)
    assert versions == [second]
    assert world["book"].for_licence(versions) == []
    assert [row.identifier for row, _ in usage_of_licence(db, versions)] == [second]
    with pytest.raises(GrantNotFound):
        world["book"].revoke(grant.id, versions, revoked_by="cred-other")
    # The new holder's credential lists only its own licence's credentials.
    world["credentials"].issue(second, actor="test")
    assert {c["issued_for"] for c in world["credentials"].credentials_of(second)} == {second}


@pytest.mark.parametrize("act", ["revoke", "cancel", "deregister", "transfer"])
def test_a_licence_that_ended_serves_no_data_under_its_grants(db, world, act):
    ident = add_licence(db, 1)
    _set_data(db, ident, {"姓名": "张三", "住址": "A"})
    _grant(world, ident)
    assert _ask(world, ident)["access"] == "data"
    getattr(world["library"], act)(ident, "依法")
    body = _ask(world, ident)
    assert (body["access"], body["grant"], body["data"], body["fields"]) == ("metadata", None, None, [])
    assert "licence_number" not in body["licence"]
    with db.transaction() as s:
        last = s.scalars(select(UsageRecord).order_by(UsageRecord.id.desc())).first()
        assert (last.outcome, last.grant_id) == ("served-metadata", None)


def test_suspended_and_expired_licences_still_serve_granted_data(db, world):
    ident = add_licence(db, 1)
    _set_data(db, ident, {"姓名": "张三", "住址": "A"})
    _grant(world, ident)
    world["library"].suspend(ident, "核查中")
    assert _ask(world, ident)["access"] == "data"


def test_the_grant_follows_new_versions_and_serves_only_the_current_versions_data(db, world):
    v1 = add_licence(db, 1)
    _set_data(db, v1, {"姓名": "张三", "住址": "旧址"})
    grant = _grant(world, v1, fields=["住址"])
    v2 = supersede(db, v1, 1, 2)
    _set_data(db, v2, {"姓名": "张三", "住址": "新址"})
    for reference in (v1, v2, NUMBER):
        body = _ask(world, reference)
        assert (body["access"], body["grant"]["id"]) == ("data", grant.id), reference
        assert body["licence"]["identifier"] == v2 and body["data"] == {"住址": "新址"}, reference
    versions = licence_versions(db, v2)
    assert versions == [v2, v1]
    assert [g.id for g in world["book"].for_licence(versions)] == [grant.id]
    assert {row.identifier for row, _ in usage_of_licence(db, versions)} == {v2}
    # A successor that does not name v1 back is not a version of it: the chain breaks.
    with db.transaction() as s:
        s.execute(update(LicenceRecord).where(LicenceRecord.identifier == v2).values(previous_identifier=None))
    body = _ask(world, v1)
    assert (body["access"], body["licence"]["identifier"], body["data"]) == ("metadata", v1, None)


def test_an_ambiguous_licence_number_is_logged_and_audited_before_it_is_refused(db, world):
    mine = add_licence(db, 1)
    from licences.identifiers import LicenceIdentifier
    from licences.registry import live_key

    other = LicenceIdentifier(OTHER_TYPE, "11350100MB0000000Y", 7, 1).text
    with db.transaction() as s:
        template = s.scalars(select(LicenceRecord)).first()
        s.add(LicenceRecord(**{**{a.key: getattr(template, a.key) for a in inspect(LicenceRecord).column_attrs
                                  if a.key != "id"},
                               "identifier": other, "type_code": OTHER_TYPE, "serial": 7,
                               "live_key": live_key(OTHER_TYPE, NUMBER)}))
    with pytest.raises(LicenceTypeRequired):
        _ask(world, NUMBER)
    with db.transaction() as s:
        rows = s.scalars(select(UsageRecord)).all()
    assert [(r.outcome, r.identifier) for r in rows] == [(TYPE_REQUIRED, None)]
    audits = world["audit"].entries(action="reuse.access")
    assert len(audits) == 1 and audits[0].details["outcome"] == TYPE_REQUIRED
    _ask(world, NUMBER, licence_type=TYPE)
    with db.transaction() as s:
        assert s.scalars(select(UsageRecord.identifier).order_by(UsageRecord.id.desc())).first() == mine
