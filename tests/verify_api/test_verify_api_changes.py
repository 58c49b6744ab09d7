"""The public service when things change under it or come at it hard: a register row whose data
no longer matches what the issuer signed, a licence past its validity, a chain of renewals, a
revoked QR signer; decompression bombs and more uploads at once than it validates."""

from __future__ import annotations

import io
import json
import random
import re
import threading
import zipfile
import zlib
from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from keys_dev.domain import DEMO_DEPARTMENT_CODE
from licences.identifiers import LicenceIdentifier
from licences.qr_payload import decode_payload, key_id_of
from licences.registry import LicenceRecord
from ofd.package import Limits, MiB, Package
from support.cli import run_cli
from trust.domain import TrustDomain
from verify_api.app import create_app
from verify_api.settings import VerifySettings

UNLIMITED = {"rate_per_minute": 1e6, "burst": 1_000_000, "upload_rate_per_minute": 1e6,
             "upload_burst": 1_000_000, "trust_ttl": 0}
CHECKED = re.compile(r'<time id="checked-at" datetime="[^"]*">[^<]*</time>')


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify-changes-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def issued(home, tmp_path_factory) -> dict[str, dict]:
    code, out, err = run_cli(home, "licence", "types", "--json")
    assert code == 0, err
    types = {t["name"]: t for t in json.loads(out)}
    out_dir = tmp_path_factory.mktemp("changes-issued")

    def issue(name: str) -> dict:
        data = out_dir / f"{types[name]['code']}.json"
        data.write_text(json.dumps(types[name]["example"], ensure_ascii=False), encoding="utf-8")
        code, out, err = run_cli(home, "licence", "issue", "--type", types[name]["code"], "--data", str(data),
                                 "--out", str(out_dir), "--json")
        assert code == 0, err + out
        return json.loads(out)

    result = {"altered": issue("营业执照"), "expired": issue("医师执业证书"), "renewed": issue("食品经营许可证")}
    td = TrustDomain.open(str(home))
    try:
        with td.db.transaction() as s:
            altered = s.scalars(select(LicenceRecord).where(
                LicenceRecord.identifier == result["altered"]["identifier"])).one()
            data = dict(altered.data)
            data["名称"] += "（改）"  # the register's row no longer holds what the issuer signed
            altered.data = data
            expired = s.scalars(select(LicenceRecord).where(
                LicenceRecord.identifier == result["expired"]["identifier"])).one()
            expired.valid_until = date(2020, 1, 1)
        second = td.licence_desk.renew(result["renewed"]["identifier"], issuer_code=DEMO_DEPARTMENT_CODE,
                                       reason="延续")
        third = td.licence_desk.renew(second.identifier, issuer_code=DEMO_DEPARTMENT_CODE, reason="延续")
    finally:
        td.close()
    result["second"] = {"identifier": second.identifier, "qr": second.qr}
    result["third"] = {"identifier": third.identifier, "qr": third.qr}
    return result


@pytest.fixture(scope="module")
def client(home, issued) -> TestClient:
    return TestClient(create_app(home, VerifySettings(**UNLIMITED)))


def _path(qr: str) -> str:
    return "/V/" + qr.split("/V/", 1)[1]


def _unknown_page(client, qr: str) -> str:
    """The generic page for an identifier the register does not hold (QR signature kept)."""
    claims = decode_payload(qr).claims
    parsed = LicenceIdentifier.parse(claims.identifier)
    unknown = LicenceIdentifier(parsed.type_code, parsed.issuer_code, 987_001, 1).text
    return CHECKED.sub("", client.get(_path(qr).replace(claims.identifier, unknown)).text)


# ---- the QR page when the register changed ---------------------------------------------------------

def test_data_no_longer_matching_the_signed_hash_is_not_vouched_for(client, issued):
    answer = client.get(_path(issued["altered"]["qr"]))
    assert answer.status_code == 200
    html = CHECKED.sub("", answer.text)
    assert "无法确认" in html and 'class="banner bad"' in html and "banner good" not in html
    assert issued["altered"]["identifier"] not in html  # nothing of the licence is shown
    assert html == _unknown_page(client, issued["altered"]["qr"])  # the one generic answer


def test_a_licence_past_its_validity_is_authentic_and_expired(client, issued):
    html = client.get(_path(issued["expired"]["qr"])).text
    assert 'class="banner bad"' in html and "banner good" not in html
    assert "证照真实，但当前不是有效状态" in html and "已过期" in html and "2020-01-01" in html
    claims = decode_payload(issued["expired"]["qr"]).claims
    body = client.get(f"/api/v1/licences/{claims.identifier}/status", params={"nonce": claims.nonce.hex()}).json()
    assert body["status"] == "05" and body["status_name"] == "expired" and body["valid_until"] == "2020-01-01"


