"""E-licences end to end on a development home: every shipped type is issued as a sealed OFD and
PDF whose QR code decodes from a 200-dpi render and verifies offline; revoking a licence changes
the registry, never the documents; bad input changes nothing."""

from __future__ import annotations

import json

import pytest

from support.cli import run_cli


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def types(home) -> list[dict]:
    code, out, err = run_cli(home, "licence", "types", "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def issued(home, types, tmp_path_factory) -> dict[str, dict]:
    out_dir = tmp_path_factory.mktemp("licences")
    result = {}
    for licence_type in types:
        data = out_dir / f"{licence_type['code']}.json"
        data.write_text(json.dumps(licence_type["example"], ensure_ascii=False), encoding="utf-8")
        code, out, err = run_cli(
            home,
            "licence",
            "issue",
            "--type",
            licence_type["code"],
            "--data",
            str(data),
            "--out",
            str(out_dir),
            "--json",
        )
        assert code == 0, err + out
        result[licence_type["code"]] = json.loads(out)
    return result


def test_three_types_with_examples(types):
    assert len(types) >= 3
    names = {t["name"] for t in types}
    assert {"营业执照", "食品经营许可证"} <= names
    assert all(t["example"] and t["code"] for t in types)


def test_every_issued_licence_verifies_as_ofd_and_pdf(home, issued):
    for licence in issued.values():
        for kind in ("ofd", "pdf"):
            code, out, err = run_cli(home, "verify", licence[kind], "--json")
            report = json.loads(out)
            assert code == 0 and report["indication"] == "TOTAL_PASSED", (kind, out, err)
            assert report["kind"] == kind


@pytest.mark.interop
def test_qr_decodes_from_a_200_dpi_render_and_verifies_offline(home, issued):
    pypdfium2 = pytest.importorskip("pypdfium2")
    zxingcpp = pytest.importorskip("zxingcpp")
    for licence in issued.values():
        document = pypdfium2.PdfDocument(licence["pdf"])
        image = document[0].render(scale=200 / 72).to_pil()
        found = [r.text for r in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)]
        assert found == [licence["qr"]]
        code, out, err = run_cli(home, "verify-qr", found[0], "--json")
        assert code == 0 and json.loads(out)["claims"]["identifier"] == licence["identifier"], out + err


def test_a_tampered_qr_is_refused(home, issued):
    qr = next(iter(issued.values()))["qr"]
    flipped = qr[:-5] + ("A" if qr[-5] != "A" else "B") + qr[-4:]
    code, out, _ = run_cli(home, "verify-qr", flipped, "--json")
    assert code == 1 and json.loads(out)["ok"] is False


def test_revoked_licence_documents_still_verify_while_the_registry_says_revoked(home, issued):
    licence = next(iter(issued.values()))
    code, out, err = run_cli(
        home, "licence", "revoke", licence["identifier"], "--reason", "issued in error", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["status"] == "07"
    code, out, _ = run_cli(home, "licence", "show", licence["identifier"], "--json")
    shown = json.loads(out)
    assert shown["status"] == "07" and [e["act"] for e in shown["events"]][-1] == "revoke"
    assert run_cli(home, "verify", licence["pdf"])[0] == 0  # the documents are never rewritten
    code, _, err = run_cli(home, "licence", "resume", licence["identifier"])
    assert code == 5, err  # revocation is final


def test_bad_data_reports_every_error_and_issues_nothing(home, types, tmp_path):
    before = json.loads(run_cli(home, "licence", "list", "--json")[1])
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"名称": 1}, ensure_ascii=False), encoding="utf-8")
    code, out, _ = run_cli(
        home,
        "licence",
        "issue",
        "--type",
        types[0]["code"],
        "--data",
        str(bad),
        "--out",
        str(tmp_path),
        "--json",
    )
    errors = json.loads(out)["errors"]
    assert code == 6 and len(errors) >= 3 and all(e["message_zh"] and e["message_en"] for e in errors)
    assert json.loads(run_cli(home, "licence", "list", "--json")[1]) == before
    assert not list(tmp_path.glob("*.ofd"))


@pytest.mark.parametrize(
    "args, code",
    [
        (["licence", "issue", "--type", "999", "--data", "{data}", "--out", "{out}"], 4),
        (["licence", "show", "1.2.156.3005.2.11100000MB0000019L001.11350100MB0000000Y.2.001.X"], 6),
    ],
)
def test_clear_errors(home, types, tmp_path, args, code):
    data = tmp_path / "d.json"
    data.write_text(json.dumps(types[0]["example"], ensure_ascii=False), encoding="utf-8")
    argv = [a.format(data=data, out=tmp_path) for a in args]
    got, _, err = run_cli(home, *argv)
    assert got == code and err, err


