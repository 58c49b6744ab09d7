"""The issuing desk on a development home, on SQLite and PostgreSQL: the QR nonce recorded and
looked up, one live licence per licence number, change and renewal (state, issuer, data and
validity), and one China issue date on the printed page, in the metadata and in the QR code."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ca.names import credit_code_check_character
from licences import issuance
from licences.catalogue import LicenceDataError, last_day
from licences.identifiers import LicenceIdentifier
from licences.issuance import NotTheIssuer
from licences.lifecycle import CHINA_TIME, LicenceExists, LicenceRequestError, LicenceStateError
from licences.qr_payload import decode_payload
from licences.registry import LicenceRecord, SerialCounter
from ofd.reader import read_ofd
from support.homes_on_databases import initialised_home

BUSINESS = "11100000MB0000019L001"
FOOD = "11100000MB0000019L002"
PHYSICIAN = "11100000MB0000027F001"
OTHER_ISSUER = "91350100MA0000000L"
_numbers = itertools.count(1)


def _credit_code() -> str:
    first17 = f"91350102MA{next(_numbers):07d}"
    return first17 + credit_code_check_character(first17)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def home(request, tmp_path_factory):
    """A development home (CA, demo department with its licence seal) on each database."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with initialised_home(tmp_path_factory.mktemp("desk-home"), url) as path:
        yield path


@pytest.fixture
def td(home):
    from trust.domain import TrustDomain

    domain = TrustDomain.open(str(home))
    yield domain
    domain.close()


@pytest.fixture
def desk(td):
    return td.licence_desk


@pytest.fixture
def issuer():
    from keys_dev.domain import DEMO_DEPARTMENT_CODE

    return DEMO_DEPARTMENT_CODE


def _business(desk, **changes) -> dict:
    data = dict(desk.catalogue.get(BUSINESS).example)
    data["统一社会信用代码"] = _credit_code()
    data.update(changes)
    return data


def _food(desk, **changes) -> dict:
    data = dict(desk.catalogue.get(FOOD).example)
    data["许可证编号"] = f"JY2350103{next(_numbers):07d}"
    data.update(changes)
    return data


def _rows(td) -> int:
    with td.db.transaction() as s:
        return s.scalar(select(func.count()).select_from(LicenceRecord))


def _counter(td, issuer: str) -> int | None:
    with td.db.transaction() as s:
        return s.scalar(select(SerialCounter.next_serial).where(SerialCounter.issuer_code == issuer))


def _printed(ofd: bytes) -> str:
    return "".join("".join(read_ofd(ofd).text()).split())


