"""The development trust domain: who is who, as data.

The demo department's unified social credit code carries a valid GB 32100 check character
(so code that validates credit codes accepts it); it belongs to no real organisation.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import ensure_development

ensure_development()


@dataclass(frozen=True)
class Party:
    key_label: str
    name: str
    common_name: str
    credit_code: str | None = None


ROOT_CA = Party("dev-root-ca", "证印开发环境", "证印开发根CA (仅限开发)")
ISSUING_CA = Party("dev-issuing-ca", "证印开发环境", "证印开发签发CA (仅限开发)")
SEAL_MAKER = Party("dev-seal-maker", "证印开发环境", "证印开发制章人 (仅限开发)")
OCSP_RESPONDER = Party("dev-ocsp", "证印开发环境", "证印开发OCSP响应器 (仅限开发)")
TIME_STAMPING = Party("dev-tsa", "证印开发环境", "证印开发时间戳 (仅限开发)")

DEMO_DEPARTMENT_NAME = "示例市市场监督管理局"
DEMO_DEPARTMENT_CODE = "11350100MB0000000Y"  # both GB 32100 and GB 11714 check characters valid
DEMO_SIGNER = Party("dev-dept-signer", DEMO_DEPARTMENT_NAME, "示例市市场监督管理局 签章人",
                    DEMO_DEPARTMENT_CODE)


@dataclass(frozen=True)
class DemoSeal:
    """A seal ``zhengyin init`` makes for the demo department (kinds as seals.lifecycle names them)."""

    kind: str
    department: str = DEMO_DEPARTMENT_NAME
    credit_code: str = DEMO_DEPARTMENT_CODE


#: The demo department's seals: its official seal, the seal its licences carry, a contract seal.
DEMO_SEALS = (DemoSeal("official"), DemoSeal("licence"), DemoSeal("contract"))

CRL_BASE_URL = "http://127.0.0.1:8081/crl"
OCSP_URL = "http://127.0.0.1:8081/ocsp"

#: Every key of the development domain, CAs first.
KEYED_PARTIES = (ROOT_CA, ISSUING_CA, SEAL_MAKER, OCSP_RESPONDER, TIME_STAMPING, DEMO_SIGNER)

#: The end-entity certificates of the development domain: (CA profile name, party).
CERTIFIED_PARTIES = (
    ("seal-maker", SEAL_MAKER),
    ("ocsp-responder", OCSP_RESPONDER),
    ("time-stamping", TIME_STAMPING),
    ("department-signer", DEMO_SIGNER),
)
