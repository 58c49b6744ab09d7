"""The acts under dual control (trust/approvals.py): for each, what is checked when it is
requested and what runs when a second officer approves it.

Destroying a key version, revoking a certificate, revoking a seal (and with it its signer
certificates), and declaring a seal's key compromised (trust/compromise.py). Each check refuses
what cannot be done with the act's own error (KeyNotFound, CertificateNotFound, InvalidRequest,
SealNotFound, SealStateError …) before anything is filed; each run calls the room that acts, as
the domain of both officers (``"<requester>, approved by <approver>"``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .approvals import (
    ApprovalRefused,
    ApprovalRequestError,
    Approvals,
    DangerousAct,
    reason_text,
    register_act,
    text_param,
    time_param,
)
from .domain import TrustDomain


def _check_destroy(domain: TrustDomain, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from hsm.keystore import KeyState

    label, version = text_param(params, "label", 200), params.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ApprovalRequestError("version must be a positive whole number")
    found = {kv.version: kv for kv in domain.keys.versions(label)}  # KeyNotFound for an unknown label
    kv = found.get(version)
    if kv is None:
        from hsm.errors import KeyNotFound

        raise KeyNotFound(f"key {label} has no version {version}")
    if kv.state is KeyState.DESTROYED:
        raise ApprovalRefused(f"key {label} version {version} is already destroyed")
    return f"key:{label}/v{version}", {"label": label, "version": version}


def _run_destroy(domain: TrustDomain, params: dict[str, Any]) -> dict[str, Any]:
    kv = domain.keys.destroy(params["label"], params["version"])
    return {"label": kv.label, "version": kv.version, "state": kv.state.value}


def _check_ca_revoke(domain: TrustDomain, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from ca.authority import REVOCATION_REASONS, utc_now
    from ca.errors import InvalidRequest
    from ca.profiles import ROOT_CA

    reason = params.get("reason") or "unspecified"
    if reason not in REVOCATION_REASONS:
        raise InvalidRequest(f"unknown or unsupported revocation reason {reason!r}; "
                             f"use one of: {', '.join(REVOCATION_REASONS)}")
    record = domain.ca.find(text_param(params, "serial", 80))  # CertificateNotFound
    if record.revoked:
        raise InvalidRequest(f"certificate {record.serial} was already revoked on "
                             f"{record.revoked_at.isoformat()}")
    if record.profile == ROOT_CA.name:
        raise InvalidRequest("the root certificate cannot be revoked by its own CRL; "
                             "replace the trust anchor")
    invalid = params.get("invalidity_date")
    if invalid is not None:
        when = time_param(invalid, "invalidity_date")
        if when > utc_now():
            raise InvalidRequest("the invalidity date cannot be in the future")
        invalid = when.isoformat()
    return f"cert:{record.serial}", {"serial": record.serial, "reason": reason, "invalidity_date": invalid}


def _run_ca_revoke(domain: TrustDomain, params: dict[str, Any]) -> dict[str, Any]:
    invalid = params.get("invalidity_date")
    from ca.issuer_crls import publish_issuer_crls

    record = domain.ca.revoke(params["serial"], params["reason"],
                              invalidity_date=datetime.fromisoformat(invalid) if invalid else None)
    # The CRL of the CA key that issued it (after a CA rotation not the current key's).
    published = publish_issuer_crls(domain.ca, [record])[-1]
    return {"serial": record.serial, "status": "revoked", "revocation_reason": record.revocation_reason,
            "revoked_at": record.revoked_at.isoformat(),
            "invalidity_date": record.invalidity_date.isoformat() if record.invalidity_date else None,
            "crl_number": published.number}


def _check_seal_revoke(domain: TrustDomain, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from ca.authority import REVOCATION_REASONS, utc_now
    from ca.errors import InvalidRequest
    from seals.lifecycle import next_status
    from seals.office import CERTIFICATE_REVOCATION_REASON

    record = domain.seals.find(text_param(params, "es_id", 14))  # SealNotFound
    next_status(record.es_id, record.status_at(utc_now()), "revoke")  # SealStateError
    certificate_reason = params.get("certificate_reason") or CERTIFICATE_REVOCATION_REASON
    if certificate_reason not in REVOCATION_REASONS:
        raise InvalidRequest(f"unknown certificate revocation reason {certificate_reason!r}")
    reason = reason_text(params.get("reason")) or "unspecified"
    return f"seal:{record.es_id}", {"es_id": record.es_id, "reason": reason,
                                    "certificate_reason": certificate_reason}


def _run_seal_revoke(domain: TrustDomain, params: dict[str, Any]) -> dict[str, Any]:
    record = domain.seals.revoke(params["es_id"], params["reason"],
                                 certificate_reason=params["certificate_reason"])
    return {"esid": record.es_id, "status": record.status, "status_reason": record.status_reason,
            "certificates": [c.serial for c in record.certificates]}


KEY_DESTROY = register_act(DangerousAct("keys.destroy", "destroy", _check_destroy, _run_destroy))
CA_REVOKE = register_act(DangerousAct("ca.revoke", "revoke", _check_ca_revoke, _run_ca_revoke))
SEAL_REVOKE = register_act(DangerousAct("seal.revoke", "revoke", _check_seal_revoke, _run_seal_revoke))


def _check_compromise(domain: TrustDomain, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    from .compromise import check_compromise

    return check_compromise(domain, params)


def _run_compromise(domain: TrustDomain, params: dict[str, Any]) -> dict[str, Any]:
    from .compromise import CompromiseError, declare_compromise

    serials = params.get("serials")
    if not isinstance(serials, list) or not serials:
        raise CompromiseError("this request names no certificates to revoke (filed by an older version): "
                              "reject it and file the declaration again")
    return declare_compromise(domain, params["es_id"], time_param(params["since"], "since"),
                              serials=serials).as_dict()


SEAL_COMPROMISE = register_act(DangerousAct("seal.compromise", "declare compromised", _check_compromise,
                                            _run_compromise))


def request_superseded_revocations(domain: TrustDomain, rotation: Any) -> list[dict[str, Any]]:
    """After a seal rotation asked to revoke the old certificates: one ``ca.revoke`` request
    (reason superseded, invalid from the rotation) per old certificate not yet revoked.

    Revoking a seal's certificate is under dual control whoever asks for it, so a rotation
    (CLI or HTTP) files these requests instead of revoking (seals.rotation.rotate_seal's own
    ``revoke_old`` is for callers that are themselves an approved act). With dual control
    switched off in development they run at once.
    """
    approvals = Approvals(domain)
    filed = []
    for serial in rotation.old_certificates:
        if domain.ca.find(serial).revoked:
            continue
        outcome = approvals.request("ca.revoke", {"serial": serial, "reason": "superseded",
                                                  "invalidity_date": rotation.rotated_at.isoformat()})
        filed.append({"serial": serial, "request_id": outcome.request.id, "executed": outcome.executed})
    return filed