def test_a_version_renewed_twice_names_the_current_one(client, issued):
    html = client.get(_path(issued["renewed"]["qr"])).text
    assert "已被新版本取代" in html and "持证人已领取新版本证照" in html
    assert issued["third"]["identifier"] in html  # the end of the chain …
    assert issued["second"]["identifier"] not in html  # … not the version in between
    current = re.search(r"现行版本状态</dt><dd>([^<]*)</dd>", html)
    assert current and current[1] == "有效"
    assert 'class="banner good"' in client.get(_path(issued["third"]["qr"])).text


# ---- uploads under load and bombs ---------------------------------------------------------------------

def _sprinkled(size: int, every: int = 2048) -> bytes:
    """Mostly zeros with a few random bytes every ``every``: deflates about 80:1, under the
    200:1 per-entry ratio, so only a size or total limit can stop it."""
    chunk = bytearray(MiB)
    rnd = random.Random(7)
    for i in range(0, MiB, every):
        chunk[i:i + 20] = rnd.randbytes(20)
    return bytes(chunk) * (size // MiB)


def _bomb(ofd: bytes, entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(ofd)) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as target:
        for info in source.infolist():
            target.writestr(info, source.read(info))
        for name, content in entries.items():
            target.writestr(name, content)
    return out.getvalue()


def test_a_decompression_bomb_is_refused_before_it_is_inflated(home, client, issued):
    ofd = open(issued["expired"]["ofd"], "rb").read()
    one_big = _bomb(ofd, {"Doc_0/Res/big.bin": _sprinkled(33 * MiB)})
    sizes = [info.file_size for info in zipfile.ZipFile(io.BytesIO(one_big)).infolist()]
    assert len(one_big) < 2 * MiB and max(sizes) > 32 * MiB
    Package.open(one_big, Limits())  # the internal limits would inflate it all
    answer = client.post("/api/v1/verify", files={"file": ("bomb.ofd", one_big, "application/octet-stream")})
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "unreadable_document"
    assert "limit" in answer.json()["error"]["message"]

    small = TestClient(create_app(home, VerifySettings(**UNLIMITED, max_upload=MiB)))  # 4 MiB inflated at most
    many = _bomb(ofd, {f"Doc_0/Res/part{i}.bin": _sprinkled(2 * MiB) for i in range(3)})
    assert len(many) < MiB
    Package.open(many, Limits())
    refused = small.post("/api/v1/verify", files={"file": ("many.ofd", many, "application/octet-stream")})
    assert refused.status_code == 422 and "bytes in total" in refused.json()["error"]["message"]
    assert len(zlib.compress(_sprinkled(MiB))) * 200 > MiB  # the per-entry ratio is not what stopped them


def test_uploads_beyond_the_validation_slots_get_503_with_retry_after(home, issued, monkeypatch):
    app = create_app(home, VerifySettings(**UNLIMITED, max_validations=1))
    records = app.state.records
    entered, release = threading.Event(), threading.Event()
    real = records.verification_trust

    def slow_trust():
        entered.set()
        assert release.wait(60)
        return real()

    monkeypatch.setattr(records, "verification_trust", slow_trust)
    data = open(issued["expired"]["pdf"], "rb").read()
    upload = {"file": ("a.pdf", data, "application/pdf")}
    first: dict = {}
    worker = threading.Thread(target=lambda: first.update(answer=TestClient(app).post("/api/v1/verify",
                                                                                      files=upload)))
    worker.start()
    try:
        assert entered.wait(60)
        busy = TestClient(app).post("/api/v1/verify", files=upload)
        assert busy.status_code == 503 and busy.json()["error"]["code"] == "busy"
        assert busy.headers["retry-after"] == "5"
    finally:
        release.set()
        worker.join(60)
    assert first["answer"].status_code == 200
    assert first["answer"].json()["report"]["indication"] == "TOTAL_PASSED"
    assert TestClient(app).post("/api/v1/verify", files=upload).status_code == 200  # the slot is free again


# ---- last: revoking the QR signer (every licence of the department is signed by it) -------------------

def test_qr_codes_of_a_revoked_signer_are_not_authentic(home, client, issued):
    qr = issued["third"]["qr"]
    assert 'class="banner good"' in client.get(_path(qr)).text
    claims = decode_payload(qr).claims
    td = TrustDomain.open(str(home))
    try:
        (signer,) = [r for r in td.ca.certificates(profile="department-signer")
                     if key_id_of(r.der) == claims.key_id]
        td.ca.revoke(signer.serial, "key_compromise")
    finally:
        td.close()
    html = CHECKED.sub("", client.get(_path(qr)).text)  # trust_ttl=0: the revocation is seen at once
    assert "无法确认" in html and "banner good" not in html and issued["third"]["identifier"] not in html
    assert html == _unknown_page(client, qr)
    assert datetime.now(UTC) > signer.not_before  # it was a live certificate, revoked, not an expired one
