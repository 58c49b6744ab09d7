"""Data reuse by departments (issue 6): a department can never read a licence outside its
permission and the holder's grant — every combination is tried — and what it does read comes
back signed, verifiable offline (our verifier, the CLI and the OpenSSL 3 command line).

One development home per database (SQLite and PostgreSQL): two business licences (the one asked
about and "another licence"), a physician licence (another type), the data-service signer
certified and the trust list published; the department app driven through Starlette's
TestClient exactly as a department's system would.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from ca.names import credit_code_check_character
from keys_dev.domain import DEMO_DEPARTMENT_CODE
from ledger.audit import AuditRecord
from licences.catalogue import Catalogue
from licences.jcs import canonical_json
from licences.reuse_clients import ClientRegistry, DepartmentClient
from licences.reuse_grants import GrantBook, GrantedLicence
from licences.usage_log import UsageRecord
from support.cli import run_cli
from support.homes_on_databases import initialised_home
from trust.domain import TrustDomain
from trust.reuse_signing import verify_reuse_response
from trust.trust_list import verify_trust_list
from verify_api.reuse_app import ReuseSettings, create_reuse_app

BUSINESS = "11100000MB0000019L001"
PHYSICIAN = "11100000MB0000027F001"
PURPOSE = "办理企业开户：核验营业执照"
GRANTED = ["名称", "法定代表人"]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def home(request, tmp_path_factory):
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    with initialised_home(tmp_path_factory.mktemp("reuse-home"), url) as path:
        yield path


@pytest.fixture(scope="module")
def world(home):
    """The licences, the signer and the published trust list."""
    td = TrustDomain.open(str(home))
    catalogue = Catalogue.load()
    business = dict(catalogue.get(BUSINESS).example)
    other = dict(business)
    first17 = "91350102MA0R3U5E1"
    other["统一社会信用代码"] = first17 + credit_code_check_character(first17)
    other["名称"] = "示例市另一家科技有限公司"
    try:
        a = td.licence_desk.issue(BUSINESS, business, issuer_code=DEMO_DEPARTMENT_CODE)
        b = td.licence_desk.issue(BUSINESS, other, issuer_code=DEMO_DEPARTMENT_CODE)
        p = td.licence_desk.issue(PHYSICIAN, dict(catalogue.get(PHYSICIAN).example),
                                  issuer_code=DEMO_DEPARTMENT_CODE)
    finally:
        td.close()
    published = signer_published(home)
    return {"a": a, "b": b, "p": p, "business": business, "signer_serial": published["signer"]["serial"],
            **published}


def signer_published(home) -> dict:
    """`zhengyin reuse signer`, then `zhengyin publish`: the signer as the command printed it, and
    the published trust list, its signature and the CRLs."""
    code, out, err = run_cli(home, "reuse", "signer", "--json")
    assert code == 0, err
    code, _, err = run_cli(home, "publish")
    assert code == 0, err
    public = home / "public"
    return {"signer": json.loads(out), "trust_list": public / "trust-list.json",
            "signature": public / "trust-list.p7s", "crls": sorted((public / "crl").glob("*.crl"))}


@pytest.fixture(scope="module")
def td(home):
    domain = TrustDomain.open(str(home), actor="test")
    yield domain
    domain.close()


@pytest.fixture(scope="module")
def api(home, world):
    app = create_reuse_app(home, ReuseSettings(rate_per_minute=100_000, burst=100_000))
    yield TestClient(app)
    app.state.domain.close()


@pytest.fixture(scope="module")
def trust_document(world, td):
    from ca.crl import load_crl

    roots = [r.der for r in td.ca.live_ca_certificates("root")]
    listing = verify_trust_list(world["trust_list"].read_bytes(), world["signature"].read_bytes(), roots,
                                crls=[load_crl(p.read_bytes()) for p in world["crls"]])
    assert listing.ok, [c for c in listing.checks if not c.ok]
    return listing.document


def _client(td, permissions) -> tuple[str, str]:
    view, token = ClientRegistry(td.db, td.audit).create(f"部门系统 {uuid.uuid4().hex[:6]}", permissions,
                                                         actor="test")
    return view.id, token


def _grant(td, licence, client_id, *, fields=None, purpose=PURPOSE, now=None, minutes=60):
    now = now or datetime.now(UTC)
    record = licence.record
    return GrantBook(td.db, td.audit).grant(
        GrantedLicence(record.type_code, record.licence_number, record.identifier,
                       list(Catalogue.load().get(record.type_code).fields)),
        client_id, purpose=purpose, valid_until=now + timedelta(minutes=minutes), fields=fields,
        granted_by="cred-test", now=now)


def _ask(api, token, reference, **body):
    body.setdefault("purpose", PURPOSE)
    return api.post(f"/api/v1/reuse/licences/{reference}", json=body, headers={"Authorization": f"Bearer {token}"})


# ---- every combination of permission and grant ---------------------------------------------------

PERMISSIONS = {
    "none": [],
    "other-type": [(PHYSICIAN, "data")],
    "metadata": [(BUSINESS, "metadata")],
    "data": [(BUSINESS, "data")],
}
GRANTS = ("none", "other-client", "other-licence", "expired", "revoked", "other-fields", "valid")


def _set_up_grant(td, world, kind: str, client_id: str) -> str | None:
    """Make the grant situation ``kind`` for ``client_id`` on licence a; the usable grant's id."""
    if kind == "other-client":
        other_id, _ = _client(td, [(BUSINESS, "data")])
        _grant(td, world["a"], other_id, fields=GRANTED)
    elif kind == "other-licence":
        _grant(td, world["b"], client_id, fields=GRANTED)
    elif kind == "expired":
        _grant(td, world["a"], client_id, fields=GRANTED, now=datetime.now(UTC) - timedelta(hours=2))
    elif kind == "revoked":
        row = _grant(td, world["a"], client_id, fields=GRANTED)
        record = world["a"].record
        GrantBook(td.db, td.audit).revoke(row.id, [record.identifier], revoked_by="cred-test")
    elif kind == "other-fields":
        return _grant(td, world["a"], client_id, fields=["住所"]).id
    elif kind == "valid":
        return _grant(td, world["a"], client_id, fields=GRANTED).id
    return None


