"""The engine's own word on an annotated copy (加注件), offline (review finding M2 b): the
document-level check ``annotated-copy-validity`` passes before the copy's sealed expiry ("annotated
copy for <purpose>, valid until <expiry>") and fails TOTAL_FAILED / EXPIRED after it — in
validate_document, `zhengyin verify` and the public POST /api/v1/verify — while the seal's own
report stays TOTAL_PASSED. An annotation no valid seal covers (added or changed after sealing)
counts for nothing and says so (NOT_COVERED); an ordinary licence has no such check.

The home, licences, signer and seal are test_annotated_copy_service's (one home per database).
"""

from __future__ import annotations

import base64
import io
import json
import re
import zipfile
from datetime import UTC, datetime, timedelta

import pikepdf
import pytest
import test_annotated_copy_service as copies
import test_annotated_copy_upload as uploads
from lxml import etree

import verify_api.app as public_app
from support.cli import run_cli
from trust.copy_validity import CHECK
from trust.validation import validate_document

PURPOSE, BUSINESS = copies.PURPOSE, copies.BUSINESS
home, world, td, api, public = copies.home, copies.world, copies.td, copies.api, uploads.public


@pytest.fixture(scope="module", params=["pdf", "ofd"])
def copy(request, api, td, world) -> dict:
    client_id, token, _ = copies._client(td, [(BUSINESS, "data")])
    copies._grant(td, world["a"], client_id)
    answer = copies._ask(api, token, world["a"].identifier, copy={"format": request.param, "valid_days": 3}).json()
    expires = datetime.fromisoformat(answer["body"]["annotated_copy"]["expires"].replace("Z", "+00:00"))
    return {"format": request.param, "content": base64.b64decode(answer["annotated_copy_content"]),
            "expires": expires, "expires_text": answer["body"]["annotated_copy"]["expires"]}


def _check(report) -> dict | None:
    found = [c for c in report.as_dict()["checks"] if c["name"] == CHECK]
    assert len(found) <= 1
    return found[0] if found else None


def test_the_engine_says_until_when_and_then_expired(copy, td):
    trust = td.verification_trust()
    before = validate_document(copy["content"], trust, copy["expires"] - timedelta(minutes=1))
    assert before.indication == "TOTAL_PASSED", before.as_dict()
    check = _check(before)
    assert check["passed"] and f"annotated copy for {PURPOSE}, valid until {copy['expires_text']}" in check["detail"]
    after = validate_document(copy["content"], trust, copy["expires"])
    assert (after.indication, after.sub_indication) == ("TOTAL_FAILED", "EXPIRED"), after.as_dict()
    check = _check(after)
    assert not check["passed"] and check["code"] == "EXPIRED" and "expired" in check["detail"]
    assert [s.indication for s in after.signatures] == ["TOTAL_PASSED"]  # the seal is as good as it was


def test_an_ordinary_licence_has_no_copy_check(world, td):
    for data in (world["a"].pdf, world["a"].ofd):
        report = validate_document(data, td.verification_trust(), datetime.now(UTC))
        assert report.indication == "TOTAL_PASSED" and _check(report) is None


def test_the_command_line_says_it(copy, home, tmp_path):
    path = tmp_path / f"copy.{copy['format']}"
    path.write_bytes(copy["content"])
    code, out, err = run_cli(home, "verify", str(path), "--json")
    assert code == 0, out + err
    check = _check_dict(json.loads(out))
    assert check["passed"] and PURPOSE in check["detail"]
    later = (copy["expires"] + timedelta(hours=1)).isoformat()
    code, out, _ = run_cli(home, "verify", str(path), "--json", "--at", later)
    body = json.loads(out)
    assert code != 0 and (body["indication"], body["sub_indication"]) == ("TOTAL_FAILED", "EXPIRED")
    assert _check_dict(body)["code"] == "EXPIRED"


def _check_dict(body: dict) -> dict:
    (check,) = [c for c in body["checks"] if c["name"] == CHECK]
    return check


def test_the_public_upload_report_says_it(copy, public, monkeypatch):
    for moment, passed in ((copy["expires"] - timedelta(minutes=1), True), (copy["expires"], False)):
        monkeypatch.setattr(public_app, "_now", lambda moment=moment: moment)
        report = uploads._upload(public, copy["content"], copy["format"]).json()["report"]
        assert _check_dict(report)["passed"] is passed
        assert report["indication"] == ("TOTAL_PASSED" if passed else "TOTAL_FAILED")


# ---- an annotation no seal covers -----------------------------------------------------------------

def _pdf_string(text: str) -> bytes:
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode("ascii") + b">"


