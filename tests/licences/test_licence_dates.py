"""Licence dates: the issue date of a converted legacy licence (存量转换), periods of years
(leap days, the cap), a 营业期限 that starts in the future or not on 成立日期, the China date
as the default "today", and the printed issuing authority. The rules are the catalogue's; the
desk tests check that the page, the metadata and the QR code follow them (SQLite: dates do not
depend on the database; the desk itself is tested on both in test_licence_desk.py)."""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from ca.names import credit_code_check_character
from licences.catalogue import Catalogue, LicenceDataError, last_day
from licences.lifecycle import CHINA_TIME
from licences.qr_payload import decode_payload
from licences.registry import LicenceRecord, SerialCounter
from ofd.reader import read_ofd
from support.cli import run_cli

BUSINESS, FOOD, PHYSICIAN = "11100000MB0000019L001", "11100000MB0000019L002", "11100000MB0000027F001"
_numbers = itertools.count(1)


def _today() -> date:
    return datetime.now(UTC).astimezone(CHINA_TIME).date()


def _cn(day: date) -> str:
    return f"{day.year}年{day.month:02d}月{day.day:02d}日"


def _paths(caught) -> list[str]:
    return [e.path for e in caught.value.errors]


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


# ---- periods of years -------------------------------------------------------------------------

@pytest.mark.parametrize(("start", "years", "last"), [
    (date(2024, 5, 20), 5, date(2029, 5, 19)),
    (date(2024, 2, 29), 5, date(2029, 2, 28)),   # not a day less than a licence issued on 1 March
    (date(2024, 3, 1), 5, date(2029, 2, 28)),
    (date(2023, 3, 1), 1, date(2024, 2, 29)),    # the period ends on a leap day
    (date(2024, 2, 29), 4, date(2028, 2, 28)),
    (date(2024, 1, 1), 5, date(2028, 12, 31)),
])
def test_last_day_of_a_period_of_years(start, years, last):
    assert last_day(start, years) == last


def test_valid_until_renewal_and_cap_use_the_same_last_day(catalogue):
    food = catalogue.get(FOOD)
    leap = date(2028, 2, 29)
    no_end = {k: v for k, v in food.example.items() if k != "有效期至"}
    assert food.valid_until(no_end, leap) == date(2033, 2, 28)
    assert food.renewal_data(food.example, leap)["有效期至"] == "2033-02-28"
    today = _today()
    food.validate(dict(food.example, 有效期至=last_day(today, 5).isoformat()), today)
    with pytest.raises(LicenceDataError) as caught:  # one day past the period: refused
        beyond = last_day(today, 5) + timedelta(days=1)
        food.validate(dict(food.example, 有效期至=beyond.isoformat()), today)
    assert _paths(caught) == ["$.有效期至"] and caught.value.errors[0].validator == "validity"


def test_an_end_date_already_passed_is_a_field_error(catalogue):
    food, today = catalogue.get(FOOD), _today()
    with pytest.raises(LicenceDataError) as caught:
        food.validate(dict(food.example, 有效期至=(today - timedelta(days=1)).isoformat()), today)
    assert _paths(caught) == ["$.有效期至"] and "ended" in caught.value.errors[0].message_en


# ---- 营业期限 ---------------------------------------------------------------------------------

def test_a_business_term_starting_after_the_issue_day_is_a_field_error(catalogue):
    business, today = catalogue.get(BUSINESS), _today()
    tomorrow = today + timedelta(days=1)
    data = dict(business.example, 成立日期=tomorrow.isoformat(), 营业期限=f"{_cn(tomorrow)}至长期")
    with pytest.raises(LicenceDataError) as caught:
        business.validate(data, today)
    assert _paths(caught) == ["$.营业期限"] and "after the issue date" in caught.value.errors[0].message_en
    business.validate(dict(data, 成立日期=today.isoformat(), 营业期限=f"{_cn(today)}至长期"), today)


def test_a_business_term_must_start_on_the_date_of_establishment(catalogue):
    business = catalogue.get(BUSINESS)
    with pytest.raises(LicenceDataError) as caught:
        business.validate(dict(business.example, 成立日期="2019-06-18", 营业期限="2019年06月19日至长期"))
    assert _paths(caught) == ["$.营业期限"] and "成立日期 2019-06-18" in caught.value.errors[0].message_en
    business.validate(dict(business.example, 成立日期="2019-06-18", 营业期限="长期"))  # no start to compare


# ---- "today" is China's --------------------------------------------------------------------------

