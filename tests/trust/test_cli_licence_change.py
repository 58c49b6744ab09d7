"""``zhengyin licence change|renew`` and ``verify-qr``'s verification-base check on a development
home: new versions printed like ``licence issue``, sealed documents that verify, the old version
superseded, refusals with their exit codes and nothing recorded."""

from __future__ import annotations

import json

import pytest

from ca.names import credit_code_check_character
from licences.identifiers import LicenceIdentifier
from support.cli import run_cli

BUSINESS = "11100000MB0000019L001"
FOOD = "11100000MB0000019L002"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def examples(home) -> dict[str, dict]:
    code, out, err = run_cli(home, "licence", "types", "--json")
    assert code == 0, err
    return {t["code"]: t["example"] for t in json.loads(out)}


_serial = iter(range(1, 10_000))


def _data_file(tmp_path, data: dict):
    path = tmp_path / f"data-{next(_serial)}.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _business(examples, **changes) -> dict:
    first17 = f"91350102MA{next(_serial) + 5000:07d}"
    data = dict(examples[BUSINESS], 统一社会信用代码=first17 + credit_code_check_character(first17))
    data.update(changes)
    return data


def _issue(home, tmp_path, type_code: str, data: dict) -> dict:
    code, out, err = run_cli(home, "licence", "issue", "--type", type_code, "--data",
                             str(_data_file(tmp_path, data)), "--out", str(tmp_path), "--json")
    assert code == 0, err + out
    return json.loads(out)


def _show(home, identifier: str) -> dict:
    code, out, err = run_cli(home, "licence", "show", identifier, "--json")
    assert code == 0, err
    return json.loads(out)


def _count(home) -> int:
    code, out, _ = run_cli(home, "licence", "list", "--limit", "500", "--json")
    assert code == 0
    return len(json.loads(out))


def test_change_issues_the_next_version_whose_documents_verify(home, examples, tmp_path):
    first = _issue(home, tmp_path, BUSINESS, _business(examples))
    assert first["previous_identifier"] is None
    number = _show(home, first["identifier"])["licence_number"]
    changed_data = _business(examples, 住所="示例省示例市鼓楼区东街100号", 统一社会信用代码=number)
    code, out, err = run_cli(home, "licence", "change", first["identifier"], "--data",
                             str(_data_file(tmp_path, changed_data)), "--reason", "住所变更", "--out",
                             str(tmp_path / "changed"), "--json")
    assert code == 0, err + out
    changed = json.loads(out)
    assert set(changed) == {"identifier", "previous_identifier", "ofd", "pdf", "qr"}
    assert changed["previous_identifier"] == first["identifier"]
    assert changed["identifier"].split(".")[-2] == "002"
    for kind in ("ofd", "pdf"):
        code, out, err = run_cli(home, "verify", changed[kind], "--json")
        assert code == 0 and json.loads(out)["indication"] == "TOTAL_PASSED", out + err
    old = _show(home, first["identifier"])
    assert (old["status"], old["superseded_by"]) == ("99", changed["identifier"])
    code, out, err = run_cli(home, "verify-qr", changed["qr"], "--json")
    assert code == 0, out + err
    # The library lists superseded versions by name, as the API's status filter does.
    code, out, err = run_cli(home, "licence", "list", "--status", "superseded", "--limit", "500", "--json")
    assert code == 0, err
    listed = {r["identifier"] for r in json.loads(out)}
    assert first["identifier"] in listed and changed["identifier"] not in listed
    code, out, err = run_cli(home, "licence", "list", "--status", "replaced", "--json")
    assert code != 0 and "unknown licence status" in err and "Traceback" not in err


def test_renew_without_data_keeps_the_data_and_gives_a_new_validity(home, examples, tmp_path):
    first = _issue(home, tmp_path, FOOD, dict(examples[FOOD], 许可证编号="JY23501030099001"))
    code, out, err = run_cli(home, "licence", "renew", first["identifier"], "--out", str(tmp_path / "r"),
                             "--json")
    assert code == 0, err + out
    renewed = json.loads(out)
    assert renewed["previous_identifier"] == first["identifier"]
    new = _show(home, renewed["identifier"])
    assert new["licence_number"] == "JY23501030099001" and new["status"] == "01"
    assert new["valid_until"] > _show(home, first["identifier"])["valid_until"]


