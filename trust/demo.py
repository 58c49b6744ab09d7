"""``zhengyin demo``: the main job on embedded defaults, end to end, checked as it goes.

It builds (or reuses) the development trust domain, exports the CA material a relying party
needs, and then checks its own work the way an outsider would: path validation by our
validator, the same chain and CRLs through OpenSSL's ``X509_verify_cert``
(:mod:`trust.independent` says why the library and not the 3.0 CLI), and — where the OpenSSL
CLI is installed — ``openssl pkeyutl -verify`` on a signature made through the key store.
Then it does what a department does: writes a notice (电子公文) as OFD, seals it with the
demo department's active 电子证照专用章, and validates the sealed file with the home's trust.
Every step reports ok or not; the demo fails if any step fails.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from asn1crypto import pem

from ca.authority import certificate_of, utc_now
from ca.crl import load_crl
from ca.signatures import certificate_public_key
from ca.validation import SEAL_SIGNING, validate_path
from hsm.errors import InvalidSignature

from .bootstrap import InitReport, initialise
from .domain import TrustDomain
from .independent import verify_chain

DEMO_TEXT = "示例市市场监督管理局 电子营业执照 演示数据\n".encode()


@dataclass
class Step:
    name: str
    ok: bool
    detail: str


@dataclass
class DemoReport:
    init: InitReport
    export_dir: Path
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(step.ok for step in self.steps)

    def as_dict(self) -> dict:
        return {"ok": self.ok, "init": self.init.as_dict(), "export_dir": str(self.export_dir),
                "steps": [vars(s) for s in self.steps]}


def _openssl(*args: str, stdin: bytes | None = None) -> tuple[bool, str]:
    proc = subprocess.run(["openssl", *args], input=stdin, capture_output=True, timeout=60)
    text = (proc.stdout + proc.stderr).decode(errors="replace").strip().splitlines()
    return proc.returncode == 0, (text[-1] if text else f"exit {proc.returncode}")


def run_demo(home: str | None = None) -> DemoReport:
    from keys_dev import domain as dev

    init = initialise(home)
    td = TrustDomain.open(str(init.home), actor="demo")
    try:
        out = init.home / "export"
        report = DemoReport(init, out)
        ca = td.ca
        issuing, root = ca.issuing(), ca.root()
        crl, root_crl = ca.current_crls()
        leaf = next(r for r in ca.certificates(profile="department-signer", include_revoked=False)
                    if r.key_label == dev.DEMO_SIGNER.key_label)
        out.mkdir(parents=True, exist_ok=True)
        files = {"root.pem": pem.armor("CERTIFICATE", root.der),
                 "issuing.pem": pem.armor("CERTIFICATE", issuing.der),
                 "crl.pem": pem.armor("X509 CRL", crl.der),
                 "root-crl.pem": pem.armor("X509 CRL", root_crl.der),
                 "department-signer.pem": pem.armor("CERTIFICATE", leaf.der)}
        for name, data in files.items():
            (out / name).write_bytes(data)
        report.steps.append(Step("export", True, f"{', '.join(files)} in {out}"))

        result = validate_path(certificate_of(leaf), trust_anchors=[certificate_of(root)],
                               intermediates=[certificate_of(issuing)], at=utc_now(),
                               crls=[load_crl(crl.der), load_crl(root_crl.der)], purpose=SEAL_SIGNING,
                               revocation="require")
        report.steps.append(Step("path validation (zhengyin)", result.ok, result.code))

        signature = td.keys.sign(dev.DEMO_SIGNER.key_label, DEMO_TEXT)
        try:
            certificate_public_key(certificate_of(leaf)).verify(signature, DEMO_TEXT)
            report.steps.append(Step("SM2 signature (zhengyin)", True, "signature verifies"))
        except InvalidSignature:
            report.steps.append(Step("SM2 signature (zhengyin)", False, "signature does not verify"))

        opinion = verify_chain(leaf.der, anchor=root.der, intermediates=[issuing.der],
                               crls=[crl.der, root_crl.der])
        report.steps.append(Step(f"X509_verify_cert ({opinion.implementation or 'OpenSSL'})",
                                 opinion.ok or not opinion.available,
                                 opinion.detail if opinion.available else f"skipped: {opinion.detail}"))
        if shutil.which("openssl"):
            _openssl_checks(report, out, signature)
        else:
            report.steps.append(Step("openssl", True, "skipped: the OpenSSL CLI is not installed"))
        _seal_a_notice(td, report, out)
        _issue_licences(td, report, out)
        audit = td.audit.verify()
        report.steps.append(Step("audit chain", audit.ok, f"{audit.entries} entries"
                                 + ("" if audit.ok else f"; broken at {audit.broken_at}: {audit.problem}")))
        return report
    finally:
        td.close()


def _openssl_checks(report: DemoReport, out: Path, signature: bytes) -> None:
    for anchor, cert, extra in (("root.pem", "issuing.pem", []),
                                ("issuing.pem", "department-signer.pem", ["-partial_chain"])):
        ok, line = _openssl("verify", "-vfyopt", "distid:1234567812345678", *extra, "-CAfile",
                            str(out / anchor), str(out / cert))
        report.steps.append(Step(f"openssl verify ({cert} by {anchor})", ok, line))
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "msg").write_bytes(DEMO_TEXT)
        (t / "sig").write_bytes(signature)
        ok, _ = _openssl("x509", "-in", str(out / "department-signer.pem"), "-pubkey", "-noout",
                         "-out", str(t / "pub.pem"))
        ok, line = _openssl("pkeyutl", "-verify", "-pubin", "-inkey", str(t / "pub.pem"), "-rawin",
                            "-in", str(t / "msg"), "-sigfile", str(t / "sig"), "-digest", "sm3",
                            "-pkeyopt", "distid:1234567812345678") if ok else (False, "no public key")
    report.steps.append(Step("openssl pkeyutl -verify (signature)", ok, line))


def _notice():
    from pages.model import Document, Line, Page, Text

    lines = ["关于启用电子证照专用章的通知", "各有关单位：", "本局电子证照专用章自即日起启用，特此通知。",
             "（zhengyin 演示文件，不具法律效力）"]
    items = [Text(105, 40, lines[0], 7, bold=True, align="center"), Line(20, 48, 190, 48, width=0.5)]
    items += [Text(25, 70 + 12 * i, line, 5) for i, line in enumerate(lines[1:])]
    items.append(Text(185, 140, "示例市市场监督管理局", 5, align="right"))
    return Document(pages=(Page.a4(items),), title=lines[0], author="示例市市场监督管理局")


def _seal_a_notice(td: TrustDomain, report: DemoReport, out: Path) -> None:
    from ofd.sealing import Placement
    from ofd.writer import write_ofd
    from pdf.writer import write_pdf

    from .signing import seal_document
    from .validation import validate_document

    seals = td.seals.seals(status="active", kind="licence")
    if not seals:
        report.steps.append(Step("seal a notice", False, "no active 电子证照专用章 in the home"))
        return
    notice = _notice()
    trust = td.verification_trust()
    for kind, document in (("ofd", write_ofd(notice)), ("pdf", write_pdf(notice))):
        (out / f"notice.{kind}").write_bytes(document)
        sealed = seal_document(td, document, seals[0].es_id, placement=Placement(page=0, x=140, y=112))
        (out / f"notice-sealed.{kind}").write_bytes(sealed)
        report.steps.append(Step(f"seal a notice ({kind.upper()})", True,
                                 f"notice-sealed.{kind} with {seals[0].name} ({seals[0].es_id})"))
        verdict = validate_document(sealed, trust, utc_now())
        report.steps.append(Step(f"verify the sealed notice ({kind.upper()}, zhengyin)",
                                 verdict.indication == "TOTAL_PASSED",
                                 f"{verdict.indication} {verdict.sub_indication or ''}".strip()))


def _issue_licences(td: TrustDomain, report: DemoReport, out: Path) -> None:
    """One licence of each shipped type, as a department's business system would ask for it;
    each OFD and PDF verified, each QR code checked offline against the signer certificates."""
    from keys_dev import domain as dev
    from licences.qr_payload import verify_payload

    from .validation import validate_document

    desk, trust = td.licence_desk, td.verification_trust()
    signers = [certificate_of(r).dump() for r in td.ca.certificates(profile="department-signer")]
    folder = out / "licences"
    folder.mkdir(exist_ok=True)
    for licence_type in desk.catalogue:
        # A licence number has one live licence: a demo run again renews the one the last run
        # issued (a new version, fresh documents) instead of issuing a second — if it is the
        # demo department's and valid. One suspended, or another department's, is left alone.
        number = licence_type.licence_number_of(licence_type.example)
        live = desk.library.live_licence(licence_type.code, number)
        if live is not None and not _renewable(desk, live, dev.DEMO_DEPARTMENT_CODE):
            report.steps.append(Step(f"issue a {licence_type.name}", True,
                                     f"skipped: its example number {number} is held by {live.identifier} "
                                     f"({desk.library.status(live.identifier).name.lower()}, department "
                                     f"{live.issuer_code}), which the demo does not renew"))
            continue
        if live is None:
            issued = desk.issue(licence_type.code, licence_type.example, issuer_code=dev.DEMO_DEPARTMENT_CODE)
        else:
            issued = desk.renew(live.identifier, issuer_code=dev.DEMO_DEPARTMENT_CODE, reason="demo run")
        stem = folder / issued.identifier.replace(".", "_")
        verdicts = []
        for kind, data in (("ofd", issued.ofd), ("pdf", issued.pdf)):
            stem.with_suffix(f".{kind}").write_bytes(data)
            verdicts.append(validate_document(data, trust, utc_now()).indication)
        qr = verify_payload(issued.qr, signers, at=utc_now(), expected_base=td.qr_base)
        ok = verdicts == ["TOTAL_PASSED", "TOTAL_PASSED"] and qr.ok
        report.steps.append(Step(f"{'renew' if live else 'issue'} a {licence_type.name}", ok,
                                 f"{issued.identifier}: OFD {verdicts[0]}, PDF {verdicts[1]}, "
                                 f"QR {'verified' if qr.ok else 'NOT verified'}; {stem}.pdf"))


def _renewable(desk, live, department: str) -> bool:
    """Whether the demo may renew ``live``: the demo department's own, and valid now."""
    from licences.metadata import LicenceStatus

    return live.issuer_code == department and desk.library.status(live.identifier) is LicenceStatus.VALID
