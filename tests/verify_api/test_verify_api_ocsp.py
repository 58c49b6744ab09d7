"""OCSP from the public service, which holds no key: ``zhengyin publish`` pre-produces a signed
response per certificate and CertID hash; ``POST /ocsp`` and ``GET /ocsp/{request}`` hand them
out. OpenSSL's own ``ocsp`` client asks a real uvicorn; a revocation shows after the next publish."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import ocsp
from fastapi.testclient import TestClient

from ca.authority import certificate_of
from ca.certificates import pem
from ca.crl import load_crl
from ca.names import subject_name
from ca.ocsp import CertificateStatus, build_request, read_response
from support.cli import run_cli
from support.live_server import serve_verify
from trust.domain import TrustDomain
from trust.ocsp_publish import RESPONDER_KEY_LABEL, response_file
from verify_api.app import create_app
from verify_api.ocsp import MAX_REQUEST_BYTES, answer
from verify_api.settings import VerifySettings

OCSP = "application/ocsp-request"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    path = tmp_path_factory.mktemp("ocsp-home")
    code, _, err = run_cli(path, "init")
    assert code == 0, err
    td = TrustDomain.open(str(path))
    try:
        for label in ("ocsp-test-good", "ocsp-test-revoked"):
            td.keys.generate(label)
            td.ca.issue("department-signer", subject_name(f"测试签章人 {label}", organisation="示例市测试局"),
                        key_label=label)
    finally:
        td.close()
    code, _, err = run_cli(path, "publish")
    assert code == 0, err
    return path


def _cert(home, label):
    td = TrustDomain.open(str(home))
    try:
        (record,) = [r for r in td.ca.certificates(profile="department-signer") if r.key_label == label]
        return certificate_of(record), certificate_of(td.ca.issuing()), record.serial
    finally:
        td.close()


@pytest.fixture(scope="module")
def client(home) -> TestClient:
    return TestClient(create_app(home, VerifySettings(max_cache_seconds=600)))


def _response(client, request: bytes) -> ocsp.OCSPResponse:
    answer_ = client.post("/ocsp", content=request, headers={"Content-Type": OCSP})
    assert answer_.status_code == 200 and answer_.headers["content-type"] == "application/ocsp-response"
    return ocsp.OCSPResponse.load(answer_.content)


@pytest.mark.parametrize("hash_algorithm", ["sha1", "sm3"])
def test_post_and_get_answer_with_the_signed_pre_produced_response(home, client, hash_algorithm):
    cert, issuer, _ = _cert(home, "ocsp-test-good")
    request = build_request(cert, issuer, nonce=False, hash_algorithm=hash_algorithm)
    posted = client.post("/ocsp", content=request, headers={"Content-Type": OCSP})
    assert posted.status_code == 200
    # verified with the issuing CA as the only trust: signed by a responder it delegated
    status = read_response(posted.content, issuer=issuer, serial=cert.serial_number)
    assert status == CertificateStatus("good")
    single = ocsp.OCSPResponse.load(posted.content).basic_ocsp_response["tbs_response_data"]["responses"][0]
    sent = ocsp.OCSPRequest.load(request)["tbs_request"]["request_list"][0]["req_cert"]
    assert single["cert_id"].native == sent.native  # the CertID the client sent, hash algorithm and all
    for encoded in (base64.b64encode(request).decode(), base64.urlsafe_b64encode(request).decode().rstrip("=")):
        got = client.get(f"/ocsp/{encoded}")
        assert got.status_code == 200 and got.content == posted.content
    escaped = base64.b64encode(request).decode().replace("/", "%2F").replace("+", "%2B").replace("=", "%3D")
    assert client.get(f"/ocsp/{escaped}").content == posted.content


def test_caching_follows_the_crl_schedule_and_the_cap(home, client):
    cert, issuer, _ = _cert(home, "ocsp-test-good")
    posted = client.post("/ocsp", content=build_request(cert, issuer, nonce=False))
    data = ocsp.OCSPResponse.load(posted.content).basic_ocsp_response["tbs_response_data"]
    single = data["responses"][0]
    crl = load_crl((home / "public" / "crl" / "issuing.crl").read_bytes())["tbs_cert_list"]
    listed = json.loads((home / "public" / "trust-list.json").read_bytes())
    assert single["next_update"].native == crl["next_update"].native  # aligned with the CRL
    assert single["this_update"].native == data["produced_at"].native
    assert data["produced_at"].native.strftime("%Y-%m-%dT%H:%M:%SZ") == listed["issued_at"]
    assert data["response_extensions"].native is None  # RFC 5019: no nonce
    headers = posted.headers
    assert headers["cache-control"] == "public, max-age=600, no-transform, must-revalidate"
    assert headers["last-modified"].endswith("GMT") and headers["etag"].startswith('"')
    again = client.get("/ocsp/" + base64.b64encode(build_request(cert, issuer, nonce=False)).decode(),
                       headers={"If-None-Match": headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    near_end = answer(client.app.state.records, build_request(cert, issuer, nonce=False),
                      now=single["next_update"].native - timedelta(seconds=42), max_cache=600)
    assert "max-age=42," in near_end.headers["cache-control"]  # never past nextUpdate
    stale = answer(client.app.state.records, build_request(cert, issuer, nonce=False),
                   now=single["next_update"].native + timedelta(seconds=1), max_cache=600)
    assert ocsp.OCSPResponse.load(stale.body)["response_status"].native == "try_later"
    assert stale.headers["cache-control"] == "no-store"


def test_a_request_with_a_nonce_gets_the_response_without_one(home, client):
    cert, issuer, _ = _cert(home, "ocsp-test-good")
    request = build_request(cert, issuer, nonce=True)
    response = _response(client, request)
    assert response["response_status"].native == "successful" and response.nonce_value is None
    assert read_response(response.dump(), issuer=issuer, serial=cert.serial_number).state == "good"


def test_unknown_certificate_ids_are_unauthorized(home, client):
    cert, issuer, _ = _cert(home, "ocsp-test-good")
    request = ocsp.OCSPRequest.load(build_request(cert, issuer, nonce=False))
    cert_id = request["tbs_request"]["request_list"][0]["req_cert"]
    cases = []
    for field, value in (("serial_number", cert.serial_number + 1),
                         ("issuer_name_hash", b"\x00" * 20),  # the right key hash, another name
                         ("issuer_key_hash", b"\x01" * 20)):
        changed = ocsp.OCSPRequest.load(request.dump())
        changed["tbs_request"]["request_list"][0]["req_cert"][field] = value
        cases.append(changed.dump())
    root = certificate_of_root(home)
    cases.append(build_request(issuer, root, nonce=False))  # the issuing CA itself: the root's CRL speaks
    sha256 = ocsp.OCSPRequest.load(request.dump())
    sha256["tbs_request"]["request_list"][0]["req_cert"]["hash_algorithm"] = {"algorithm": "sha256"}
    cases.append(sha256.dump())
    assert cert_id["serial_number"].native == cert.serial_number
    for case in cases:
        assert _response(client, case)["response_status"].native == "unauthorized"


def certificate_of_root(home):
    td = TrustDomain.open(str(home))
    try:
        return certificate_of(td.ca.root())
    finally:
        td.close()


def test_garbage_is_a_malformed_request_without_a_trace(home, client):
    cert, issuer, _ = _cert(home, "ocsp-test-good")
    one = ocsp.OCSPRequest.load(build_request(cert, issuer, nonce=False))
    two = ocsp.OCSPRequest({"tbs_request": {"request_list": [
        one["tbs_request"]["request_list"][0], one["tbs_request"]["request_list"][0]]}}).dump()
    for body in (b"", b"garbage", b"\x30\x82\xff\xff", one.dump()[:-2], one.dump() + b"\x00", two):
        response = client.post("/ocsp", content=body, headers={"Content-Type": OCSP})
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        assert ocsp.OCSPResponse.load(response.content)["response_status"].native == "malformed_request"
    for path in ("/ocsp/@@@@", "/ocsp/AAAA", "/ocsp/ab-c+d", "/ocsp/" + "A" * 20000, "/ocsp/%ZZ"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert ocsp.OCSPResponse.load(response.content)["response_status"].native == "malformed_request"
    big = client.post("/ocsp", content=b"\x30" * (MAX_REQUEST_BYTES + 1), headers={"Content-Type": OCSP})
    assert big.status_code == 413
    assert ocsp.OCSPResponse.load(big.content)["response_status"].native == "malformed_request"
    wrong = client.put("/ocsp", content=b"x", headers={"Accept": "text/html"})
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == "method_not_allowed"


def test_a_damaged_stored_response_is_not_served(home, client):
    cert, issuer, serial = _cert(home, "ocsp-test-good")
    request = build_request(cert, issuer, nonce=False, hash_algorithm="sm3")
    name = home / "public" / response_file("sm3", ocsp.OCSPRequest.load(request)["tbs_request"]["request_list"][0]
                                           ["req_cert"]["issuer_key_hash"].native, int(serial, 16))
    original = name.read_bytes()
    try:
        name.write_bytes(original[:-10])
        assert _response(client, request)["response_status"].native == "unauthorized"
        # another certificate's response under this one's name: its CertID is not the request's
        _, _, other_serial = _cert(home, "ocsp-test-revoked")
        name.write_bytes((name.parent / f"{other_serial}.der").read_bytes())
        assert _response(client, request)["response_status"].native == "unauthorized"
    finally:
        name.write_bytes(original)
    assert _response(client, request)["response_status"].native == "successful"


# ---- revocation, responder rotation -----------------------------------------------------------------

def test_revoked_reads_revoked_after_publish_and_a_revoked_responder_is_replaced(home, client):
    cert, issuer, serial = _cert(home, "ocsp-test-revoked")
    request = build_request(cert, issuer, nonce=False)
    before = read_response(_response(client, request).dump(), issuer=issuer, serial=cert.serial_number)
    assert before.state == "good"
    td = TrustDomain.open(str(home))
    try:
        td.ca.revoke(serial, "key_compromise")
        (responder,) = [r for r in td.ca.certificates(profile="ocsp-responder") if not r.revoked]
        td.ca.revoke(responder.serial, "key_compromise")
    finally:
        td.close()
    assert read_response(_response(client, request).dump(), issuer=issuer,
                         serial=cert.serial_number).state == "good"  # nothing changes until publish
    code, out, err = run_cli(home, "publish", "--json")
    assert code == 0, err
    assert json.loads(out)["ocsp_responses"] >= 2 * 6
    response = _response(client, request)
    status = read_response(response.dump(), issuer=issuer, serial=cert.serial_number)
    assert status.state == "revoked" and status.reason == "key_compromise"
    signer = certificate_of_responder(response)
    assert format(signer.serial_number, "x") != responder.serial  # the revoked responder signs no more
    td = TrustDomain.open(str(home))
    try:
        new = [r for r in td.ca.certificates(profile="ocsp-responder") if not r.revoked]
        assert [r.key_label for r in new] == [RESPONDER_KEY_LABEL]
        assert format(signer.serial_number, "x") == new[0].serial
        actions = [e.action for e in td.audit.entries(limit=20)]
        assert "ca.issue" in actions and "trust.publish" in actions
    finally:
        td.close()
    ours = certificate_of_responder(response)
    extensions = {e["extn_id"].native for e in ours["tbs_certificate"]["extensions"]}
    assert "ocsp_no_check" in extensions and ours.extended_key_usage_value.native == ["ocsp_signing"]


def certificate_of_responder(response: ocsp.OCSPResponse):
    (cert,) = response.basic_ocsp_response["certs"]
    return cert


def test_responses_of_expired_certificates_are_pruned(home, tmp_path):
    from trust.ocsp_publish import prune_responses

    public = tmp_path / "public"
    kept, dropped = "ocsp/sha1/aa/1.der", "ocsp/sha1/bb/2.der"
    for name in (kept, dropped):
        (public / name).parent.mkdir(parents=True, exist_ok=True)
        (public / name).write_bytes(b"x")
    prune_responses(public, [kept])
    assert (public / kept).exists() and not (public / dropped).exists() and not (public / dropped).parent.exists()


def test_publish_re_signs_a_crl_that_would_lapse_before_the_next_publish(tmp_path):
    from trust.trust_list import publish

    code, _, err = run_cli(tmp_path, "init")
    assert code == 0, err
    td = TrustDomain.open(str(tmp_path))
    try:
        first = td.ca.current_crl("issuing")
        later = first.next_update - timedelta(hours=2)  # the CRL still current, but not for 24 h
        report = publish(td, now=later)
        crl = load_crl((tmp_path / "public" / "crl" / "issuing.crl").read_bytes())["tbs_cert_list"]
        assert crl["next_update"].native >= report.next_update
        assert report.crl_numbers["issuing"] > first.number
        cert = certificate_of(td.ca.certificates(profile="seal-maker")[0])
        issuer = certificate_of(td.ca.issuing())
        stored = (tmp_path / "public" / response_file(
            "sha1", ocsp.OCSPRequest.load(build_request(cert, issuer))["tbs_request"]["request_list"][0]
            ["req_cert"]["issuer_key_hash"].native, cert.serial_number)).read_bytes()
        single = ocsp.OCSPResponse.load(stored).basic_ocsp_response["tbs_response_data"]["responses"][0]
        assert single["next_update"].native == crl["next_update"].native
        assert read_response(stored, issuer=issuer, serial=cert.serial_number, now=later).state == "good"
    finally:
        td.close()


# ---- OpenSSL's own client against a real server -----------------------------------------------------

def _resign_empty_id(structure, signer):
    """The same certificate / BasicOCSPResponse, its TBS signed again with the empty SM2 user ID
    (what OpenSSL 3's ``ocsp`` verifies with: tests/ca/test_ocsp.py)."""
    tbs_field, _, signature_field = (name for name, *_ in structure._fields[:3])
    fields = {name: structure[name] for name, *_ in structure._fields if structure[name].native is not None}
    fields[tbs_field] = type(structure[tbs_field]).load(structure[tbs_field].dump())
    fields[signature_field] = signer.sign(structure[tbs_field].dump(), uid=b"")
    cls = type(structure)
    return cls.load(cls(fields).dump())


@pytest.mark.interop
@pytest.mark.slow
def test_openssl_ocsp_client_against_uvicorn(home, tmp_path):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl CLI not installed")
    good, issuer, _ = _cert(home, "ocsp-test-good")
    revoked, _, serial = _cert(home, "ocsp-test-revoked")
    td = TrustDomain.open(str(home))
    try:
        if not td.ca.find(serial).revoked:  # when this test runs on its own
            td.ca.revoke(serial, "key_compromise")
    finally:
        td.close()
    code, _, err = run_cli(home, "publish")  # whatever other tests revoked, the files are current
    assert code == 0, err
    (tmp_path / "issuing.pem").write_bytes(pem(issuer))
    (tmp_path / "good.pem").write_bytes(pem(good))
    (tmp_path / "revoked.pem").write_bytes(pem(revoked))
    with serve_verify(home) as base:
        outputs = {}
        for name in ("good", "revoked"):
            result = subprocess.run(
                [openssl, "ocsp", "-issuer", "issuing.pem", "-cert", f"{name}.pem", "-url", f"{base}/ocsp",
                 "-noverify", "-resp_text", "-respout", f"{name}.der", "-reqout", f"{name}-req.der"],
                cwd=tmp_path, capture_output=True, text=True, timeout=30)
            outputs[name] = result.stdout + result.stderr
            assert result.returncode == 0, outputs[name]
        sm3_request = build_request(good, issuer, nonce=False, hash_algorithm="sm3")
        import httpx

        sm3_answer = httpx.post(f"{base}/ocsp", content=sm3_request, headers={"Content-Type": OCSP})
    assert "good.pem: good" in outputs["good"], outputs["good"]
    assert "revoked.pem: revoked" in outputs["revoked"] and "Reason: keyCompromise" in outputs["revoked"]
    # OpenSSL's client sent a nonce; RFC 5019 lets the pre-produced answer leave it out
    assert ocsp.OCSPRequest.load((tmp_path / "good-req.der").read_bytes()).nonce_value is not None
    assert ocsp.OCSPResponse.load((tmp_path / "good.der").read_bytes()).nonce_value is None
    assert read_response(sm3_answer.content, issuer=issuer, serial=good.serial_number).state == "good"
    for name, cert in (("good", good), ("revoked", revoked)):
        assert read_response((tmp_path / f"{name}.der").read_bytes(), issuer=issuer,
                             serial=cert.serial_number).state == name

    # OpenSSL's full responder check (signature, responder delegated by the issuing CA, chain to
    # the root) on the same response, every signature re-made with the empty user ID.
    td = TrustDomain.open(str(home))
    try:
        response = ocsp.OCSPResponse.load((tmp_path / "good.der").read_bytes())
        basic = response.basic_ocsp_response
        responder = [r for r in td.ca.certificates(profile="ocsp-responder") if not r.revoked][-1]
        root_rec, issuing_rec = td.ca.root(), td.ca.issuing()
        root_signer = td.keys.signer(root_rec.key_label, root_rec.key_version)
        issuing_signer = td.keys.signer(issuing_rec.key_label, issuing_rec.key_version)
        root_e = _resign_empty_id(certificate_of(root_rec), root_signer)
        issuing_e = _resign_empty_id(issuer, root_signer)
        responder_e = _resign_empty_id(certificate_of(responder), issuing_signer)
        rebuilt = ocsp.BasicOCSPResponse({"tbs_response_data": basic["tbs_response_data"],
                                          "signature_algorithm": basic["signature_algorithm"],
                                          "signature": b"", "certs": [responder_e]})
        basic_e = _resign_empty_id(ocsp.BasicOCSPResponse.load(rebuilt.dump()),
                                   td.keys.signer(responder.key_label, responder.key_version))
    finally:
        td.close()
    (tmp_path / "root-e.pem").write_bytes(pem(root_e) + pem(issuing_e))
    (tmp_path / "issuing-e.pem").write_bytes(pem(issuing_e))
    (tmp_path / "resp-e.der").write_bytes(ocsp.OCSPResponse({"response_status": "successful", "response_bytes": {
        "response_type": "basic_ocsp_response", "response": basic_e}}).dump())
    result = subprocess.run([openssl, "ocsp", "-respin", "resp-e.der", "-issuer", "issuing-e.pem", "-CAfile",
                             "root-e.pem", "-resp_text"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert "Response verify OK" in result.stdout + result.stderr, result.stdout + result.stderr
    assert "Cert Status: good" in result.stdout
    assert datetime.now(UTC) < basic["tbs_response_data"]["responses"][0]["next_update"].native


def test_after_an_issuing_ca_rotation_each_key_answers_for_what_it_signed(tmp_path):
    code, _, err = run_cli(tmp_path, "init")
    assert code == 0, err
    td = TrustDomain.open(str(tmp_path))
    try:
        old_ca = td.ca.issuing()
        old_leaf = td.ca.certificates(profile="seal-maker")[0]
        rotation = td.ca.rotate_ca("issuing")
        td.keys.generate("ocsp-test-after-rotation")
        new_leaf = td.ca.issue("department-signer", subject_name("轮换后签章人", organisation="示例市测试局"),
                               key_label="ocsp-test-after-rotation")
    finally:
        td.close()
    code, _, err = run_cli(tmp_path, "publish")
    assert code == 0, err
    client = TestClient(create_app(tmp_path, VerifySettings()))
    for leaf, ca in ((old_leaf, old_ca), (new_leaf, rotation.new)):
        cert, issuer = certificate_of(leaf), certificate_of(ca)
        for algorithm in ("sha1", "sm3"):
            response = _response(client, build_request(cert, issuer, nonce=False, hash_algorithm=algorithm))
            assert read_response(response.dump(), issuer=issuer, serial=cert.serial_number).state == "good"
        # and not under the other key's hashes
        other = certificate_of(rotation.new if ca is old_ca else old_ca)
        answer_ = _response(client, build_request(cert, other, nonce=False))
        assert answer_["response_status"].native == "unauthorized"