def _no_signing(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("signed although the act is refused")

    monkeypatch.setattr(issuance, "encode_payload", refuse)
    monkeypatch.setattr(issuance.LicenceDesk, "_seal_ofd", refuse)
    monkeypatch.setattr(issuance.LicenceDesk, "_sign_pdf", refuse)


# ---- the QR nonce ------------------------------------------------------------------------------

def test_the_qr_nonce_is_recorded_and_finds_the_licence(td, desk, issuer):
    issued = desk.issue(BUSINESS, _business(desk), issuer_code=issuer)
    nonce = decode_payload(issued.qr).claims.nonce.hex()
    assert issued.record.qr_nonce == nonce
    assert td.licences.find_by_qr(issued.identifier, nonce).identifier == issued.identifier
    assert td.licences.find_by_qr(issued.identifier, nonce.upper()).identifier == issued.identifier


def test_a_wrong_nonce_and_an_unknown_licence_look_the_same(td, desk, issuer):
    issued = desk.issue(BUSINESS, _business(desk), issuer_code=issuer)
    nonce = decode_payload(issued.qr).claims.nonce.hex()
    wrong = ("0" if nonce[0] != "0" else "1") + nonce[1:]
    unknown = LicenceIdentifier(BUSINESS, issuer, 999_999).text
    for identifier, guess in ((issued.identifier, wrong), (issued.identifier, nonce[:-1]),
                              (issued.identifier, ""), (unknown, nonce), ("not an identifier", nonce),
                              (issued.identifier, None)):
        assert td.licences.find_by_qr(identifier, guess) is None


# ---- one live licence per licence number ----------------------------------------------------

def test_a_second_live_licence_with_the_number_is_refused_before_a_serial_is_spent(td, desk, issuer):
    data = _business(desk)
    first = desk.issue(BUSINESS, data, issuer_code=issuer)
    rows, counter = _rows(td), _counter(td, issuer)
    with pytest.raises(LicenceExists) as caught:
        desk.issue(BUSINESS, dict(data, 名称="另一示例科技有限公司"), issuer_code=issuer)
    assert caught.value.field == "licence_number" and caught.value.existing == first.identifier
    assert (_rows(td), _counter(td, issuer)) == (rows, counter)


def test_the_number_is_free_again_once_the_licence_is_not_live(td, desk, issuer):
    data = _business(desk)
    first = desk.issue(BUSINESS, data, issuer_code=issuer)
    td.licences.suspend(first.identifier, "核查中")
    with pytest.raises(LicenceExists):
        desk.issue(BUSINESS, data, issuer_code=issuer)  # suspended is still live
    td.licences.revoke(first.identifier, "以欺骗手段取得")
    second = desk.issue(BUSINESS, data, issuer_code=issuer)
    assert second.identifier != first.identifier
    assert td.licences.live_licence(BUSINESS, data["统一社会信用代码"]).identifier == second.identifier


# ---- change and renewal --------------------------------------------------------------------

def test_a_change_issues_the_next_version_and_supersedes_the_old(td, desk, issuer):
    first = desk.issue(BUSINESS, _business(desk), issuer_code=issuer)
    changed_data = dict(first.record.data, 住所="示例省示例市鼓楼区东街100号")
    changed = desk.change(first.identifier, changed_data, issuer_code=issuer, reason="住所变更")
    assert changed.identifier == LicenceIdentifier.parse(first.identifier).next_version().text
    assert changed.previous_identifier == first.identifier
    assert changed.record.qr_nonce == decode_payload(changed.qr).claims.nonce.hex() != first.record.qr_nonce
    old = td.licences.find(first.identifier)
    assert (old.status, old.superseded_by, old.live_key) == ("99", changed.identifier, None)
    assert td.licences.live_licence(BUSINESS, changed.record.licence_number).identifier == changed.identifier
    assert "东街100号" in _printed(changed.ofd)
    assert td.licences.find_by_qr(first.identifier, first.record.qr_nonce).status == "99"


def test_a_change_of_a_revoked_licence_is_refused_before_anything_is_signed(td, desk, issuer, monkeypatch):
    first = desk.issue(BUSINESS, _business(desk), issuer_code=issuer)
    td.licences.revoke(first.identifier, "吊销")
    rows = _rows(td)
    _no_signing(monkeypatch)
    with pytest.raises(LicenceStateError, match="revoked"):
        desk.change(first.identifier, first.record.data, issuer_code=issuer, reason="住所变更")
    with pytest.raises(LicenceStateError):
        desk.renew(first.identifier, issuer_code=issuer)
    assert _rows(td) == rows


def test_another_issuers_licence_cannot_be_changed(td, desk, issuer, monkeypatch):
    first = desk.issue(BUSINESS, _business(desk), issuer_code=issuer)
    _no_signing(monkeypatch)
    with pytest.raises(NotTheIssuer) as caught:
        desk.change(first.identifier, first.record.data, issuer_code=OTHER_ISSUER, reason="变更")
    assert caught.value.owner == issuer
    with pytest.raises(NotTheIssuer):
        desk.renew(first.identifier, issuer_code=OTHER_ISSUER)
    assert td.licences.find(first.identifier).status == "01"


def test_a_change_needs_a_reason_and_valid_data_before_signing(td, desk, issuer, monkeypatch):
    first = desk.issue(BUSINESS, _business(desk), issuer_code=issuer)
    _no_signing(monkeypatch)
    with pytest.raises(LicenceRequestError, match="reason"):
        desk.change(first.identifier, first.record.data, issuer_code=issuer, reason="  ")
    with pytest.raises(LicenceDataError):
        desk.change(first.identifier, dict(first.record.data, 类型="不存在的类型"), issuer_code=issuer,
                    reason="变更")
    assert td.licences.find(first.identifier).status == "01"


def test_a_change_to_another_number_or_holder_is_refused_before_signing(td, desk, issuer, monkeypatch):
    taken = desk.issue(BUSINESS, _business(desk), issuer_code=issuer)
    first = desk.issue(BUSINESS, _business(desk), issuer_code=issuer)
    food = desk.issue(FOOD, _food(desk), issuer_code=issuer)
    rows = _rows(td)
    _no_signing(monkeypatch)
    for number in (taken.record.licence_number, _credit_code()):  # held by another, or free
        with pytest.raises(LicenceDataError) as caught:
            desk.change(first.identifier, dict(first.record.data, 统一社会信用代码=number),
                        issuer_code=issuer, reason="变更")
        found = [(e.path, e.validator) for e in caught.value.errors]
        assert found == [("$.统一社会信用代码", "same-licence")]
    with pytest.raises(LicenceDataError) as caught:  # the food permit: number and holder apart
        desk.renew(food.identifier, dict(food.record.data, 许可证编号="JY23501039999999",
                                         社会信用代码=_credit_code()), issuer_code=issuer)
    assert [e.path for e in caught.value.errors] == ["$.社会信用代码", "$.许可证编号"]
    assert _rows(td) == rows
    assert td.licences.find(first.identifier).status == "01"
    assert td.licences.live_licence(BUSINESS, first.record.licence_number).identifier == first.identifier


def test_the_library_refuses_a_new_version_with_another_number(td, desk, issuer):
    first = desk.issue(BUSINESS, _business(desk), issuer_code=issuer)
    other = desk.issue(BUSINESS, _business(desk), issuer_code=issuer)
    metadata = dataclasses.replace(other.metadata, identifier=LicenceIdentifier.parse(first.identifier)
                                   .next_version(), previous_identifier=first.identifier, version=2)
    with pytest.raises(LicenceRequestError, match="keeps its licence number"):
        td.licences.change(first.identifier, metadata, other.record.data, ofd=other.ofd, pdf=other.pdf,
                           reason="变更")
    assert td.licences.find(first.identifier).status == "01"


def test_a_renewal_without_data_gives_a_fresh_period_for_a_dated_type(td, desk, issuer):
    now = datetime.now(UTC).replace(microsecond=0)
    today = now.astimezone(CHINA_TIME).date()
    soon = (today + timedelta(days=30)).isoformat()
    first = desk.issue(FOOD, _food(desk, 有效期至=soon), issuer_code=issuer)
    renewed = desk.renew(first.identifier, issuer_code=issuer, now=now)
    end = last_day(today, 5)
    assert renewed.metadata.valid_until == end == decode_payload(renewed.qr).claims.valid_until
    assert renewed.record.data["有效期至"] == end.isoformat()
    assert f"{end.year}年{end.month:02d}月{end.day:02d}日" in _printed(renewed.ofd)
    assert td.licences.find(first.identifier).superseded_by == renewed.identifier


def test_a_renewal_is_refused_for_a_suspended_licence(td, desk, issuer):
    first = desk.issue(FOOD, _food(desk), issuer_code=issuer)
    td.licences.suspend(first.identifier, "整改")
    with pytest.raises(LicenceStateError, match="suspended"):
        desk.renew(first.identifier, issuer_code=issuer)


# ---- one issue date ---------------------------------------------------------------------------

def _cn(day: date) -> str:
    return f"{day.year}年{day.month:02d}月{day.day:02d}日"


def test_printed_metadata_and_qr_issue_dates_are_one_china_date(desk, issuer):
    # 23:30 UTC is already the next day in China: every date must be the China one.
    now = datetime.now(UTC).replace(hour=23, minute=30, second=0, microsecond=0)
    if now <= datetime.now(UTC):  # not before the seal made for this test (run after 23:30 UTC)
        now += timedelta(days=1)
    china = (now + timedelta(hours=8)).date()
    assert china == now.date() + timedelta(days=1)
    issued = desk.issue(BUSINESS, _business(desk), issuer_code=issuer, now=now)
    assert issued.metadata.issue_date == china == decode_payload(issued.qr).claims.issued_at
    printed = _printed(issued.ofd)
    assert _cn(china) in printed and _cn(now.date()) not in printed
    changed = desk.change(issued.identifier, issued.record.data, issuer_code=issuer, reason="变更",
                          now=now + timedelta(days=1))
    later = china + timedelta(days=1)
    assert changed.metadata.issue_date == later == decode_payload(changed.qr).claims.issued_at
    assert _cn(later) in _printed(changed.ofd)


def test_an_issue_date_in_the_data_must_be_the_day_of_issue(desk, issuer):
    today = datetime.now(UTC).astimezone(CHINA_TIME).date()
    with pytest.raises(LicenceDataError) as caught:
        desk.issue(BUSINESS, _business(desk, 发证日期="2024-03-15"), issuer_code=issuer)
    assert [e.path for e in caught.value.errors] == ["$.发证日期"]
    issued = desk.issue(BUSINESS, _business(desk, 发证日期=today.isoformat()), issuer_code=issuer)
    assert issued.metadata.issue_date == today


def test_a_change_replaces_the_issue_date_carried_over_from_the_old_data(td, desk, issuer):
    today = datetime.now(UTC).astimezone(CHINA_TIME).date()
    first = desk.issue(BUSINESS, _business(desk, 发证日期=today.isoformat()), issuer_code=issuer)
    later = datetime.now(UTC) + timedelta(days=2)
    changed = desk.change(first.identifier, first.record.data, issuer_code=issuer, reason="变更", now=later)
    day = later.astimezone(CHINA_TIME).date()
    assert "发证日期" not in changed.record.data
    assert changed.metadata.issue_date == day and _cn(day) in _printed(changed.ofd)
    assert _cn(today) not in _printed(changed.ofd)


# ---- 营业期限 ------------------------------------------------------------------------------------

def test_a_business_term_with_an_end_date_is_the_licence_validity(desk, issuer):
    end = datetime.now(UTC).astimezone(CHINA_TIME).date() + timedelta(days=3650)
    term = f"2019年06月18日至{_cn(end)}"
    issued = desk.issue(BUSINESS, _business(desk, 营业期限=term), issuer_code=issuer)
    assert issued.metadata.valid_until == end == decode_payload(issued.qr).claims.valid_until
    assert issued.record.valid_until == end
    assert term in _printed(issued.ofd)


def test_a_long_term_business_term_is_long_term(desk, issuer):
    for term in ("2019年06月18日至长期", "长期", None):
        data = _business(desk, 营业期限=term) if term else {k: v for k, v in _business(desk).items()
                                                             if k != "营业期限"}
        issued = desk.issue(BUSINESS, data, issuer_code=issuer)
        assert issued.metadata.valid_until is None and decode_payload(issued.qr).claims.valid_until is None
        if term:
            assert term in _printed(issued.ofd)


@pytest.mark.parametrize("term", ["2019年06月18日至2020年06月17日", "2019年02月30日至长期",
                                  "2030年01月01日至2029年01月01日"])
def test_an_ended_or_impossible_business_term_is_a_field_error(td, desk, issuer, term):
    rows = _rows(td)
    with pytest.raises(LicenceDataError) as caught:
        desk.issue(BUSINESS, _business(desk, 营业期限=term), issuer_code=issuer)
    assert [e.path for e in caught.value.errors] == ["$.营业期限"]
    assert _rows(td) == rows


def test_a_source_record_converted_already_is_said_before_its_live_number(desk, issuer):
    data = _business(desk)
    first = desk.issue(BUSINESS, data, issuer_code=issuer, source_id="REG-1")
    with pytest.raises(LicenceExists) as caught:
        desk.issue(BUSINESS, data, issuer_code=issuer, source_id="REG-1")
    assert (caught.value.field, caught.value.existing) == ("source_id", first.identifier)


def test_concurrent_changes_of_one_licence_record_exactly_one(td, desk, issuer):
    import threading

    first = desk.issue(BUSINESS, _business(desk), issuer_code=issuer)
    rows = _rows(td)
    barrier = threading.Barrier(3)
    ok, refused, errors = [], [], []

    def change(index: int) -> None:
        try:
            barrier.wait()
            ok.append(desk.change(first.identifier, dict(first.record.data, 住所=f"示例市鼓楼区{index}号"),
                                  issuer_code=issuer, reason="住所变更").identifier)
        except (LicenceStateError, LicenceExists) as exc:
            refused.append(exc)
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=change, args=(i,)) for i in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors
    assert len(ok) == 1 and len(refused) == 2, refused
    assert td.licences.find(first.identifier).superseded_by == ok[0]
    assert _rows(td) == rows + 1
    assert td.licences.live_licence(BUSINESS, first.record.licence_number).identifier == ok[0]
