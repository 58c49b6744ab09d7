"""The second opinion (OpenSSL's X509_verify_cert) really checks: it rejects what it must."""

from __future__ import annotations

import pytest

from ca.authority import AuthorityPolicy, CertificateAuthority
from ca.names import subject_name
from hsm.soft import SoftKeyStore
from ledger.audit import AuditLog
from trust.independent import verify_chain

pytestmark = pytest.mark.interop


@pytest.fixture
def pki(tmp_path):
    from ledger.database import Database

    db = Database(f"sqlite:///{tmp_path / 'ca.db'}")
    db.migrate()
    keys = SoftKeyStore(tmp_path / "keys", b"passphrase", iterations=1000)
    for label in ("root", "issuing", "leaf"):
        keys.generate(label)
    ca = CertificateAuthority(db, keys, AuditLog(db), actor="t",
                              policy=AuthorityPolicy(crl_base_url="http://crl.example"))
    root = ca.create_root("root", subject_name("Root"))
    issuing = ca.create_issuing("issuing", subject_name("Issuing"))
    leaf = ca.issue("department-signer", subject_name("Leaf"), key_label="leaf")
    yield ca, root, issuing, leaf
    db.dispose()


def _check(ca, root, issuing, leaf_der, with_crls=True):
    crls = [c.der for c in ca.current_crls()] if with_crls else []
    opinion = verify_chain(leaf_der, anchor=root.der, intermediates=[issuing.der], crls=crls)
    if not opinion.available:
        pytest.fail(opinion.detail)
    return opinion


def test_valid_chain_with_crls(pki):
    ca, root, issuing, leaf = pki
    assert _check(ca, root, issuing, leaf.der).ok


def test_tampered_leaf_is_rejected(pki):
    ca, root, issuing, leaf = pki
    der = bytearray(leaf.der)
    i = der.find(b"Leaf")
    der[i] ^= 0x20  # "leaf": a changed subject, the signature no longer matches
    opinion = _check(ca, root, issuing, bytes(der))
    assert not opinion.ok and "signature" in opinion.detail


def test_revoked_leaf_is_rejected(pki):
    ca, root, issuing, leaf = pki
    ca.revoke(leaf.serial, "key_compromise")
    opinion = _check(ca, root, issuing, leaf.der)
    assert not opinion.ok and "revoked" in opinion.detail


def test_chain_must_reach_the_given_root(pki):
    ca, _root, issuing, leaf = pki
    opinion = verify_chain(leaf.der, anchor=leaf.der, intermediates=[issuing.der])
    assert not opinion.ok
    missing_root_crl = verify_chain(leaf.der, anchor=_root.der, intermediates=[issuing.der],
                                    crls=[ca.current_crl("issuing").der])
    assert not missing_root_crl.ok and "CRL" in missing_root_crl.detail
