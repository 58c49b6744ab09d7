"""A seal made for signer certificates that exist already (``SealOffice.make(...,
signer_certificates=[...])``): what a one-key service such as the data-reuse service needs. The
seal lists exactly the given certificate and no key is made for it; the certificates are checked
first; a failed make leaves them as they were (only certificates the office issued itself are
withdrawn); the picture's purpose can be named; ``chain_of`` gives the CA certificates above."""

from __future__ import annotations

import json

import pytest
from test_seal_office import CODE, DEPARTMENT
from test_seal_office import office as seal_office  # noqa: F401 - a fixture: the office on both databases

import seals.office as office_module
from ca.names import subject_name
from seals.errors import SealError
from seals.lifecycle import SealRefused
from seals.office import SealOffice, signer_label
from seals.seal import read_seal


@pytest.fixture
def office(seal_office: SealOffice) -> SealOffice:  # noqa: F811 - the imported fixture, requested
    """test_seal_office's office (SQLite and PostgreSQL), under the name these tests use."""
    return seal_office


def _service_certificate(office: SealOffice, label: str = "service-signer"):
    office.keys.generate(label)
    return office.ca.issue("department-signer", subject_name("数据共享服务", organisation=DEPARTMENT),
                           key_label=label)


def _approved(office: SealOffice, **kwargs):
    record = office.apply(DEPARTMENT, CODE, "official", name=f"{DEPARTMENT}数据共享专用章", **kwargs)
    return office.approve(record.es_id)


def test_the_seal_lists_the_given_certificate_and_no_key_is_made(office):
    certificate = _service_certificate(office)
    record = _approved(office)
    labels = set(office.keys.labels())
    made = office.make(record.es_id, signer_certificates=[certificate], picture_purpose="数据共享专用章")
    assert made.status == "made" and [c.serial for c in made.certificates] == [certificate.serial]
    assert list(read_seal(made.der).certificates) == [certificate.der]
    assert set(office.keys.labels()) == labels and signer_label(record.es_id) not in labels
    assert made.valid_end <= certificate.not_after
    (entry,) = office.audit.entries(action="seal.make", subject=f"seal:{record.es_id}")
    details = json.loads(entry.payload)["details"]
    assert details["certificates_supplied"] is True and details["certificates"] == [certificate.serial]
    assert details["keys"] == [f"service-signer/v{certificate.key_version}"]
    office.activate(record.es_id)
    identity = office.signing_identity(record.es_id)
    assert identity.signer_certificate == certificate.der
    issuing, root = office.ca.issuing(), office.ca.root()
    assert identity.chain == office.chain_of(certificate) == [issuing.der, root.der]


def test_the_picture_purpose_is_what_is_lettered(office):
    """The official seal's own picture has no purpose under the star; a named one has it."""
    first, second = _service_certificate(office), _service_certificate(office, "second-signer")
    plain, named = _approved(office), _approved(office)
    office.make(plain.es_id, signer_certificates=[first])
    office.make(named.es_id, signer_certificates=[second], picture_purpose="数据共享专用章")
    pictures = [read_seal(office.find(r.es_id).der).picture for r in (plain, named)]
    assert pictures[0] != pictures[1]


@pytest.mark.parametrize("problem", ["two-for-one", "twice", "revoked", "no-key", "listed"])
def test_unusable_certificates_are_refused_before_anything_is_made(office, problem):
    first = _service_certificate(office)
    signers = 2 if problem == "twice" else 1
    record = _approved(office, signers=signers)
    given = {"two-for-one": [first, _service_certificate(office, "second-signer")],
             "twice": [first, first], "revoked": [first], "no-key": [first], "listed": [first]}[problem]
    if problem == "revoked":
        office.ca.revoke(first.serial, "key_compromise")
    if problem == "no-key":
        office.keys.disable(first.key_label, first.key_version)
    expected = {"two-for-one": "applied for 1 signer", "twice": "given twice", "revoked": "was revoked",
                "no-key": "is disabled", "listed": "already listed by seal"}[problem]
    if problem == "listed":
        other = _approved(office)
        office.make(other.es_id, signer_certificates=[first])
        expected += f" {other.es_id}"
    with pytest.raises(SealRefused, match=expected):
        office.make(record.es_id, signer_certificates=given)
    after = office.find(record.es_id)
    assert after.status == "approved" and after.der is None and not after.signers
    assert office.audit.entries(action="seal.make", subject=f"seal:{record.es_id}") == []


def test_a_failed_make_leaves_the_given_certificate_valid(office, monkeypatch):
    certificate = _service_certificate(office)
    record = _approved(office)

    def broken(*args, **kwargs):
        raise RuntimeError("the seal maker's key store went away")

    monkeypatch.setattr(office_module, "make_seal", broken)
    with pytest.raises(RuntimeError):
        office.make(record.es_id, signer_certificates=[certificate])
    assert not office.ca.find(certificate.serial).revoked  # not the office's to withdraw
    assert office.find(record.es_id).status == "approved"
    monkeypatch.undo()
    assert office.make(record.es_id, signer_certificates=[certificate]).status == "made"


def test_a_failed_make_still_withdraws_what_it_issued(office, monkeypatch):
    """Without given certificates the office's own rule stands: what it issued is revoked again."""
    record = office.apply(DEPARTMENT, CODE, "licence")
    office.approve(record.es_id)
    before = {c.serial for c in office.ca.certificates(profile="department-signer")}

    def broken(*args, **kwargs):
        raise RuntimeError("the seal maker's key store went away")

    monkeypatch.setattr(office_module, "make_seal", broken)
    with pytest.raises(RuntimeError):
        office.make(record.es_id)
    issued = [c for c in office.ca.certificates(profile="department-signer", include_revoked=True)
              if c.serial not in before]
    assert len(issued) == 1 and office.ca.find(issued[0].serial).revoked


def test_a_picture_purpose_that_cannot_be_lettered_is_refused_first(office):
    certificate = _service_certificate(office)
    record = _approved(office)
    with pytest.raises(SealError, match="purpose"):
        office.make(record.es_id, signer_certificates=[certificate], picture_purpose="专" * 40)
    assert office.find(record.es_id).status == "approved"
