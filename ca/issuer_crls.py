"""Publishing the CRL that a revocation belongs on: the one of the CA key that issued it.

After a CA rotation the CA has one CRL per key (:meth:`CertificateAuthority.publish_crl` with
``issuer=``): a certificate issued before the rotation is listed only on the old key's CRL,
and a relying party checks it against that CRL alone. Publishing "the issuing CA's CRL"
after revoking it signs the new key's CRL, which does not list it, and the revocation reaches
nobody until the old key's CRL is next re-signed. So whoever revokes certificates calls
:func:`publish_issuer_crls` with them: every CA key that issued one of them signs a fresh CRL.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select

from .authority import CertificateAuthority, utc_now
from .profiles import ROOT_CA
from .registry import CertificateRecord, CrlRecord


def publish_issuer_crls(ca: CertificateAuthority, certificates: Iterable[CertificateRecord]
                        ) -> list[CrlRecord]:
    """A new CRL for each CA key that issued one of ``certificates``, oldest key first.

    Each is signed under the newest unrevoked, unexpired certificate of that key (as
    :meth:`CertificateAuthority.live_crls` does), or the issuing certificate itself when the
    key has no live one left. Certificates without an issuer in this CA (a root) are skipped.
    """
    issuer_ids = sorted({c.issuer_id for c in certificates if c.issuer_id is not None})
    if not issuer_ids:
        return []
    now = utc_now()
    signers: dict[tuple[str, str | None, int | None], CertificateRecord] = {}
    with ca.db.transaction() as s:
        for issuer_id in issuer_ids:
            issuer = s.get(CertificateRecord, issuer_id)
            if issuer is None:
                continue
            key = (issuer.profile, issuer.key_label, issuer.key_version)
            if key in signers:
                continue
            newest = s.scalars(select(CertificateRecord).where(
                CertificateRecord.profile == issuer.profile, CertificateRecord.key_label == issuer.key_label,
                CertificateRecord.key_version == issuer.key_version, CertificateRecord.revoked_at.is_(None),
                CertificateRecord.not_after > now).order_by(CertificateRecord.id.desc()).limit(1)).first()
            signers[key] = newest or issuer
    return [ca.publish_crl("root" if signer.profile == ROOT_CA.name else "issuing", issuer=signer)
            for signer in signers.values()]
