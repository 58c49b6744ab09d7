"""``zhengyin seal`` on a real home: make, list, show (ours and other producers'), the lifecycle
commands, export, and the exit codes of each refusal; never a traceback."""

from __future__ import annotations

import json

import pytest

from keys_dev.domain import DEMO_DEPARTMENT_CODE, DEMO_DEPARTMENT_NAME
from support.cli import run_cli
from support.paths import INTEROP

OTHER_CODE = "12110108MB0000000A"  # area 110108; check character computed in the fixture below


_run = run_cli


def _json(home, *args: str, code: int = 0):
    got, out, err = _run(home, *args, "--json")
    assert got == code, err or out
    return json.loads(out)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("seal-home")
    code, _, err = _run(path, "init", "--json")
    assert code == 0, err
    return path


@pytest.fixture(scope="module")
def other_code() -> str:
    from ca.names import credit_code_check_character

    return OTHER_CODE[:17] + credit_code_check_character(OTHER_CODE[:17])


def test_list_shows_the_demo_seals_with_the_documented_fields(home):
    rows = _json(home, "seal", "list", "--department", DEMO_DEPARTMENT_CODE)
    assert {r["kind"] for r in rows} >= {"official", "licence"}
    for row in rows:
        assert {"esid", "name", "type", "kind", "department", "credit_code", "status", "valid_start",
                "valid_end"} <= set(row)
        assert row["department"] == DEMO_DEPARTMENT_NAME and row["status"] == "active" and row["type"] == 1
        assert len(row["esid"]) == 14 and row["esid"].startswith(DEMO_DEPARTMENT_CODE[2:8])


def test_make_show_and_export(home, tmp_path, other_code):
    out = tmp_path / "finance.esl"
    made = _json(home, "seal", "make", "--department", "北京市海淀区某局", "--credit-code", other_code,
                 "--kind", "finance", "--valid-days", "30", "--out", str(out))
    assert made["status"] == "active" and made["esid"].startswith("110108")
    assert made["name"] == "北京市海淀区某局财务专用章" and made["picture"] == {
        "type": "png", "width_mm": 45, "height_mm": 30}
    shown = _json(home, "seal", "show", str(out))
    assert shown["source"] == "file" and shown["esid"] == made["esid"]
    assert shown["maker_signature"]["ok"] and shown["layout"] == "v4"
    assert shown["certificates"][0]["serial"] == made["certificates"][0]
    assert "CN=北京市海淀区某局财务专用章" in shown["certificates"][0]["subject"]
    assert shown["picture"]["actual_type"] == "png" and shown["picture"]["width_mm"] == 45
    registered = _json(home, "seal", "show", made["esid"])
    assert registered["source"] == "registry" and registered["registry"]["status"] == "active"
    assert [e["to"] for e in registered["registry"]["events"]] == ["applied", "approved", "made", "active"]
    exported = tmp_path / "again.esl"
    result = _json(home, "seal", "export", made["esid"], "--out", str(exported))
    assert exported.read_bytes() == out.read_bytes() and result["size"] == len(out.read_bytes())
    code, text, _ = _run(home, "seal", "show", str(out))
    assert code == 0 and "verifies" in text


def test_no_activate_and_the_lifecycle_commands(home, other_code):
    made = _json(home, "seal", "make", "--department", "北京市海淀区某局", "--credit-code", other_code,
                 "--kind", "contract", "--no-activate")
    es_id = made["esid"]
    assert made["status"] == "made"
    assert es_id in {r["esid"] for r in _json(home, "seal", "list", "--status", "made")}
    code, _, err = _run(home, "seal", "suspend", es_id)
    assert code == 5 and "is made" in err and "suspend" in err
    assert _json(home, "seal", "activate", es_id)["status"] == "active"
    code, _, err = _run(home, "seal", "activate", es_id)
    assert code == 5 and "is active" in err