def test_validate_defaults_to_the_china_date_not_the_hosts(catalogue, monkeypatch):
    """Local time 26 hours apart covers every date: one of UTC-12 and UTC+14 has another date
    than China right now, and validate() must still mean China's today."""
    china = _today()
    for _zone, offset in (("Etc/GMT+12", -12), ("Etc/GMT-14", 14)):
        local = (datetime.now(UTC) + timedelta(hours=offset)).date()
        if local != china:
            break
    monkeypatch.setenv("TZ", _zone)
    time.tzset()
    try:
        assert date.today() == local != china
        business = catalogue.get(BUSINESS)
        business.validate(dict(business.example, 发证日期=china.isoformat()))
        with pytest.raises(LicenceDataError):
            business.validate(dict(business.example, 发证日期=local.isoformat()))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


# ---- conversion (catalogue) ----------------------------------------------------------------------

def test_a_conversion_takes_the_historical_issue_date(catalogue):
    food, today = catalogue.get(FOOD), _today()
    legacy = dict(food.example, 发证日期="2023-06-01", 有效期至="2028-05-31")
    with pytest.raises(LicenceDataError):
        food.validate(legacy, today)  # an ordinary issuance prints today only
    food.validate(legacy, today, conversion=True)
    assert food.issue_date(legacy, today, conversion=True) == date(2023, 6, 1)
    assert food.issue_date(legacy, today) == today
    with pytest.raises(LicenceDataError) as caught:  # the cap counts from the historical date
        food.validate(dict(legacy, 有效期至="2028-06-01"), today, conversion=True)
    assert _paths(caught) == ["$.有效期至"]


def test_a_conversion_issue_date_must_not_be_in_the_future(catalogue):
    food, today = catalogue.get(FOOD), _today()
    with pytest.raises(LicenceDataError) as caught:
        food.validate(dict(food.example, 发证日期=(today + timedelta(days=1)).isoformat()), today,
                      conversion=True)
    assert _paths(caught) == ["$.发证日期"] and caught.value.errors[0].validator == "issue-date"


def _optional_end(food):
    """The food permit with 有效期至 optional: a type whose validity is its years alone."""
    schema = dict(food.schema, required=[f for f in food.schema["required"] if f != "有效期至"])
    return dataclasses.replace(food, schema=schema)


def test_a_conversion_counts_the_years_from_its_issue_date(catalogue):
    food, today = _optional_end(catalogue.get(FOOD)), _today()
    no_end = {k: v for k, v in food.example.items() if k != "有效期至"}
    legacy = dict(no_end, 发证日期="2023-06-01")
    food.validate(legacy, today, conversion=True)
    start = food.issue_date(legacy, today, conversion=True)
    assert food.valid_until(legacy, start) == date(2028, 5, 31)
    with pytest.raises(LicenceDataError) as caught:  # five years from 2015-03-01 ended on 2020-02-29
        food.validate(dict(no_end, 发证日期="2015-03-01"), today, conversion=True)
    assert _paths(caught) == ["$.发证日期"] and "2020-02-29" in caught.value.errors[0].message_en


def test_a_conversion_whose_validity_has_ended_is_refused(catalogue):
    food, today = catalogue.get(FOOD), _today()
    with pytest.raises(LicenceDataError) as caught:  # a stated end date in the past
        food.validate(dict(food.example, 发证日期="2019-03-01", 有效期至="2024-02-28"), today,
                      conversion=True)
    assert _paths(caught) == ["$.有效期至"]
    business = catalogue.get(BUSINESS)
    ended = dict(business.example, 发证日期="2019-06-18", 营业期限="2019年06月18日至2021年06月17日")
    with pytest.raises(LicenceDataError) as caught:  # a 营业期限 that has run out
        business.validate(ended, today, conversion=True)
    assert _paths(caught) == ["$.营业期限"]


# ---- the printed issuing authority ---------------------------------------------------------------

def test_an_issuing_authority_field_must_name_the_issuing_department(catalogue):
    food, department = catalogue.get(FOOD), "示例市市场监督管理局"
    assert food.issuer_name_fields == ("发证机关",)
    food.validate(dict(food.example, 发证机关=department), issuer_name=department)
    food.validate({k: v for k, v in food.example.items() if k != "发证机关"}, issuer_name=department)
    with pytest.raises(LicenceDataError) as caught:
        food.validate(dict(food.example, 发证机关="北京市朝阳区市场监督管理局"), issuer_name=department)
    assert _paths(caught) == ["$.发证机关"] and caught.value.errors[0].validator == "issuer-name"


# ---- the desk ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def td(tmp_path_factory):
    home = tmp_path_factory.mktemp("dates-home")
    saved = os.environ.pop("ZHENGYIN_DATABASE_URL", None)
    try:
        code, _, err = run_cli(home, "init")
        assert code == 0, err
        from trust.domain import TrustDomain

        domain = TrustDomain.open(str(home))
        yield domain
        domain.close()
    finally:
        if saved is not None:
            os.environ["ZHENGYIN_DATABASE_URL"] = saved


@pytest.fixture
def issuer():
    from keys_dev.domain import DEMO_DEPARTMENT_CODE

    return DEMO_DEPARTMENT_CODE