def test_a_payload_that_is_no_payload_is_a_negative_answer(home):
    code, out, _ = run_cli(home, "verify-qr", "HTTPS://EXAMPLE.GOV.CN/V/NOTAPAYLOAD", "--json")
    report = json.loads(out)
    assert code == 1 and report["sub_indication"] == "FORMAT_FAILURE"


def test_no_usable_licence_seal_issues_nothing(home, types, tmp_path):
    seals = json.loads(run_cli(home, "seal", "list", "--json")[1])
    licence_seal = next(s["esid"] for s in seals if s["kind"] == "licence" and s["status"] == "active")
    data = tmp_path / "d.json"
    data.write_text(json.dumps(types[0]["example"], ensure_ascii=False), encoding="utf-8")
    before = json.loads(run_cli(home, "licence", "list", "--json")[1])
    assert run_cli(home, "seal", "suspend", licence_seal, "--reason", "audit")[0] == 0
    try:
        code, _, err = run_cli(
            home, "licence", "issue", "--type", types[0]["code"], "--data", str(data), "--out", str(tmp_path)
        )
        assert code == 5 and "电子证照专用章" in err
    finally:
        assert run_cli(home, "seal", "resume", licence_seal)[0] == 0
    assert json.loads(run_cli(home, "licence", "list", "--json")[1]) == before
    assert not list(tmp_path.glob("*.pdf"))


@pytest.mark.parametrize("field_value", ["陈志远\n", "\u200b\u200b", "陈\u202e远", "陈\U0002a6a5远"])
def test_values_a_licence_cannot_show_truthfully_are_field_errors(home, types, tmp_path, field_value):
    licence_type = next(t for t in types if t["name"] == "营业执照")
    data = dict(licence_type["example"])
    data["法定代表人"] = field_value
    path = tmp_path / "d.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    code, out, _ = run_cli(
        home,
        "licence",
        "issue",
        "--type",
        licence_type["code"],
        "--data",
        str(path),
        "--out",
        str(tmp_path),
        "--json",
    )
    assert code == 6 and any(e["path"] == "$.法定代表人" for e in json.loads(out)["errors"])


def test_an_unwritable_output_directory_is_refused_before_issuing(home, types, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    data = tmp_path / "d.json"
    data.write_text(json.dumps(types[0]["example"], ensure_ascii=False), encoding="utf-8")
    before = json.loads(run_cli(home, "licence", "list", "--json")[1])
    code, _, err = run_cli(
        home, "licence", "issue", "--type", types[0]["code"], "--data", str(data), "--out", str(blocker)
    )
    assert code == 6 and "cannot write" in err
    assert json.loads(run_cli(home, "licence", "list", "--json")[1]) == before


def test_identifiers_take_ascii_digits_only():
    from licences.identifiers import IdentifierError, LicenceIdentifier

    good = LicenceIdentifier("11100000MB0000019L001", "11350100MB0000000Y", 11).text
    with pytest.raises(IdentifierError):
        LicenceIdentifier.parse(good.replace(".11.001.", ".1\u0661.001."))


def test_a_qr_signed_by_a_revoked_key_no_longer_verifies(tmp_path, types):
    home = tmp_path / "home"
    assert run_cli(home, "init")[0] == 0
    data = tmp_path / "d.json"
    data.write_text(json.dumps(types[0]["example"], ensure_ascii=False), encoding="utf-8")
    code, out, err = run_cli(
        home,
        "licence",
        "issue",
        "--type",
        types[0]["code"],
        "--data",
        str(data),
        "--out",
        str(tmp_path),
        "--json",
    )
    assert code == 0, err
    qr = json.loads(out)["qr"]
    assert run_cli(home, "verify-qr", qr)[0] == 0
    seals = json.loads(run_cli(home, "seal", "list", "--json")[1])
    licence_seal = next(s["esid"] for s in seals if s["kind"] == "licence")
    # dual control: one officer files the revocation, a second one approves it
    code, out, err = run_cli(home, "seal", "revoke", licence_seal, "--reason", "key lost",
                             "--certificate-reason", "key_compromise", "--json", env={"ZHENGYIN_ACTOR": "officer-a"})
    assert code == 0 and json.loads(out)["pending_approval"], err
    code, _, err = run_cli(home, "approvals", "approve", json.loads(out)["id"], env={"ZHENGYIN_ACTOR": "officer-b"})
    assert code == 0, err
    code, out, _ = run_cli(home, "verify-qr", qr, "--json")
    assert code == 1 and json.loads(out)["indication"] != "TOTAL_PASSED"
