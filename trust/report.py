"""The validation report: one shape for every kind of evidence, as JSON, text and HTML.

A report is derived, never assembled by hand: each signature's indication comes from its
checks (:func:`ca.verdict.verdict`), the document's from its signatures and its own checks.
JSON shape (stable, other systems parse it)::

    {"indication", "sub_indication", "kind", "validation_time", "checks": [...],
     "signatures": [{"id", "format", "indication", "sub_indication", "signer", "seal",
                     "signing_time", "checks": [{"name", "passed", "detail", "subject"?,
                                                 "code"?}]}]}
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ca.verdict import (
    INDETERMINATE,
    NO_SIGNATURE_FOUND,
    TOTAL_FAILED,
    TOTAL_PASSED,
    Check,
    Judged,
    verdict,
)

_CONTROL = {c: None for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))}
_CONTROL.update({0x2028: None, 0x2029: None, 0x202A: None, 0x202B: None, 0x202C: None, 0x202D: None,
                 0x202E: None, 0x2066: None, 0x2067: None, 0x2068: None, 0x2069: None})


def printable(text: str) -> str:
    """``text`` from a document or certificate, safe for a terminal: C0/C1 controls (escape
    sequences that could rewrite the verdict line) and bidirectional overrides removed."""
    return text.translate(_CONTROL)


LABELS = {
    TOTAL_PASSED: "valid (验证通过)",
    TOTAL_FAILED: "invalid (验证失败)",
    INDETERMINATE: "cannot tell (无法确定)",
    NO_SIGNATURE_FOUND: "no signature (未签名)",
}


def check_dict(check: Check) -> dict[str, Any]:
    out: dict[str, Any] = {"name": check.name, "passed": check.ok, "detail": check.detail}
    if check.subject:
        out["subject"] = check.subject
    if check.code:
        out["code"] = check.code
    return out


@dataclass(frozen=True)
class SignatureReport(Judged):
    id: str
    format: str
    checks: tuple[Check, ...]
    signer: dict[str, Any] | None = None
    seal: dict[str, Any] | None = None
    signing_time: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "format": self.format,
            "indication": self.indication,
            "sub_indication": self.sub_indication,
            "signer": self.signer,
            "seal": self.seal,
            "signing_time": self.signing_time.isoformat() if self.signing_time else None,
            "checks": [check_dict(c) for c in self.checks],
        }


@dataclass(frozen=True)
class DocumentReport:
    kind: str  # "ofd", later "pdf", "qr", "seal"
    validation_time: datetime
    signatures: tuple[SignatureReport, ...]
    checks: tuple[Check, ...] = ()  # document level (coverage, signature lists)
    trust_anchors: tuple[str, ...] = field(default_factory=tuple)

    @property
    def verdict(self) -> tuple[str, str | None]:
        if not self.signatures:
            # A signature list that is named but unreadable is a damaged document, not an unsigned one.
            own = verdict(self.checks)
            return own if own[0] != TOTAL_PASSED else (NO_SIGNATURE_FOUND, None)
        # A signature's own failure names the problem best (HASH_FAILURE for a changed page);
        # the package's checks (coverage) come next, then anything undecided.
        own = verdict(self.checks)
        results = [(s.indication, s.sub_indication) for s in self.signatures]
        for result in results:
            if result[0] == TOTAL_FAILED:
                return result
        if own[0] != TOTAL_PASSED:
            return own
        for result in results:
            if result[0] == INDETERMINATE:
                return result
        return own

    @property
    def indication(self) -> str:
        return self.verdict[0]

    @property
    def sub_indication(self) -> str | None:
        return self.verdict[1]

    def as_dict(self) -> dict[str, Any]:
        return {
            "indication": self.indication,
            "sub_indication": self.sub_indication,
            "kind": self.kind,
            "validation_time": self.validation_time.isoformat(),
            "trust_anchors": list(self.trust_anchors),
            "checks": [check_dict(c) for c in self.checks],
            "signatures": [s.as_dict() for s in self.signatures],
        }

    def as_text(self) -> str:
        lines = [
            f"{self.indication}{' / ' + self.sub_indication if self.sub_indication else ''}"
            f" — {LABELS[self.indication]}",
            f"{self.kind.upper()} document, validated at {self.validation_time.isoformat()}",
        ]
        for check in self.checks:
            lines.append(f"  {'✓' if check.ok else '✗'} {check.name}: {check.detail}")
        for s in self.signatures:
            lines.append("")
            lines.append(
                f"signature {s.id} ({s.format}): {s.indication}"
                f"{' / ' + s.sub_indication if s.sub_indication else ''}"
            )
            if s.signer:
                lines.append(f"  signer: {s.signer.get('subject')}")
            if s.seal:
                lines.append(
                    f"  seal: {s.seal.get('name')} (esID {s.seal.get('esid')}, maker {s.seal.get('maker')})"
                )
            if s.signing_time:
                lines.append(f"  signing time (claimed): {s.signing_time.isoformat()}")
            for check in s.checks:
                lines.append(f"  {'✓' if check.ok else '✗'} {check.name}: {check.detail}")
        return "\n".join(printable(line) for line in lines)

    def as_html(self) -> str:
        def rows(checks: tuple[Check, ...]) -> str:
            return "".join(
                f"<tr class={'ok' if c.ok else 'fail'}><td>{'✓' if c.ok else '✗'}</td>"
                f"<td>{html.escape(c.name)}</td><td>{html.escape(c.detail)}</td></tr>"
                for c in checks
            )

        parts = [
            f"<section class='report'><h1 class='{self.indication.lower()}'>"
            f"{html.escape(LABELS[self.indication])}</h1>",
            f"<p>{html.escape(self.indication)} {html.escape(self.sub_indication or '')}</p>",
            f"<table>{rows(self.checks)}</table>",
        ]
        for s in self.signatures:
            who = html.escape((s.seal or {}).get("name") or (s.signer or {}).get("subject") or "")
            parts.append(
                f"<h2>{html.escape(s.id)} — {html.escape(s.indication)} "
                f"{html.escape(s.sub_indication or '')}</h2><p>{who}</p><table>{rows(s.checks)}</table>"
            )
        parts.append("</section>")
        return "".join(parts)