def _pdf_with_info(data: bytes, changes: dict[str, str]) -> bytes:
    """``data`` with an incremental update whose trailer names a new information dictionary:
    the old one's text entries with ``changes`` applied (no signature covers the update)."""
    with pikepdf.open(io.BytesIO(data)) as pdf:
        info = {str(k).lstrip("/"): str(v) for k, v in pdf.docinfo.items() if isinstance(v, pikepdf.String)}
    info.update(changes)
    tail = data[data.rindex(b"trailer"):]
    size = int(re.search(rb"/Size (\d+)", tail).group(1))
    root = re.search(rb"/Root (\d+ \d+ R)", tail).group(1).decode()
    prev = int(re.search(rb"startxref\s+(\d+)", tail).group(1))
    ids = re.search(rb"/ID\s*\[[^\]]*\]", tail)
    start = len(data)
    obj = (f"{size} 0 obj\n<< ".encode() + b" ".join(b"/" + k.encode() + b" " + _pdf_string(v)
                                                      for k, v in info.items()) + b" >>\nendobj\n")
    xref_at = start + len(obj)
    xref = f"xref\n{size} 1\n{start:010d} 00000 n\r\n".encode()
    trailer = (f"trailer\n<< /Size {size + 1} /Root {root} /Info {size} 0 R /Prev {prev} ".encode()
               + (ids.group(0) if ids else b"") + f" >>\nstartxref\n{xref_at}\n%%EOF\n".encode())
    return data + obj + xref + trailer


def _qualified(ns: str | None):
    return (lambda tag: f"{{{ns}}}{tag}") if ns else (lambda tag: tag)


def _ofd_with_custom(data: bytes, changes: dict[str, str]) -> bytes:
    """``data`` with OFD.xml's CustomDatas changed (or made): no signature matches it any more."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w") as target:
        for entry in source.infolist():
            content = source.read(entry.filename)
            if entry.filename == "OFD.xml":
                root = etree.fromstring(content)
                q = _qualified(root.nsmap.get("ofd") or root.nsmap.get(None))
                info = root.find(f".//{q('DocInfo')}")
                datas = info.find(q("CustomDatas"))
                if datas is None:
                    datas = etree.SubElement(info, q("CustomDatas"))
                for name, value in changes.items():
                    node = next((c for c in datas if c.get("Name") == name), None)
                    if node is None:
                        node = etree.SubElement(datas, q("CustomData"), Name=name)
                    node.text = value
                content = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
            target.writestr(entry, content)
    return out.getvalue()


def _changed(data: bytes, fmt: str, changes: dict[str, str]) -> bytes:
    return _pdf_with_info(data, changes) if fmt == "pdf" else _ofd_with_custom(data, changes)


def test_an_expiry_moved_after_sealing_counts_for_nothing(copy, td):
    later = (copy["expires"] + timedelta(days=365)).isoformat().replace("+00:00", "Z")
    forged = _changed(copy["content"], copy["format"], {"AnnotationExpires": later})
    report = validate_document(forged, td.verification_trust(), copy["expires"] + timedelta(days=1))
    assert report.indication == "TOTAL_FAILED", report.as_dict()
    check = _check(report)
    assert check is not None and not check["passed"]
    assert check["code"] == "NOT_COVERED" and later not in check["detail"]
    assert "no valid seal covers" in check["detail"]
    # the seal itself refuses the change: PDF, an /Info replaced after signing; OFD, OFD.xml is signed
    assert report.signatures[0].sub_indication == ("NOT_COVERED" if copy["format"] == "pdf" else "HASH_FAILURE")


def test_an_annotation_shown_unlike_the_sealed_one_or_unreadable_is_said():
    """Should a later revision be allowed to change the information dictionary, what the seal
    covers still decides, and the difference is a failure (the judgement on its own)."""
    from trust.copy_validity import judge_annotation

    now = datetime(2026, 3, 4, tzinfo=UTC)
    sealed = {"AnnotatedCopy": "加注件", "AnnotationPurpose": PURPOSE, "AnnotationExpires": "2026-03-10T00:00:00Z"}
    shown = dict(sealed, AnnotationExpires="2027-03-10T00:00:00Z")
    changed = judge_annotation(shown, sealed, now)
    assert (changed.ok, changed.code) == (False, "NOT_COVERED") and "2026-03-10T00:00:00Z" in changed.detail
    assert judge_annotation(sealed, sealed, now).ok
    broken = dict(sealed, AnnotationExpires="next week")
    assert judge_annotation(broken, broken, now).code == "FORMAT_FAILURE"
    assert judge_annotation({"Title": "证照"}, {"Title": "证照"}, now) is None


@pytest.mark.parametrize("fmt", ["pdf", "ofd"])
def test_an_annotation_added_to_a_sealed_licence_after_sealing_counts_for_nothing(world, td, fmt):
    licence = world["a"]
    added = {"AnnotatedCopy": "加注件", "AnnotationPurpose": PURPOSE,
             "AnnotationExpires": (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
             .isoformat().replace("+00:00", "Z")}
    data = _changed(licence.pdf if fmt == "pdf" else licence.ofd, fmt, added)
    report = validate_document(data, td.verification_trust(), datetime.now(UTC))
    check = _check(report)
    assert check is not None and not check["passed"] and check["code"] == "NOT_COVERED", report.as_dict()
    assert "no valid seal covers" in check["detail"]
    assert report.indication == "TOTAL_FAILED"