def test_refusals_have_their_exit_codes_and_record_nothing(home, examples, tmp_path):
    first = _issue(home, tmp_path, BUSINESS, _business(examples))
    number = _show(home, first["identifier"])["licence_number"]
    data = str(_data_file(tmp_path, _business(examples, 统一社会信用代码=number)))
    out_dir = str(tmp_path / "refused")
    before = _count(home)
    parsed = LicenceIdentifier.parse(first["identifier"])
    unknown = LicenceIdentifier(parsed.type_code, parsed.issuer_code, 99_999).text
    cases = [
        (["licence", "change", first["identifier"], "--data", data, "--reason", "x", "--out", out_dir,
          "--issuer", "11350100MB0000035H"], 5),                       # another issuer's licence
        (["licence", "change", first["identifier"], "--data", data, "--out", out_dir], 2),  # no --reason
        (["licence", "change", first["identifier"], "--data", str(_data_file(tmp_path, {"名称": ""})),
          "--reason", "x", "--out", out_dir], 6),                      # invalid data
        (["licence", "issue", "--type", BUSINESS, "--data", data, "--out", out_dir], 5),  # number is live
    ]
    for args, expected in cases:
        code, out, err = run_cli(home, *args, "--json")
        assert code == expected, (args, code, out, err)
        if "--issuer" in args:
            assert "only its issuer may change or renew it" in err, err
    code, _, err = run_cli(home, "licence", "renew", unknown, "--out", out_dir)
    assert code == 4 and unknown in err
    code, _, err = run_cli(home, "licence", "renew", unknown[:-1] + "#", "--out", out_dir)
    assert code == 6, err
    run_cli(home, "licence", "revoke", first["identifier"], "--reason", "吊销")
    code, _, err = run_cli(home, "licence", "change", first["identifier"], "--data", data, "--reason", "x",
                           "--out", out_dir)
    assert code == 5 and "revoked" in err
    assert _count(home) == before


def test_verify_qr_fails_a_code_rehosted_under_another_base(home, examples, tmp_path):
    issued = _issue(home, tmp_path, BUSINESS, _business(examples))
    code, out, _ = run_cli(home, "verify-qr", issued["qr"], "--json")
    checks = {c["name"]: c["ok"] for c in json.loads(out)["checks"]}
    assert code == 0 and checks["verification-base"] and checks["signer-is-issuer"]
    payload = issued["qr"].rsplit("/", 1)[1]
    for text in (f"HTTPS://VERIFY.EXAMPLE-GOV.CN/V/{payload}", f"https://evil.example/V/{payload}"):
        code, out, err = run_cli(home, "verify-qr", text, "--json")
        report = json.loads(out)
        failed = [c for c in report["checks"] if not c["ok"]]
        assert code == 1 and [c["name"] for c in failed] == ["verification-base"], out + err
        assert report["indication"] == "TOTAL_FAILED" and "phishing" in failed[0]["detail"]
    code, out, _ = run_cli(home, "verify-qr", payload, "--json")  # a bare payload opens nothing
    assert code == 0, out


def _signer_pem(home, tmp_path):
    from ca.authority import certificate_of
    from ca.certificates import pem
    from trust.domain import TrustDomain

    td = TrustDomain.open(str(home))
    try:
        records = td.ca.certificates(profile="department-signer", include_revoked=False)
        path = tmp_path / "signers.pem"
        path.write_bytes(b"".join(pem(certificate_of(r)) for r in records))
    finally:
        td.close()
    return path


def test_verify_qr_judges_the_base_only_when_it_knows_it(home, examples, tmp_path):
    issued = _issue(home, tmp_path, BUSINESS, _business(examples))
    payload = issued["qr"].rsplit("/", 1)[1]
    production = f"HTTPS://VERIFY.EXAMPLE.GOV.CN/V/{payload}"  # another deployment's address
    signers = str(_signer_pem(home, tmp_path))
    unconfigured = tmp_path / "no-home"

    def checks(*args, at=home):
        code, out, _err = run_cli(at, "verify-qr", *args, "--json")
        report = json.loads(out)
        return code, {c["name"]: c["ok"] for c in report["checks"]}, [n["name"] for n in report["not_judged"]]

    # --cert: someone else's codes, so this home's address is not the rule: not judged, not failed
    for at in (home, unconfigured):
        code, found, not_judged = checks(production, "--cert", signers, at=at)
        assert code == 0 and "verification-base" not in found and not_judged == ["verification-base"]
    # --base decides, with or without --cert
    code, found, not_judged = checks(production, "--cert", signers, "--base", "https://verify.example.gov.cn/V/",
                                     at=unconfigured)
    assert code == 0 and found["verification-base"] and not_judged == []
    code, found, _ = checks(issued["qr"], "--cert", signers, "--base", "https://verify.example.gov.cn/V/")
    assert code == 1 and found["verification-base"] is False
    # the configured home without --cert: its own base
    code, found, not_judged = checks(production)
    assert code == 1 and found["verification-base"] is False and not_judged == []
    code, _, err = run_cli(home, "verify-qr", issued["qr"], "--base", "ftp://x/V/")
    assert code == 6 and "--base" in err
