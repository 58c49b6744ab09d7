"""The purpose-limited annotated copy (加注件, issue 6) end to end: a department with the data
permission and a holder's grant of all fields for its purpose gets a sealed PDF or OFD copy of
the licence's current version with the signed answer; every other case is refused (and logged),
an unknown licence reads as today's 404; the copy verifies (our engine, `zhengyin verify`, the
OpenSSL 3 CLI on the seal signature), shows the licence's own QR code and the annotation, names
its purpose in its metadata, and the public service recognises it — expired after its time. The
PDF copy's CMS signature is checked by BouncyCastle and OpenSSL as the licence PDFs' are.

One development home per database (SQLite and PostgreSQL), driven through the department app.
"""

from __future__ import annotations

import base64
import io
import json
import re
import subprocess
import uuid
import zipfile
from datetime import UTC, datetime, timedelta

import pypdfium2
import pytest
import test_reuse_access as reuse
import zxingcpp
from sqlalchemy import func, select

from ca.names import credit_code_check_character
from hsm.sm3 import sm3
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from ledger.audit import AuditRecord
from licences.catalogue import Catalogue
from licences.reuse_clients import ClientRegistry
from licences.reuse_grants import GrantBook
from licences.usage_log import UsageRecord
from ofd.package import Package
from ofd.reader import read_ofd
from seals.seal_signature import read_seal_signature
from support.cli import run_cli
from trust.domain import TrustDomain
from trust.reuse_signing import verify_reuse_response
from trust.validation import validate_document
from verify_api import pages, texts
from verify_api.annotated_copies import copy_status
from verify_api.records import PublicRecords

BUSINESS = "11100000MB0000019L001"
PURPOSE = "办理住房公积金贷款：核验营业执照"
UNKNOWN = "1.2.156.3005.2.11100000MB0000019L001.11100000MB0000019L.99999.001.X"


# the home (SQLite and PostgreSQL), the reuse app and the verified trust list: test_reuse_access's
home, td, api, trust_document = reuse.home, reuse.td, reuse.api, reuse.trust_document
openssl = reuse.openssl  # the OpenSSL 3 command line, or a skip


def _other_business(number_tail: str, name: str) -> dict:
    data = dict(Catalogue.load().get(BUSINESS).example)
    first17 = "91350102MA0R3U5" + number_tail
    data["统一社会信用代码"] = first17 + credit_code_check_character(first17)
    data["名称"] = name
    return data


@pytest.fixture(scope="module")
def world(home):
    """Two business licences (one to be revoked), the data-service signer and seal, the trust list."""
    td = TrustDomain.open(str(home))
    try:
        business = dict(Catalogue.load().get(BUSINESS).example)
        a = td.licence_desk.issue(BUSINESS, business, issuer_code=DEMO_DEPARTMENT_CODE)
        r = td.licence_desk.issue(BUSINESS, _other_business("E1", "示例市将被吊销科技有限公司"),
                                  issuer_code=DEMO_DEPARTMENT_CODE)
    finally:
        td.close()
    return {"a": a, "r": r, "business": business, **reuse.signer_published(home)}


def _client(td, permissions, name=None) -> tuple[str, str, str]:
    name = name or f"市住房公积金管理中心 {uuid.uuid4().hex[:4]}"
    view, token = ClientRegistry(td.db, td.audit).create(name, permissions, actor="test")
    return view.id, token, name


def _grant(td, licence, client_id, *, purpose=PURPOSE, **kwargs):
    """A holder's grant (all fields by default) for 100 days: longer than any copy asks for, so
    the copy's expiry is the days asked for (a shorter grant caps it, see
    test_annotated_copy_review_fixes)."""
    kwargs.setdefault("minutes", 100 * 24 * 60)
    return reuse._grant(td, licence, client_id, purpose=purpose, **kwargs)