def test_suspend_resume_revoke_and_their_refusals(home, other_code):
    es_id = _json(home, "seal", "make", "--department", "北京市海淀区某局", "--credit-code", other_code,
                  "--kind", "official")["esid"]
    code, _, err = _run(home, "seal", "resume", es_id)
    assert code == 5 and "active" in err
    assert _json(home, "seal", "suspend", es_id, "--reason", "stamp pad lost")["status"] == "suspended"
    assert es_id in {r["esid"] for r in _json(home, "seal", "list", "--status", "suspended")}
    assert _json(home, "seal", "resume", es_id)["status"] == "active"
    # dual control: filed by one officer, in effect once a second one approves it
    code, out, err = _run(home, "seal", "revoke", es_id, "--reason", "department renamed", "--json",
                          env={"ZHENGYIN_ACTOR": "officer-a"})
    assert code == 0 and json.loads(out)["pending_approval"], err
    assert _json(home, "seal", "show", es_id)["registry"]["status"] == "active"
    code, out, err = _run(home, "approvals", "approve", json.loads(out)["id"], "--json",
                          env={"ZHENGYIN_ACTOR": "officer-b"})
    assert code == 0, err
    revoked = _json(home, "seal", "show", es_id)["registry"]
    assert revoked["status"] == "revoked" and revoked["status_reason"] == "department renamed"
    certificate = _json(home, "ca", "show", revoked["certificates"][0])
    assert certificate["status"] == "revoked" and certificate["revocation_reason"] == "cessation_of_operation"
    code, _, err = _run(home, "seal", "revoke", es_id)
    assert code == 5 and "revoked" in err
    events = _json(home, "seal", "show", es_id)["registry"]["events"]
    assert [(e["from"], e["to"]) for e in events][-3:] == [
        ("active", "suspended"), ("suspended", "active"), ("active", "revoked")]
    assert events[-3]["reason"] == "stamp pad lost"
    assert _json(home, "audit", "verify")["ok"]


@pytest.mark.parametrize("args, code, message", [
    (("seal", "suspend", "35010099999999"), 4, "no seal"),
    (("seal", "show", "35010099999999"), 4, "no seal"),
    (("seal", "export", "35010099999999", "--out", "/tmp/never.esl"), 4, "no seal"),
    (("seal", "make", "--department", "某局", "--credit-code", DEMO_DEPARTMENT_CODE, "--kind", "stamp"), 6,
     "unknown seal kind"),
    (("seal", "make", "--department", "某局", "--credit-code", "11350100MB0000000X", "--kind", "official"), 6,
     "check character"),
    (("seal", "make", "--department", "某局", "--credit-code", DEMO_DEPARTMENT_CODE, "--kind", "official",
      "--valid-days", "9999"), 6, "valid_days"),
    (("seal", "list", "--status", "lost"), 6, "unknown seal status"),
    (("seal", "show", "/no/such/seal.esl"), 6, "does not exist"),
])
def test_refusals_have_their_exit_codes(home, args, code, message):
    got, _, err = _run(home, *args)
    assert got == code and message in err, err


def test_show_refuses_a_file_that_is_not_a_seal(home, tmp_path):
    for data in (b"", b"not a seal at all", b"\x30\x03\x02\x01\x01"):
        (tmp_path / "bad.esl").write_bytes(data)
        code, _, err = _run(home, "seal", "show", str(tmp_path / "bad.esl"))
        assert code == 6 and "is not a readable seal" in err, err


@pytest.mark.interop
@pytest.mark.parametrize("name", ["ofdrw_UserV1.esl", "ofdrw_UserV4.esl", "ofdrw_UserV5.esl",
                                  "ofdrw_UserV5_ts.esl", "ofdrw_hist_UserV1_BER.esl",
                                  "ofdrw_hist_UserV4_BER.esl"])
def test_show_other_producers_seals(home, interop_dir, name):
    shown = _json(home, "seal", "show", str(INTEROP / "seals" / name))
    assert shown["maker_signature"]["ok"], shown["maker_signature"]
    assert shown["layout"] == ("v1" if "V1" in name else "v4") and shown["certificates"]
    assert shown["picture"]["width_mm"] > 0


@pytest.mark.interop
def test_show_says_when_a_maker_signature_does_not_verify(home, interop_dir):
    path = INTEROP / "seals" / "ofdrw_SESealData_hebeigede_v4.der"
    shown = _json(home, "seal", "show", str(path), code=1)
    assert not shown["maker_signature"]["ok"] and shown["maker_signature"]["code"] == "SIG_CRYPTO_FAILURE"
    assert len(shown["certificates"]) == 2 and shown["picture"]["actual_type"] == "gif"
    code, text, _ = _run(home, "seal", "show", str(path))
    assert code == 1 and "DOES NOT VERIFY" in text
