"""A small SM2 PKI for tests that seal documents: root (the trust anchor), seal maker, signer.

Built with the CA's own certificate builder and ephemeral keys, so document tests do not need
a database or a key store; the seal is a GB/T 38540 v4 seal listing the signer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import x509

from ca.certificates import build_certificate
from ca.crl import RevokedEntry, build_crl
from ca.names import subject_name
from ca.profiles import DEPARTMENT_SIGNER, ROOT_CA, SEAL_MAKER
from hsm.hazmat import SM2PrivateKey
from seals.make import SealContent, make_seal

PNG = b"\x89PNG\r\n\x1a\n" + bytes(32)
SEAL_NAME = "示例市市场监督管理局电子证照专用章"


@dataclass
class Pki:
    now: datetime
    root: x509.Certificate
    root_key: SM2PrivateKey
    maker: x509.Certificate
    signer_key: SM2PrivateKey
    signer: x509.Certificate
    seal: bytes
    other_seal: bytes

    def crl(self, revoked: list[RevokedEntry] | None = None, at: datetime | None = None):
        at = at or self.now
        return build_crl(issuer=self.root, signer=self.root_key, entries=list(revoked or ()), number=1,
                         this_update=at - timedelta(hours=1), next_update=at + timedelta(days=1))


def make_pki(now: datetime | None = None, picture: tuple[bytes, int, int] = (PNG, 40, 40)) -> Pki:
    """Certificates valid from ten days before ``now`` to 30 days after; the seal for 60 days."""
    now = now or datetime.now(UTC).replace(microsecond=0)
    root_key, maker_key, signer_key = (SM2PrivateKey.generate() for _ in range(3))
    start = now - timedelta(days=10)
    root = build_certificate(profile=ROOT_CA, subject=subject_name("测试根"),
                             subject_key=root_key.public_key(), signer=root_key, issuer=None, serial=1,
                             not_before=start)

    def leaf(profile, key, cn, serial):
        return build_certificate(profile=profile, subject=subject_name(cn), subject_key=key.public_key(),
                                 signer=root_key, issuer=root, serial=serial, not_before=start,
                                 not_after=now + timedelta(days=30))

    maker, signer = leaf(SEAL_MAKER, maker_key, "制章人", 2), leaf(DEPARTMENT_SIGNER, signer_key, "签章人", 3)
    data, width, height = picture

    def seal(name: str) -> bytes:
        content = SealContent(es_id="35010000000001", seal_type=1, name=name, certificates=[signer.dump()],
                              create_date=start, valid_start=start, valid_end=now + timedelta(days=60),
                              picture_type="png", picture=data, width_mm=width, height_mm=height)
        return make_seal(content, maker_certificate=maker.dump(), maker=maker_key)

    return Pki(now, root, root_key, maker, signer_key, signer, seal(SEAL_NAME), seal("另一枚章"))