def _ask(api, token, reference, *, purpose=PURPOSE, copy=None, **extra):
    body = {"purpose": purpose, **extra}
    if copy is not None:
        body["annotated_copy"] = copy
    return api.post(f"/api/v1/reuse/licences/{reference}", json=body, headers={"Authorization": f"Bearer {token}"})


def _counts(td) -> tuple[int, int, int]:
    with td.db.transaction() as s:
        return (s.scalar(select(func.count(UsageRecord.id))),
                s.scalar(select(func.count(UsageRecord.id)).where(UsageRecord.copy_sm3.is_not(None))),
                s.scalar(select(func.count(AuditRecord.seq))))


def _row(td, response_id: str) -> UsageRecord:
    with td.db.transaction() as s:
        return s.scalars(select(UsageRecord).where(UsageRecord.response_id == response_id)).one()


# ---- the copy ------------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=["pdf", "ofd"])
def served(request, api, td, world):
    client_id, token, name = _client(td, [(BUSINESS, "data")])
    _grant(td, world["a"], client_id)
    response = _ask(api, token, world["a"].identifier, copy={"format": request.param, "valid_days": 7})
    assert response.status_code == 200, response.text
    answer = response.json()
    content = base64.b64decode(answer["annotated_copy_content"])
    return {"format": request.param, "answer": answer, "content": content, "client_id": client_id,
            "client_name": name, "token": token}