@pytest.mark.parametrize("grant", GRANTS)
@pytest.mark.parametrize("permission", list(PERMISSIONS))
def test_a_department_reads_only_what_permission_and_grant_allow(api, td, world, trust_document, permission,
                                                                 grant):
    client_id, token = _client(td, PERMISSIONS[permission])
    usable = _set_up_grant(td, world, grant, client_id)
    asked = {"fields": ["法定代表人"]} if grant == "other-fields" else {}
    response = _ask(api, token, world["a"].identifier, **asked)
    unknown = _ask(api, token, "1.2.156.3005.2.11100000MB0000019L001.11100000MB0000019L.99999.001.X")
    business = world["business"]

    if permission in ("none", "other-type"):
        assert response.status_code == 404, response.text
        assert response.json() == unknown.json() == {"error": {"code": "not_found",
                                                               "message": "no licence you may read matches"}}
        return
    assert response.status_code == 200, response.text
    answer = response.json()
    body = answer["body"]
    assert verify_reuse_response(answer, trust_document).ok
    assert body["client"]["id"] == client_id and body["purpose"] == PURPOSE
    assert body["licence"]["identifier"] == world["a"].identifier and body["licence"]["status"] == "01"
    reads_data = permission == "data" and grant in ("valid", "other-fields")
    if not reads_data:
        assert body["access"] == "metadata" and body["grant"] is None
        assert body["data"] is None and body["fields"] == [] and body["not_granted"] == []
        assert "licence_number" not in body["licence"] and "holder_name" not in body["licence"]
        text = response.text
        assert business["名称"] not in text and business["统一社会信用代码"] not in text
        assert business["法定代表人"] not in text
        return
    assert body["access"] == "data" and body["grant"]["id"] == usable
    assert body["licence"]["licence_number"] == business["统一社会信用代码"]
    assert "holder_name" not in body["licence"]  # named fields only: no holder metadata beyond them
    if grant == "valid":
        assert body["data"] == {name: business[name] for name in GRANTED} and body["fields"] == GRANTED
        assert body["not_granted"] == []
    else:
        assert body["data"] == {} and body["fields"] == [] and body["not_granted"] == ["法定代表人"]
        assert business["法定代表人"] not in response.text
    with td.db.transaction() as s:
        row = s.scalars(select(UsageRecord).where(UsageRecord.response_id == body["response_id"])).one()
    assert (row.client_id, row.identifier, row.grant_id, row.purpose, row.fields, row.outcome) == \
        (client_id, world["a"].identifier, usable, PURPOSE, body["fields"], "served-data")