def _food(td, **changes) -> dict:
    data = dict(td.licence_desk.catalogue.get(FOOD).example, 许可证编号=f"JY2350199{next(_numbers):07d}")
    data.update(changes)
    return data


def _business(td, **changes) -> dict:
    first17 = f"91350102MB{next(_numbers):07d}"
    data = dict(td.licence_desk.catalogue.get(BUSINESS).example,
                统一社会信用代码=first17 + credit_code_check_character(first17))
    data.update(changes)
    return data


def _printed(ofd: bytes) -> str:
    return "".join("".join(read_ofd(ofd).text()).split())


def _spent(td) -> tuple[int, int]:
    with td.db.transaction() as s:
        return (s.scalar(select(func.count()).select_from(LicenceRecord)),
                s.scalar(select(func.sum(SerialCounter.next_serial))) or 0)


def test_a_converted_licence_keeps_its_issue_date_and_its_validity(td, issuer):
    desk, today = td.licence_desk, _today()
    issued = desk.issue(FOOD, _food(td, 发证日期="2023-06-01", 有效期至="2028-05-31"), issuer_code=issuer,
                        source_id=f"OLD-{next(_numbers)}")
    meta = issued.metadata
    assert (meta.issue_date, meta.valid_from, meta.valid_until) == (date(2023, 6, 1), date(2023, 6, 1),
                                                                    date(2028, 5, 31))
    assert (issued.record.valid_from, issued.record.valid_until) == (date(2023, 6, 1), date(2028, 5, 31))
    claims = decode_payload(issued.qr).claims
    assert claims.issued_at == today and claims.valid_until == date(2028, 5, 31)  # electronically issued on
    printed = _printed(issued.ofd)
    assert _cn(date(2023, 6, 1)) in printed and _cn(today) not in printed
    code, out, err = run_cli(td.settings.home, "verify-qr", issued.qr, "--json")
    assert code == 0, out + err  # the signer certificate is judged on the signing day


def test_a_converted_long_term_licence_keeps_its_old_issue_date(td, issuer):
    physician = dict(td.licence_desk.catalogue.get(PHYSICIAN).example, 发证日期="2015-03-01",
                     证书编码=f"1103501{next(_numbers):08d}")
    long_term = td.licence_desk.issue(PHYSICIAN, physician, issuer_code=issuer,
                                      source_id=f"P-{next(_numbers)}")
    assert long_term.metadata.issue_date == date(2015, 3, 1) and long_term.metadata.valid_until is None


def test_an_expired_legacy_licence_is_refused_before_a_serial_is_spent(td, issuer):
    before = _spent(td)
    ended = _food(td, 发证日期="2015-03-01", 有效期至="2020-02-29")
    with pytest.raises(LicenceDataError) as caught:
        td.licence_desk.issue(FOOD, ended, issuer_code=issuer, source_id=f"OLD-{next(_numbers)}")
    assert _paths(caught) == ["$.有效期至"]
    with pytest.raises(LicenceDataError):  # without source_id a past 发证日期 is not accepted at all
        td.licence_desk.issue(FOOD, _food(td, 发证日期="2023-06-01"), issuer_code=issuer)
    assert _spent(td) == before


def test_a_new_version_of_a_converted_licence_is_issued_today(td, issuer):
    first = td.licence_desk.issue(FOOD, _food(td, 发证日期="2023-06-01", 有效期至="2028-05-31"),
                                  issuer_code=issuer, source_id=f"OLD-{next(_numbers)}")
    changed = td.licence_desk.change(first.identifier, dict(first.record.data, 经营场所="示例市鼓楼区1号"),
                                     issuer_code=issuer, reason="经营场所变更")
    assert changed.metadata.issue_date == _today() == changed.metadata.valid_from
    assert "发证日期" not in changed.record.data


def test_the_desk_refuses_a_term_in_the_future_and_a_foreign_authority(td, issuer):
    before = _spent(td)
    later = _today() + timedelta(days=30)
    with pytest.raises(LicenceDataError) as caught:
        future = _business(td, 成立日期=later.isoformat(), 营业期限=f"{_cn(later)}至长期")
        td.licence_desk.issue(BUSINESS, future, issuer_code=issuer)
    assert _paths(caught) == ["$.营业期限"]
    with pytest.raises(LicenceDataError) as caught:
        td.licence_desk.issue(FOOD, _food(td, 发证机关="北京市朝阳区市场监督管理局"), issuer_code=issuer)
    assert _paths(caught) == ["$.发证机关"]
    assert _spent(td) == before
    issued = td.licence_desk.issue(FOOD, {k: v for k, v in _food(td).items() if k != "发证机关"},
                                   issuer_code=issuer)
    assert issued.metadata.issuer_name in _printed(issued.ofd)