def test_the_signed_body_vouches_for_the_copys_exact_bytes(served, trust_document):
    answer, content = served["answer"], served["content"]
    named = answer["body"]["annotated_copy"]
    assert set(answer) == {"body", "signature", "annotated_copy_content"}
    assert named["sm3"] == sm3(content).hex() and named["size"] == len(content)
    assert named["format"] == served["format"]
    assert named["media_type"] == {"pdf": "application/pdf", "ofd": "application/ofd"}[served["format"]]
    issued = datetime.fromisoformat(answer["body"]["issued_at"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(named["expires"].replace("Z", "+00:00")) == issued + timedelta(days=7)
    result = verify_reuse_response(answer, trust_document, content)
    assert result.ok, [c for c in result.checks if not c.ok]
    assert [c.name for c in result.checks].count("annotated-copy") == 2  # the embedded content and the file
    # the copy's bytes are covered: another file, or other content, fails
    other = content[:-1] + bytes([content[-1] ^ 1])
    assert verify_reuse_response(answer, trust_document, other).sub_indication == "HASH_FAILURE"
    swapped = dict(answer, annotated_copy_content=base64.b64encode(other).decode())
    assert verify_reuse_response(swapped, trust_document).sub_indication == "HASH_FAILURE"
    # ... and the body naming it is signed
    changed = json.loads(json.dumps(answer))
    changed["body"]["annotated_copy"]["sm3"] = sm3(other).hex()
    assert verify_reuse_response(changed, trust_document, other).sub_indication == "SIG_CRYPTO_FAILURE"


def test_the_usage_log_records_the_copy(served, td, world):
    body = served["answer"]["body"]
    row = _row(td, body["response_id"])
    assert (row.outcome, row.identifier, row.client_id) == ("served-data", world["a"].identifier, served["client_id"])
    assert (row.copy_format, row.copy_sm3) == (served["format"], sm3(served["content"]).hex())
    assert row.copy_expires.isoformat().replace("+00:00", "Z") == body["annotated_copy"]["expires"]
    assert row.as_dict()["annotated_copy"]["sm3"] == row.copy_sm3
    with td.db.transaction() as s:
        audit = s.scalars(select(AuditRecord).where(AuditRecord.action == "reuse.access")
                          .order_by(AuditRecord.seq.desc())).all()
    assert any(body["response_id"] in a.payload and row.copy_sm3 in a.payload for a in audit)


def test_the_copy_verifies_with_our_engine_and_the_command_line(served, td, home, tmp_path):
    report = validate_document(served["content"], td.verification_trust(), datetime.now(UTC))
    assert report.indication == "TOTAL_PASSED", report.as_dict()
    (signature,) = report.signatures
    checks = {c.name for c in signature.checks}
    assert {"certificate-chain", "revocation"} <= checks
    if served["format"] == "ofd":
        assert {"seal-maker-trusted", "signer-in-seal", "seal-status"} <= checks
        assert signature.seal["name"].endswith("数据共享专用章")
        assert signature.seal["esid"] == served_seal(td)
    path = tmp_path / f"copy.{served['format']}"
    path.write_bytes(served["content"])
    code, out, err = run_cli(home, "verify", str(path), "--json")
    assert code == 0 and json.loads(out)["indication"] == "TOTAL_PASSED", out + err


def served_seal(td) -> str:
    from trust.data_seal import data_seals

    return data_seals(td)[-1].es_id


def test_a_tampered_copy_fails(served, td):
    content = served["content"]
    if served["format"] == "pdf":
        at = content.index(b"/Creator")  # in the signed first revision
        tampered = content[:at + 2] + bytes([content[at + 2] ^ 0x20]) + content[at + 3:]
    else:
        package = Package.open(content)
        page = next(n for n in package.names if n.endswith("Content.xml") and "Page" in n)
        out = io.BytesIO()
        with zipfile.ZipFile(io.BytesIO(content)) as source, zipfile.ZipFile(out, "w") as target:
            for info in source.infolist():
                data = source.read(info.filename)
                if info.filename == page:
                    data = data.replace(b"<", b" <", 1)  # one byte more at the start of the page
                target.writestr(info, data)
        tampered = out.getvalue()
    assert tampered != content
    report = validate_document(tampered, td.verification_trust(), datetime.now(UTC))
    assert report.indication == "TOTAL_FAILED", report.as_dict()


def test_the_pdf_copy_renders_with_the_licence_qr_code_and_the_annotation(served, world):
    if served["format"] != "pdf":
        pytest.skip("the PDF copy")
    page = pypdfium2.PdfDocument(served["content"])[0]
    image = page.render(scale=200 / 72).to_pil()
    decoded = [d.text for d in zxingcpp.read_barcodes(image) if d.format == zxingcpp.BarcodeFormat.QRCode]
    assert decoded == [world["a"].qr]  # the issuer's own signed QR code, as on the licence
    text = re.sub(r"\s+", "", page.get_textpage().get_text_range())
    body = served["answer"]["body"]
    expires = datetime.fromisoformat(body["annotated_copy"]["expires"].replace("Z", "+00:00"))
    china = expires.astimezone(texts.CHINA_TIME).strftime("%Y-%m-%d%H:%M:%S")
    for expected in ("加注件", "用证单位", served["client_name"].replace(" ", ""), "用证事由", PURPOSE, "加注时间",
                     "有效期至", china, "加注编号", body["response_id"], world["business"]["名称"],
                     world["a"].identifier, f"仅供{PURPOSE}使用"):
        assert expected in text, expected


def test_a_copy_is_made_only_with_the_versions_own_qr_code(world):
    from licences.annotated_copy import AnnotatedCopyError, check_payload

    a, r = world["a"], world["r"]
    assert a.record.qr_payload == a.qr and r.record.qr_payload == r.qr  # kept at issuance
    check_payload(a.qr, a.record)
    with pytest.raises(AnnotatedCopyError, match="not that licence version's"):
        check_payload(r.qr, a.record)
    with pytest.raises(AnnotatedCopyError, match="cannot be read"):
        check_payload("HTTP://LOCALHOST:8081/V/NOTAPAYLOAD", a.record)


def test_the_pdf_copy_metadata_carries_the_annotation(served, world):
    if served["format"] != "pdf":
        pytest.skip("the PDF copy")
    import pikepdf

    with pikepdf.open(io.BytesIO(served["content"])) as pdf:
        info = {str(k): str(v) for k, v in pdf.docinfo.items()}
    body = served["answer"]["body"]
    assert info["/AnnotationPurpose"] == PURPOSE
    assert info["/AnnotationClientId"] == served["client_id"]
    assert info["/AnnotationResponseId"] == body["response_id"]
    assert info["/AnnotationExpires"] == body["annotated_copy"]["expires"]
    assert info["/AnnotatedLicence"] == world["a"].identifier


def test_the_ofd_copy_metadata_and_text_carry_the_annotation(served, world):
    if served["format"] != "ofd":
        pytest.skip("the OFD copy")
    ofd = read_ofd(served["content"])
    custom = ofd.bodies[0].info.custom_data
    body = served["answer"]["body"]
    assert custom["AnnotationPurpose"] == PURPOSE
    assert custom["AnnotationClientName"] == served["client_name"]
    assert custom["AnnotationExpires"] == body["annotated_copy"]["expires"]
    assert custom["AnnotatedLicence"] == custom["LicenceIdentifier"] == world["a"].identifier
    text = re.sub(r"\s+", "", ofd.text()[0])
    assert "加注件" in text and PURPOSE in text and body["response_id"] in text


def _openssl_verify(openssl, tmp_path, certificate: bytes, data: bytes, signature: bytes) -> bool:
    (tmp_path / "c.der").write_bytes(certificate)
    subprocess.run([openssl, "x509", "-inform", "DER", "-in", "c.der", "-pubkey", "-noout", "-out", "p.pem"],
                   cwd=tmp_path, check=True, capture_output=True)
    (tmp_path / "m").write_bytes(data)
    (tmp_path / "s").write_bytes(signature)
    result = subprocess.run([openssl, "pkeyutl", "-verify", "-pubin", "-inkey", "p.pem", "-rawin", "-in", "m",
                             "-sigfile", "s", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"],
                            cwd=tmp_path, capture_output=True)
    return result.returncode == 0 and b"Verified Successfully" in result.stdout


def test_openssl_verifies_the_data_service_seal_signature(served, openssl, tmp_path, td, world):
    if served["format"] != "ofd":
        pytest.skip("the OFD seal signature (SES_Signature)")
    package = Package.open(served["content"])
    (name,) = [n for n in package.names if n.endswith("SignedValue.dat")]
    value = read_seal_signature(package.read(name))
    assert value.data_hash.payload == sm3(package.read(name.rsplit("/", 1)[0] + "/Signature.xml"))
    # the signer is the data-service-signer certificate: the reuse service's one key
    from ca.authority import certificate_of

    signer = certificate_of(td.ca.find(world["signer"]["serial"]))
    assert value.signer_certificate == signer.dump()
    assert _openssl_verify(openssl, tmp_path, value.signer_certificate, value.signed_bytes,
                           value.signature.payload)
    seal = value.seal
    assert _openssl_verify(openssl, tmp_path, seal.maker_certificate, seal.maker_signed_bytes,
                           seal.maker_signature.payload)
    assert not _openssl_verify(openssl, tmp_path, value.signer_certificate, value.signed_bytes + b"x",
                               value.signature.payload)


def _pdf_signature(data: bytes) -> tuple[list[int], bytes, bytes]:
    """The PDF copy's one signature: its /ByteRange, the CMS in /Contents (without the zero
    padding) and the bytes the range covers — read with pikepdf and the raw bytes, not pdf/."""
    import pikepdf
    from asn1crypto import parser

    with pikepdf.open(io.BytesIO(data)) as pdf:
        (field,) = [f for f in pdf.Root.AcroForm.Fields if f.get("/FT") == "/Sig"]
        byte_range = [int(v) for v in field.V.ByteRange]
    a0, a, b, c = byte_range
    padded = bytes.fromhex(data[a + 1:b - 1].decode("ascii"))  # the hex string between < and >
    _, _, _, header, body, _ = parser.parse(padded)
    return byte_range, padded[:len(header) + len(body)], data[a0:a] + data[b:b + c]


@pytest.fixture(scope="module")
def bc_cms(tmp_path_factory) -> list[str]:
    """BouncyCastle's CMS verifier (tests/interop/java/CmsTool.java), compiled once."""
    from support.java import BC_JARS, JAVA_SOURCES, compile_java_tool

    classpath = compile_java_tool(tmp_path_factory, JAVA_SOURCES / "CmsTool.java", BC_JARS)
    return ["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", classpath, "CmsTool", "batch"]


def test_bouncycastle_and_openssl_verify_the_pdf_copys_seal_signature(served, openssl, bc_cms, tmp_path, td,
                                                                       world):
    """As tests/interop/test_pdf_signing_interop.py does for licence PDFs: BouncyCastle accepts the
    /Contents over the bytes its /ByteRange covers (and not over one byte changed); OpenSSL finds
    that messageDigest is their SM3 and verifies the SM2 signature over the signed attributes with
    the data-service signer's certificate — the reuse service's one key."""
    if served["format"] != "pdf":
        pytest.skip("the PDF copy's CMS signature")
    from asn1crypto import cms

    from ca.authority import certificate_of

    data = served["content"]
    (a0, a, b, c), signed_data, covered = _pdf_signature(data)
    assert a0 == 0 and b + c == len(data)  # the whole file but the /Contents string
    assert data[a:a + 1] == b"<" and data[b - 1:b] == b">"
    changed = covered[:100] + bytes([covered[100] ^ 1]) + covered[101:]
    (tmp_path / "jobs.txt").write_text(f"verify {signed_data.hex()} {covered.hex()}\n"
                                       f"verify {signed_data.hex()} {changed.hex()}\n", encoding="ascii")
    res = subprocess.run([*bc_cms, str(tmp_path / "jobs.txt")], capture_output=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    assert res.stdout.decode("ascii").splitlines() == ["ok", "bad-digest"]

    content = cms.ContentInfo.load(signed_data)["content"]
    (signer_info,) = content["signer_infos"]
    (certificate,) = [e.chosen.dump() for e in content["certificates"]
                      if e.chosen.serial_number == signer_info["sid"].chosen["serial_number"].native]
    assert certificate == certificate_of(td.ca.find(world["signer"]["serial"])).dump()
    attributes = signer_info["signed_attrs"]
    digest = next(a["values"][0].native for a in attributes if a["type"].native == "message_digest")
    (tmp_path / "covered").write_bytes(covered)
    dgst = subprocess.run([openssl, "dgst", "-sm3", "-binary", "covered"], cwd=tmp_path, capture_output=True,
                          check=True)
    assert digest == dgst.stdout
    signed = b"\x31" + attributes.dump()[1:]  # the SET OF the attributes, as signed (RFC 5652 §5.4)
    signature = signer_info["signature"].native
    assert _openssl_verify(openssl, tmp_path, certificate, signed, signature)
    assert not _openssl_verify(openssl, tmp_path, certificate, signed[:-1] + bytes([signed[-1] ^ 1]), signature)


def test_verify_reuse_checks_the_copy_file(served, world, home, tmp_path, td):
    from ca.authority import certificate_of
    from ca.certificates import pem

    root = tmp_path / "root.pem"
    root.write_bytes(pem(certificate_of(td.ca.live_ca_certificates("root")[0])))
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps(served["answer"], ensure_ascii=False), encoding="utf-8")
    copy = tmp_path / "copy.bin"
    copy.write_bytes(served["content"])
    args = ["--trust-list", str(world["trust_list"]), "--anchor", str(root), "--json"]
    code, out, err = run_cli(home, "verify-reuse", str(answer), "--copy", str(copy), *args)
    assert code == 0 and json.loads(out)["ok"], out + err
    copy.write_bytes(served["content"] + b"\n")
    code, out, _ = run_cli(home, "verify-reuse", str(answer), "--copy", str(copy), *args)
    assert code == 1 and json.loads(out)["answer"]["sub_indication"] == "HASH_FAILURE"


# ---- the public service ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def records(home, world):
    public = PublicRecords(home, trust_ttl=0)
    yield public
    public.close()


def test_the_public_service_recognises_the_copy_and_its_expiry(served, records, world):
    digest = sm3(served["content"]).hex()
    body = served["answer"]["body"]
    expires = datetime.fromisoformat(body["annotated_copy"]["expires"].replace("Z", "+00:00"))
    now = copy_status(records, digest, expires - timedelta(seconds=1))
    assert now is not None and now["expired"] is False
    assert (now["response_id"], now["purpose"], now["client_name"], now["licence"], now["expires"]) == \
        (body["response_id"], PURPOSE, served["client_name"], world["a"].identifier,
         body["annotated_copy"]["expires"])
    later = copy_status(records, digest, expires)
    assert later is not None and later["expired"] is True
    assert copy_status(records, sm3(served["content"] + b"x").hex(), expires) is None
    assert copy_status(records, "not-a-digest", expires) is None
    # the licence's own documents are not copies
    assert copy_status(records, world["a"].record.pdf_sm3, expires) is None


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_report_page_shows_the_copy_and_its_expiry(served, records, td, lang):
    digest = sm3(served["content"]).hex()
    expires = datetime.fromisoformat(served["answer"]["body"]["annotated_copy"]["expires"].replace("Z", "+00:00"))
    report = validate_document(served["content"], td.verification_trust(), datetime.now(UTC))
    words = texts.TEXTS[lang]
    for moment, expired in ((expires - timedelta(days=1), False), (expires + timedelta(days=1), True)):
        status = copy_status(records, digest, moment)
        html = pages.render("report.html", lang, checked_at=moment, report=report, licence=None, reason=None,
                            annotated_copy=status)
        assert served["client_name"] in html and PURPOSE in html and status["response_id"] in html
        assert words["copy_title"] in html
        assert (words["copy_expired"] in html) is expired
        assert ('class="banner bad"' in html) is expired  # the verdict itself is TOTAL_PASSED
    assert {"zh": "加注件已过期", "en": "Annotated copy expired"}[lang] == words["copy_expired"]
    plain = pages.render("report.html", lang, checked_at=expires, report=report, licence=None, reason=None)
    assert words["copy_title"] not in plain and words["copy_expired"] not in plain


# ---- refusals ----------------------------------------------------------------------------------

REFUSALS = ("metadata-only", "no-grant", "some-fields", "other-purpose", "expired-grant")


@pytest.mark.parametrize("case", REFUSALS)
def test_a_copy_without_a_grant_of_all_fields_for_the_purpose_is_refused_and_logged(api, td, world, case):
    permission = "metadata" if case == "metadata-only" else "data"
    client_id, token, _ = _client(td, [(BUSINESS, permission)])
    if case in ("metadata-only", "some-fields"):
        _grant(td, world["a"], client_id, fields=None if case == "metadata-only" else ["名称"])
    elif case == "other-purpose":
        _grant(td, world["a"], client_id, purpose="另一事由")
    elif case == "expired-grant":
        _grant(td, world["a"], client_id, now=datetime.now(UTC) - timedelta(hours=2), minutes=60)
    before = _counts(td)
    response = _ask(api, token, world["a"].identifier, copy={"format": "pdf"})
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "annotated_copy_not_granted"
    assert "all fields" in error["message"] and "purpose" in error["message"]
    after = _counts(td)
    assert (after[0] - before[0], after[1] - before[1], after[2] - before[2]) == (1, 0, 1)  # one row, one audit
    with td.db.transaction() as s:
        row = s.scalars(select(UsageRecord).where(UsageRecord.client_id == client_id)).one()
    assert (row.outcome, row.identifier, row.fields, row.copy_sm3) == \
        ("annotated-copy-not-granted", world["a"].identifier, [], None)
    # the same request without a copy is answered as before
    assert _ask(api, token, world["a"].identifier).status_code == 200


def test_a_revoked_grant_stops_copies_at_once(api, td, world):
    client_id, token, _ = _client(td, [(BUSINESS, "data")])
    grant = _grant(td, world["a"], client_id)
    assert _ask(api, token, world["a"].identifier, copy={"format": "ofd"}).status_code == 200
    GrantBook(td.db, td.audit).revoke(grant.id, [world["a"].identifier], revoked_by="cred-test")
    response = _ask(api, token, world["a"].identifier, copy={"format": "ofd"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "annotated_copy_not_granted"


def test_a_revoked_licence_gets_no_copy(api, td, world):
    client_id, token, _ = _client(td, [(BUSINESS, "data")])
    _grant(td, world["r"], client_id)
    assert _ask(api, token, world["r"].identifier, copy={"format": "pdf"}).status_code == 200
    td.licences.revoke(world["r"].identifier, "吊销营业执照（测试）")
    before = _counts(td)
    response = _ask(api, token, world["r"].identifier, copy={"format": "pdf"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "annotated_copy_not_granted"
    assert tuple(a - b for a, b in zip(_counts(td), before, strict=True)) == (1, 0, 1)


def test_an_unknown_or_hidden_licence_reads_as_todays_404(api, td, world):
    _, token, _ = _client(td, [(BUSINESS, "data")])
    _, other_type, _ = _client(td, [("11100000MB0000027F001", "data")])
    plain = _ask(api, token, UNKNOWN)
    before = _counts(td)
    answers = [_ask(api, token, UNKNOWN, copy={"format": "pdf"}),
               _ask(api, other_type, world["a"].identifier, copy={"format": "ofd"})]
    assert {(r.status_code, r.text) for r in answers} == {(plain.status_code, plain.text)} and plain.status_code == 404
    after = _counts(td)
    assert (after[0] - before[0], after[1] - before[1]) == (2, 0)  # logged as not found, no copy


@pytest.mark.parametrize("copy", [{"format": "pdf", "valid_days": 0}, {"format": "pdf", "valid_days": 91},
                                  {"format": "pdf", "valid_days": "7"}, {"format": "docx"}, {},
                                  {"format": "pdf", "pages": 1}, "pdf"])
def test_a_malformed_copy_request_is_a_400_and_writes_nothing(api, td, world, copy):
    client_id, token, _ = _client(td, [(BUSINESS, "data")])
    _grant(td, world["a"], client_id)
    before = _counts(td)
    response = _ask(api, token, world["a"].identifier, copy=copy)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request", response.text[:300]
    assert "annotated_copy" in response.json()["error"]["message"]
    assert _counts(td) == before


def test_the_default_validity_is_30_days_and_90_is_the_most(api, td, world):
    """Under a grant longer than 90 days (and of a long-term licence): the days asked for. A
    grant that ends sooner caps the copy (H1: a copy never outlives the holder's consent)."""
    client_id, token, _ = _client(td, [(BUSINESS, "data")])
    _grant(td, world["a"], client_id)
    assert world["a"].record.valid_until is None  # 长期: the licence caps nothing
    for asked, days in (({"format": "pdf"}, 30), ({"format": "pdf", "valid_days": 90}, 90)):
        body = _ask(api, token, world["a"].identifier, copy=asked).json()["body"]
        issued = datetime.fromisoformat(body["issued_at"].replace("Z", "+00:00"))
        assert body["annotated_copy"]["expires"] == \
            (issued + timedelta(days=days)).isoformat().replace("+00:00", "Z")
        assert body["annotated_copy"]["expires_capped_by"] is None
    short_id, short_token, _ = _client(td, [(BUSINESS, "data")])
    grant = _grant(td, world["a"], short_id, minutes=60)
    body = _ask(api, short_token, world["a"].identifier, copy={"format": "pdf", "valid_days": 90}).json()["body"]
    until = grant.valid_until.astimezone(UTC).replace(microsecond=0)
    assert body["annotated_copy"]["expires"] == until.isoformat().replace("+00:00", "Z")
    assert body["annotated_copy"]["expires_capped_by"] == "grant"