def test_a_grant_of_all_fields_gives_all_data_and_holder_metadata(api, td, world):
    client_id, token = _client(td, [(BUSINESS, "data")])
    _grant(td, world["a"], client_id)
    body = _ask(api, token, world["a"].identifier).json()["body"]
    assert body["data"] == world["business"] and body["grant"]["fields"] is None
    assert body["licence"]["holder_name"] == world["business"]["名称"]
    assert body["licence"]["holder_code"] == world["business"]["统一社会信用代码"]


def test_the_grant_serves_only_its_own_purpose(api, td, world):
    client_id, token = _client(td, [(BUSINESS, "data")])
    _grant(td, world["a"], client_id, fields=GRANTED)
    assert _ask(api, token, world["a"].identifier).json()["body"]["access"] == "data"
    other = _ask(api, token, world["a"].identifier, purpose="另一事由").json()["body"]
    assert other["access"] == "metadata" and other["data"] is None


def test_revoking_or_expiry_stops_a_grant_at_once(api, td, world):
    client_id, token = _client(td, [(BUSINESS, "data")])
    row = _grant(td, world["a"], client_id, fields=GRANTED)
    assert _ask(api, token, world["a"].identifier).json()["body"]["access"] == "data"
    record = world["a"].record
    GrantBook(td.db, td.audit).revoke(row.id, [record.identifier], revoked_by="cred-test")
    assert _ask(api, token, world["a"].identifier).json()["body"]["access"] == "metadata"
    # A grant that ends a minute and a second after it was given: used, then no more.
    start = datetime.now(UTC) - timedelta(seconds=59)
    _grant(td, world["a"], client_id, fields=GRANTED, now=start, minutes=1)
    first = _ask(api, token, world["a"].identifier).json()["body"]["access"]
    import time

    time.sleep(max(0.0, (start + timedelta(minutes=1) - datetime.now(UTC)).total_seconds()) + 1.1)
    assert first == "data" and _ask(api, token, world["a"].identifier).json()["body"]["access"] == "metadata"


def test_the_licence_number_finds_the_live_licence(api, td, world):
    client_id, token = _client(td, [(BUSINESS, "data")])
    _grant(td, world["a"], client_id, fields=GRANTED)
    body = _ask(api, token, world["business"]["统一社会信用代码"]).json()["body"]
    assert body["licence"]["identifier"] == world["a"].identifier and body["access"] == "data"
    # the same number under a type the client may not read: the one 404
    _, other = _client(td, [(PHYSICIAN, "data")])
    assert _ask(api, other, world["business"]["统一社会信用代码"]).status_code == 404


# ---- refusals --------------------------------------------------------------------------------------

@pytest.mark.parametrize("body", [None, {}, {"purpose": ""}, {"purpose": "   "}, {"purpose": None}])
def test_a_request_without_a_purpose_is_refused_and_logs_nothing(api, td, world, body):
    _, token = _client(td, [(BUSINESS, "data")])
    before = _usage_count(td)
    kwargs = {} if body is None else {"json": body}
    response = api.post(f"/api/v1/reuse/licences/{world['a'].identifier}",
                        headers={"Authorization": f"Bearer {token}"}, **kwargs)
    assert response.status_code == 400 and response.json()["error"]["code"] == "purpose_required"
    assert _usage_count(td) == before


@pytest.mark.parametrize("purpose", ["x" * 201, "用证\x07事由", "a\u202eb"])
def test_a_bad_purpose_is_refused(api, td, world, purpose):
    _, token = _client(td, [(BUSINESS, "data")])
    before = _usage_count(td)
    response = _ask(api, token, world["a"].identifier, purpose=purpose)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
    assert _usage_count(td) == before


def test_unknown_fields_in_the_body_are_refused(api, td, world):
    _, token = _client(td, [(BUSINESS, "data")])
    response = _ask(api, token, world["a"].identifier, grant_everything=True)
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"


