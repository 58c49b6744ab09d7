"""The catalogue of licence types, data validation in two languages, and licence metadata."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta

import pytest

from ca.names import validate_credit_code
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from licences.catalogue import (
    DEFAULT_PATH,
    Catalogue,
    CatalogueError,
    IssuerNotAllowed,
    LicenceDataError,
    UnknownLicenceType,
    parse_term,
)
from licences.identifiers import LicenceIdentifier
from licences.metadata import HolderCodeType, LicenceMetadata, LicenceStatus, MetadataError

BUSINESS, FOOD, PHYSICIAN = "11100000MB0000019L001", "11100000MB0000019L002", "11100000MB0000027F001"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


def test_three_types_load(catalogue):
    assert sorted(catalogue.types) == sorted([BUSINESS, FOOD, PHYSICIAN])
    names = {t.code: t.name for t in catalogue}
    assert names == {BUSINESS: "营业执照", FOOD: "食品经营许可证", PHYSICIAN: "医师执业证书"}
    for t in catalogue:
        assert validate_credit_code(t.defining_authority_code)
        assert t.schema["$schema"].endswith("2020-12/schema")
        assert all(spec.get("title") for spec in t.schema["properties"].values())
    assert catalogue.get(PHYSICIAN).holder.kind == "person"
    assert catalogue.get(BUSINESS).holder.code_type is HolderCodeType.CREDIT_CODE


def test_examples_validate(catalogue):
    for t in catalogue:
        t.validate(t.example)
        assert t.errors(t.example) == []


def test_the_demo_department_may_issue_every_type(catalogue):
    for t in catalogue:
        t.check_issuer(DEMO_DEPARTMENT_CODE)
    physician = catalogue.get(PHYSICIAN)
    assert not physician.may_issue("91350102MA8T2K3X24")
    with pytest.raises(IssuerNotAllowed, match="may not issue 医师执业证书"):
        physician.check_issuer("91350102MA8T2K3X24")


def test_unknown_type_lists_the_known_codes(catalogue):
    with pytest.raises(UnknownLicenceType) as info:
        catalogue.get("11100000MB0000019L999")
    assert set(info.value.known) == set(catalogue.types)
    assert BUSINESS in str(info.value)


def test_bad_data_reports_every_error_at_once_in_both_languages(catalogue):
    t = catalogue.get(BUSINESS)
    data = dict(t.example)
    del data["名称"]                              # required
    data["统一社会信用代码"] = "91350102MA8T2K3X25"   # wrong GB 32100 check character
    data["类型"] = "外星公司"                       # enum
    data["成立日期"] = "2019-13-45"                 # format date
    data["注册资本"] = "很多钱"                      # pattern
    data["法定代表人"] = 42                          # type
    data["经营范围"] = "经" * 501                   # maxLength
    data["住所"] = ""                               # minLength
    data["颜色"] = "红"                             # unknown field
    with pytest.raises(LicenceDataError) as info:
        t.validate(data)
    errors = {(e.path, e.validator): e for e in info.value.errors}
    expected = {("$.名称", "required"), ("$.统一社会信用代码", "format"), ("$.类型", "enum"),
                ("$.成立日期", "format"), ("$.注册资本", "pattern"), ("$.法定代表人", "type"),
                ("$.经营范围", "maxLength"), ("$.住所", "minLength"), ("$", "additionalProperties")}
    assert expected <= set(errors)
    assert "缺少必填项“名称”" in errors[("$.名称", "required")].message_zh
    assert "名称 is required" == errors[("$.名称", "required")].message_en
    assert "统一社会信用代码" in errors[("$.统一社会信用代码", "format")].message_zh
    assert "check character" in errors[("$.统一社会信用代码", "format")].message_en
    assert "最多500个字符（现有501个）" in errors[("$.经营范围", "maxLength")].message_zh
    assert "颜色" in errors[("$", "additionalProperties")].message_zh
    for e in info.value.errors:
        assert e.message_zh and e.message_en and e.path.startswith("$")
        assert any("\u4e00" <= c <= "\u9fff" for c in e.message_zh)
    assert str(len(info.value.errors)) in str(info.value)


def test_person_data_checks_the_resident_id(catalogue):
    t = catalogue.get(PHYSICIAN)
    data = dict(t.example, 身份证号="350102198803152426", 性别="未知", 出生日期="1988/03/15")
    errors = {(e.path, e.validator) for e in t.errors(data)}
    assert {("$.身份证号", "format"), ("$.性别", "enum"), ("$.出生日期", "pattern")} <= errors


def test_not_an_object(catalogue):
    with pytest.raises(LicenceDataError) as info:
        catalogue.get(FOOD).validate(["not", "an", "object"])
    assert info.value.errors[0].path == "$" and info.value.errors[0].validator == "type"


def test_validity(catalogue):
    food, business = catalogue.get(FOOD), catalogue.get(BUSINESS)
    assert business.valid_until(business.example, date(2024, 1, 1)) is None
    assert food.valid_until(food.example, date(2024, 5, 20)) == date(2029, 5, 19)
    no_end = {k: v for k, v in food.example.items() if k != "有效期至"}
    assert food.valid_until(no_end, date(2024, 2, 29)) == date(2029, 2, 28)
    too_long = dict(food.example, 有效期至=(date.today() + timedelta(days=6 * 366)).isoformat())
    with pytest.raises(LicenceDataError, match="5-year"):
        food.validate(too_long)


@pytest.mark.parametrize(("term", "expected"), [
    ("长期", (None, None)),
    ("2019年06月18日至长期", (date(2019, 6, 18), None)),
    ("2019年06月18日至2039年06月17日", (date(2019, 6, 18), date(2039, 6, 17))),
    ("2024年02月29日至2024年02月29日", (date(2024, 2, 29), date(2024, 2, 29))),
])
def test_business_terms_are_read(term, expected):
    assert parse_term(term) == expected


@pytest.mark.parametrize("term", ["2019年06月18日", "2019-06-18至长期", "2023年02月29日至长期",
                                  "2020年01月02日至2020年01月01日", "长期至长期", ""])
def test_bad_business_terms_are_refused(term):
    with pytest.raises(ValueError):
        parse_term(term)


def test_the_business_licence_validity_follows_its_term(catalogue):
    business = catalogue.get(BUSINESS)
    assert business.valid_until(dict(business.example, 营业期限="2019年06月18日至2039年06月17日"),
                                date(2026, 1, 1)) == date(2039, 6, 17)
    for term in ("长期", "2019年06月18日至长期"):
        assert business.valid_until(dict(business.example, 营业期限=term), date(2026, 1, 1)) is None


def test_holder_and_number(catalogue):
    food = catalogue.get(FOOD)
    assert food.holder_of(food.example) == ("示例市台江区榕味轩餐饮店", "92350103MA31PQ7U05",
                                            HolderCodeType.CREDIT_CODE)
    assert food.licence_number_of(food.example) == "JY23501030045127"


# -- broken catalogue folders ------------------------------------------------------------------

def _copy(tmp_path, folder="business_licence"):
    root = tmp_path / "types"
    shutil.copytree(DEFAULT_PATH / folder, root / folder)
    return root, root / folder


def _edit(path, change):
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


@pytest.mark.parametrize(("file", "change", "reason"), [
    ("type.json", lambda d: d.update(code="11100000MB0000019L00"), "21 characters"),
    ("type.json", lambda d: d.update(issuers=["11350100MB0000000A"]), "issuers"),
    ("type.json", lambda d: d.update(page_size="A3"), "page_size"),
    ("type.json", lambda d: d.update(validity={"years": 0}), "validity"),
    ("type.json", lambda d: d["validity"].update(until_field="成立日期"), "not both"),
    ("type.json", lambda d: d["validity"].update(term_field="期限"), "the schema lacks: 期限"),
    ("type.json", lambda d: d["holder"].update(code_type="驾照"), "code_type"),
    ("type.json", lambda d: d.update(licence_number_field="编号"), "the schema lacks: 编号"),
    ("schema.json", lambda d: d.update(type="objekt"), "not a valid draft 2020-12 schema"),
    ("layout.json", lambda d: d.update(colour="red"), "unknown key"),
    ("layout.json", lambda d: d["qr"].update(x=280), "not inside the frame"),
    ("layout.json", lambda d: d["fields"][0].update(field="不存在"), "the schema lacks"),
    ("example.json", lambda d: d.update(名称=""), "example.json does not validate"),
])
def test_broken_type_folders_are_refused(tmp_path, file, change, reason):
    root, folder = _copy(tmp_path)
    _edit(folder / file, change)
    with pytest.raises(CatalogueError, match=reason):
        Catalogue.load(root)


def test_missing_file_and_bad_json(tmp_path):
    root, folder = _copy(tmp_path)
    (folder / "layout.json").unlink()
    with pytest.raises(CatalogueError, match=r"layout\.json: missing"):
        Catalogue.load(root)
    (folder / "layout.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(CatalogueError, match="not valid JSON"):
        Catalogue.load(root)


def test_duplicate_codes_and_empty_catalogue(tmp_path):
    root, folder = _copy(tmp_path)
    shutil.copytree(folder, root / "again")
    with pytest.raises(CatalogueError, match="also used by"):
        Catalogue.load(root)
    with pytest.raises(CatalogueError, match="no licence types"):
        (tmp_path / "empty").mkdir()
        Catalogue.load(tmp_path / "empty")


# -- metadata ----------------------------------------------------------------------------------

def _metadata(**changes) -> LicenceMetadata:
    ident = LicenceIdentifier(BUSINESS, DEMO_DEPARTMENT_CODE, 1001, 1)
    values = dict(
        identifier=ident, type_name="营业执照", type_code=BUSINESS, licence_number="91350102MA8T2K3X24",
        name="营业执照", version=1, issue_date=date(2024, 3, 15), issuer_name="示例市市场监督管理局",
        issuer_code=DEMO_DEPARTMENT_CODE, defining_authority="国家市场监督管理总局",
        valid_from=date(2024, 3, 15), valid_until=None, area_code="350100",
        holder_name="示例市闽江云数科技有限公司", holder_code="91350102MA8T2K3X24",
        holder_code_type=HolderCodeType.CREDIT_CODE, service_item="企业设立登记",
        file_url="https://licences.example/files/1001")
    values.update(changes)
    return LicenceMetadata(**values)


def test_metadata_round_trips_through_json():
    previous = LicenceIdentifier(BUSINESS, DEMO_DEPARTMENT_CODE, 1000).text
    meta = _metadata(status="02", previous_identifier=previous,
                     purpose="银行开户", annotation_creator="示例银行",
                     annotation_time=datetime(2024, 6, 1, 9, 30, tzinfo=UTC),
                     annotation_expiry=datetime(2024, 6, 30, tzinfo=UTC))
    exported = meta.as_dict()
    assert json.loads(json.dumps(exported, ensure_ascii=False)) == exported
    assert exported["status"] == "02" and exported["valid_until"] is None
    assert exported["identifier"] == meta.identifier.text and exported["issue_date"] == "2024-03-15"
    back = LicenceMetadata.from_dict(exported)
    assert back == meta
    assert back.status is LicenceStatus.SUSPENDED and isinstance(back.previous_identifier, LicenceIdentifier)
    assert back.long_term


def test_status_codes():
    assert [s.value for s in LicenceStatus] == ["01", "02", "03", "04", "05", "06", "07", "99"]
    assert LicenceStatus("07") is LicenceStatus.REVOKED


def test_metadata_reports_every_problem():
    with pytest.raises(MetadataError) as info:
        _metadata(version=2, issuer_code="91350102MA8T2K3X24", valid_from=date(2024, 3, 15),
                  valid_until=date(2024, 3, 1), area_code="3501", holder_code="91350102MA8T2K3X25",
                  file_url="ftp://x", holder_name="", purpose="银行开户")
    text = " | ".join(info.value.problems)
    for part in ("version", "issuer_code", "valid_until", "area_code", "holder_code", "file_url",
                 "holder_name", "annotated copy"):
        assert part in text
    assert len(info.value.problems) >= 8


def test_metadata_rejects_bad_identifiers_status_and_times():
    with pytest.raises(MetadataError, match="identifier"):
        _metadata(identifier="1.2.156.3005.2.nonsense")
    with pytest.raises(MetadataError, match="status '08'"):
        _metadata(status="08")
    with pytest.raises(MetadataError, match="timezone-aware"):
        _metadata(purpose="p", annotation_creator="c", annotation_time=datetime(2024, 1, 1))
    with pytest.raises(MetadataError, match="not after"):
        t = datetime(2024, 1, 2, tzinfo=UTC)
        _metadata(purpose="p", annotation_creator="c", annotation_time=t, annotation_expiry=t)
    with pytest.raises(MetadataError, match="own identifier"):
        _metadata(previous_identifier=LicenceIdentifier(BUSINESS, DEMO_DEPARTMENT_CODE, 1001, 1))
    with pytest.raises(MetadataError, match="holder_code"):
        _metadata(holder_code_type="居民身份证", holder_code="350102198803152426")


def test_from_dict_refuses_unknown_missing_and_malformed_fields():
    exported = _metadata().as_dict()
    with pytest.raises(MetadataError) as info:
        LicenceMetadata.from_dict({**{k: v for k, v in exported.items() if k != "holder_name"},
                                   "colour": "red", "issue_date": "15/03/2024"})
    text = " | ".join(info.value.problems)
    assert "unknown field 'colour'" in text and "missing field 'holder_name'" in text
    assert "issue_date '15/03/2024'" in text
    with pytest.raises(MetadataError):
        LicenceMetadata.from_dict(["not", "a", "dict"])  # type: ignore[arg-type]
