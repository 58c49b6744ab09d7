"""Fixtures for the CA tests: one SM2 hierarchy built in memory, and the OpenSSL CLI.

OpenSSL 3.0–3.6 verify SM2 certificate, CRL and OCSP signatures with an *empty* SM2 user ID
unless told otherwise, and ``-vfyopt distid:…`` only reaches the certificate named on the
command line (openssl/openssl#23471; the GM/T 0009 default ID became OpenSSL's default only
with openssl/openssl#29953). Our CA signs with the GM/T 0009 default ID, as GM/T 0015 requires,
so the interop tests use the distid forms OpenSSL offers and, where it has none, check the
encoding by re-signing the same TBS with the empty ID (``resign``).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from asn1crypto import x509

from ca.certificates import build_certificate, new_serial
from ca.names import subject_name
from ca.profiles import (
    DEPARTMENT_SIGNER,
    ISSUING_CA,
    OCSP_RESPONDER,
    ROOT_CA,
    SEAL_MAKER,
    TIME_STAMPING,
    Profile,
)
from hsm.hazmat import SM2PrivateKey

CREDIT_CODE = "11350100MB0000000Y"
CRL_URL = "http://127.0.0.1:8080/crl/issuing.crl"
OCSP_URL = "http://127.0.0.1:8080/ocsp"
POLICY = "1.2.156.112559.1.1.1"  # a policy OID for the tests; the deployment chooses its own


@dataclass
class Party:
    key: SM2PrivateKey
    cert: x509.Certificate


@dataclass
class Pki:
    now: datetime
    root: Party
    issuing: Party
    leaves: dict[str, Party]

    def issue(self, profile: Profile, common_name: str, **kwargs) -> Party:
        key = SM2PrivateKey.generate()
        cert = build_certificate(
            profile=profile,
            subject=kwargs.pop("subject", subject_name(common_name, organisation="证印测试")),
            subject_key=key.public_key(), signer=self.issuing.key, issuer=self.issuing.cert,
            serial=new_serial(), not_before=self.now, crl_url=CRL_URL, ocsp_url=OCSP_URL,
            policy_oid=POLICY, **kwargs)
        return Party(key, cert)


@pytest.fixture(scope="session")
def pki() -> Pki:
    now = datetime.now(UTC).replace(microsecond=0)
    root_key, issuing_key = SM2PrivateKey.generate(), SM2PrivateKey.generate()
    root = build_certificate(
        profile=ROOT_CA, subject=subject_name("证印测试根CA", organisation="证印测试"),
        subject_key=root_key.public_key(), signer=root_key, issuer=None, serial=new_serial(), not_before=now)
    issuing = build_certificate(
        profile=ISSUING_CA, subject=subject_name("证印测试签发CA", organisation="证印测试"),
        subject_key=issuing_key.public_key(), signer=root_key, issuer=root, serial=new_serial(),
        not_before=now, crl_url="http://127.0.0.1:8080/crl/root.crl", policy_oid=POLICY)
    pki = Pki(now, Party(root_key, root), Party(issuing_key, issuing), {})
    pki.leaves["seal-maker"] = pki.issue(SEAL_MAKER, "证印测试制章人")
    pki.leaves["department-signer"] = pki.issue(
        DEPARTMENT_SIGNER, "示例市市场监督管理局 签章人",
        subject=subject_name("示例市市场监督管理局 签章人", organisation="示例市市场监督管理局",
                             credit_code=CREDIT_CODE))
    pki.leaves["time-stamping"] = pki.issue(TIME_STAMPING, "证印测试时间戳")
    pki.leaves["ocsp-responder"] = pki.issue(OCSP_RESPONDER, "证印测试OCSP")
    return pki


@dataclass
class OpenSSL:
    exe: str

    def __call__(self, *args: str | Path, cwd: Path, input: bytes | None = None,
                 check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([self.exe, *map(str, args)], cwd=cwd, input=input.decode() if input else None,
                                capture_output=True, text=True, timeout=30)
        if check and result.returncode != 0:
            command = " ".join(map(str, args))
            raise AssertionError(f"openssl {command} failed:\n{result.stdout}{result.stderr}")
        return result


@pytest.fixture(scope="session")
def openssl() -> OpenSSL:
    exe = shutil.which("openssl")
    if exe is None:
        pytest.skip("openssl CLI not installed")
    version = subprocess.run([exe, "version"], capture_output=True, text=True).stdout
    if not version.startswith("OpenSSL 3") and not version.startswith("OpenSSL 4"):
        pytest.skip(f"needs OpenSSL >= 3 for SM2 (found {version.strip()})")
    return OpenSSL(exe)


@pytest.fixture(scope="session")
def openssl_uses_gmt_default_id(openssl, tmp_path_factory) -> bool:
    """Whether plain ``openssl verify`` checks SM2 certificates with the GM/T 0009 default ID.

    Decided on a chain OpenSSL makes itself with ``-sigopt distid:1234567812345678``, so the
    answer does not depend on our code.
    """
    d = tmp_path_factory.mktemp("openssl-probe")
    distid = "distid:1234567812345678"
    openssl("genpkey", "-algorithm", "SM2", "-out", "ca.key", cwd=d, check=True)
    openssl("genpkey", "-algorithm", "SM2", "-out", "ee.key", cwd=d, check=True)
    (d / "ca.cnf").write_text(
        "[req]\ndistinguished_name=dn\n[dn]\n"
        "[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n")
    openssl("req", "-x509", "-new", "-key", "ca.key", "-sm3", "-sigopt", distid, "-subj", "/CN=probe CA",
            "-extensions", "v3", "-config", "ca.cnf", "-out", "ca.pem", cwd=d, check=True)
    openssl("req", "-new", "-key", "ee.key", "-sm3", "-sigopt", distid, "-subj", "/CN=probe EE",
            "-out", "ee.csr", "-config", "ca.cnf", cwd=d, check=True)
    openssl("x509", "-req", "-in", "ee.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "2",
            "-sm3", "-sigopt", distid, "-vfyopt", distid, "-out", "ee.pem", cwd=d, check=True)
    return "OK" in openssl("verify", "-CAfile", "ca.pem", "ee.pem", cwd=d).stdout


def _resign(structure, key: SM2PrivateKey, uid: bytes = b""):
    """The same certificate / CRL / BasicOCSPResponse, its TBS signed again with user ID ``uid``."""
    tbs_field, _, signature_field = (name for name, *_ in structure._fields[:3])
    tbs = structure[tbs_field].dump()
    fields = {name: structure[name] for name, *_ in structure._fields if structure[name].native is not None}
    fields[tbs_field] = type(structure[tbs_field]).load(tbs)
    fields[signature_field] = key.sign(tbs, uid=uid)
    cls = type(structure)
    return cls.load(cls(fields).dump())


@pytest.fixture(scope="session")
def resign() -> Callable:
    """Re-sign a certificate / CRL / BasicOCSPResponse's TBS with another SM2 user ID."""
    return _resign