def _usage_count(td) -> int:
    with td.db.transaction() as s:
        return len(list(s.scalars(select(UsageRecord.id))))


def test_unknown_and_not_permitted_answer_identically(api, td, world):
    _, token = _client(td, [(BUSINESS, "metadata")])
    answers = [_ask(api, token, ref) for ref in (
        world["p"].identifier,                   # exists, another type
        world["p"].record.licence_number,        # its number
        "1.2.156.3005.2.11100000MB0000019L001.11100000MB0000019L.99999.001.X",  # does not exist
        "no-such-number",                         # neither an identifier nor a known number
    )]
    assert {(r.status_code, r.text) for r in answers} == {(404, answers[0].text)}
    assert {tuple(sorted((k, v) for k, v in r.headers.items() if k not in ("date", "content-length")))
            for r in answers} == {tuple(sorted((k, v) for k, v in answers[0].headers.items()
                                               if k not in ("date", "content-length")))}
    with td.db.transaction() as s:
        rows = list(s.scalars(select(UsageRecord).where(UsageRecord.outcome == "not-found")))
    assert rows and all(r.identifier is None for r in rows)


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nonsense", "Basic ZGVwdDpzZWNyZXQ=", "wrong", "revoked"])
def test_every_authentication_failure_is_the_same_401(api, td, world, header):
    client_id, token = _client(td, [(BUSINESS, "data")])
    if header == "wrong":
        header = f"Bearer {token[:-4]}0000" if not token.endswith("0000") else f"Bearer {token[:-4]}1111"
    elif header == "revoked":
        ClientRegistry(td.db, td.audit).revoke(client_id, actor="test")
        header = f"Bearer {token}"
    headers = {} if header is None else {"Authorization": header}
    response = api.post(f"/api/v1/reuse/licences/{world['a'].identifier}", json={"purpose": PURPOSE},
                        headers=headers)
    assert response.status_code == 401 and response.headers["www-authenticate"] == 'Bearer realm="reuse"'
    assert response.json() == {"error": {"code": "unauthenticated",
                                         "message": "the department client's credentials are not valid"}}


def test_no_secret_in_the_database_audit_log_or_answers(api, td, world, home):
    code, out, err = run_cli(home, "reuse", "client", "create", "--name", "市公积金中心", "--allow",
                             f"{BUSINESS}:metadata,data", "--json")
    assert code == 0, err
    made = json.loads(out)
    token = made["token"]
    secret = token.split(".", 1)[1]
    _grant(td, world["a"], made["id"], fields=GRANTED)
    answer = _ask(api, token, world["a"].identifier)
    assert answer.status_code == 200 and secret not in answer.text
    with td.db.transaction() as s:
        stored = s.get(DepartmentClient, made["id"])
        audit = [r.payload for r in s.scalars(select(AuditRecord))]
    assert secret not in stored.secret_hash and token not in stored.secret_hash
    assert not any(secret in payload for payload in audit)
    code, listed, _ = run_cli(home, "reuse", "client", "list", "--json")
    assert code == 0 and secret not in listed and made["id"] in listed
    assert not any(world["business"]["法定代表人"] in payload for payload in audit)  # no licence data either


# ---- the signature, offline ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def signed(api, td, world):
    client_id, token = _client(td, [(BUSINESS, "data")])
    _grant(td, world["a"], client_id, fields=GRANTED)
    response = _ask(api, token, world["a"].identifier)
    assert response.status_code == 200
    return response.json()


def test_the_answer_names_client_purpose_grant_fields_time_and_id(signed):
    body = signed["body"]
    for key in ("client", "purpose", "grant", "fields", "issued_at", "response_id"):
        assert body[key]
    assert signed["signature"]["algorithm"] == "SM2-with-SM3"
    assert signed["signature"]["user_id"] == "1234567812345678"


def test_a_tampered_answer_does_not_verify(signed, trust_document):
    assert verify_reuse_response(signed, trust_document).ok
    changed = json.loads(json.dumps(signed))
    changed["body"]["data"]["法定代表人"] = "王五"
    result = verify_reuse_response(changed, trust_document)
    assert not result.ok and result.sub_indication == "SIG_CRYPTO_FAILURE"
    foreign = json.loads(json.dumps(signed))
    foreign["signature"]["certificate_sm3"] = "0" * 64
    assert verify_reuse_response(foreign, trust_document).sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"
    assert verify_reuse_response({"body": signed["body"]}, trust_document).sub_indication == "FORMAT_FAILURE"


def test_an_answer_still_verifies_once_its_ca_certificates_expired_but_not_once_revoked(signed, trust_document):
    """A later trust list marks the CA certificates of the time expired (after a rotation):
    the answer, issued while they were valid, keeps verifying; a revoked CA does not vouch."""
    later = json.loads(json.dumps(trust_document))
    cas = [e for e in later["certificates"] if e["role"] in ("root", "issuing-ca")]
    assert cas
    for entry in cas:
        entry["status"] = "expired"
    result = verify_reuse_response(signed, later)
    assert result.ok, [c for c in result.checks if not c.ok]
    for entry in cas:
        if entry["role"] == "issuing-ca":
            entry["status"] = "revoked"
    result = verify_reuse_response(signed, later)
    assert not result.ok and result.sub_indication == "NO_CERTIFICATE_CHAIN_FOUND"


def test_the_trust_list_names_the_data_service_signer(trust_document, signed):
    (entry,) = [e for e in trust_document["certificates"] if e["role"] == "data-service-signer"]
    assert entry["sm3_fingerprint"] == signed["signature"]["certificate_sm3"] and entry["status"] == "valid"


def test_verify_reuse_command_checks_the_answer_offline(signed, world, home, tmp_path, td):
    from ca.certificates import pem

    root = tmp_path / "root.pem"
    root.write_bytes(b"".join(pem(c) for c in [_root(td)]))
    good = tmp_path / "answer.json"
    good.write_text(json.dumps(signed, ensure_ascii=False), encoding="utf-8")
    args = ["--trust-list", str(world["trust_list"]), "--anchor", str(root), "--json"]
    code, out, err = run_cli(home, "verify-reuse", str(good), *args)
    assert code == 0, out + err
    assert json.loads(out)["ok"] is True
    bad = tmp_path / "tampered.json"
    changed = json.loads(json.dumps(signed))
    changed["body"]["purpose"] = "别的事由"
    bad.write_text(json.dumps(changed, ensure_ascii=False), encoding="utf-8")
    code, out, _ = run_cli(home, "verify-reuse", str(bad), *args)
    assert code == 1 and json.loads(out)["answer"]["sub_indication"] == "SIG_CRYPTO_FAILURE"
    code, _, err = run_cli(home, "verify-reuse", str(tmp_path / "missing.json"), *args)
    assert code == 6


def _root(td):
    from ca.authority import certificate_of

    return certificate_of(td.ca.live_ca_certificates("root")[0])


@pytest.fixture(scope="module")
def openssl():
    binary = shutil.which("openssl")
    if binary is None:
        pytest.skip("no openssl command line")
    version = subprocess.run([binary, "version"], capture_output=True, text=True).stdout
    if not version.startswith("OpenSSL 3"):
        pytest.skip(f"OpenSSL 3 needed for SM2 with a distid, found {version!r}")
    return binary


def test_openssl_verifies_the_answer_signature(signed, trust_document, openssl, tmp_path):
    (entry,) = [e for e in trust_document["certificates"]
                if e["sm3_fingerprint"] == signed["signature"]["certificate_sm3"]]
    (tmp_path / "signer.der").write_bytes(base64.b64decode(entry["certificate"]))
    (tmp_path / "body.jcs").write_bytes(canonical_json(signed["body"]))
    (tmp_path / "sig.der").write_bytes(base64.b64decode(signed["signature"]["value"]))

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([openssl, *args], cwd=tmp_path, capture_output=True, text=True)

    assert run("x509", "-inform", "DER", "-in", "signer.der", "-pubkey", "-noout", "-out", "pub.pem").returncode == 0
    verify = ("pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "body.jcs", "-sigfile",
              "sig.der", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678")
    result = run(*verify)
    assert result.returncode == 0 and "Signature Verified Successfully" in result.stdout, result.stderr
    changed = dict(signed["body"], purpose="别的事由")
    (tmp_path / "body.jcs").write_bytes(canonical_json(changed))
    assert run(*verify).returncode != 0
