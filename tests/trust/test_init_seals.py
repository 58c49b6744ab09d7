"""``zhengyin init`` makes the demo department's seals once, keeps them, and replaces one that
is no longer active; the sealing code gets a usable signing identity for them."""

from __future__ import annotations

from keys_dev.domain import DEMO_DEPARTMENT_CODE, DEMO_DEPARTMENT_NAME, DEMO_SEALS
from seals.seal import read_seal
from seals.verification import maker_signature_check
from trust.bootstrap import initialise
from trust.domain import TrustDomain


def _seal_items(items: list[str]) -> list[str]:
    return [item for item in items if " seal " in item]


def test_init_makes_the_demo_seals_once(tmp_path):
    first = initialise(str(tmp_path), actor="test")
    made = _seal_items(first.created)
    assert len(made) == len(DEMO_SEALS) >= 2 and _seal_items(first.existing) == []
    assert any("示例市市场监督管理局公章" in item for item in made)
    assert any("示例市市场监督管理局电子证照专用章" in item for item in made)

    domain = TrustDomain.open(str(tmp_path), actor="test")
    try:
        seals = domain.seals.seals(DEMO_DEPARTMENT_CODE, "active")
        assert {s.kind for s in seals} == {d.kind for d in DEMO_SEALS} >= {"official", "licence"}
        assert {s.department for s in seals} == {DEMO_DEPARTMENT_NAME}
        licence = next(s for s in seals if s.kind == "licence")
        identity = domain.seals.signing_identity(licence.es_id)
        assert identity.seal.name == "示例市市场监督管理局电子证照专用章"
        assert maker_signature_check(read_seal(identity.seal_der)).ok
        maker = domain.ca.certificates(profile="seal-maker")[0]
        assert identity.seal.maker_certificate == maker.der
        assert len(identity.chain) == 2 and domain.audit.verify().ok

        again = initialise(str(tmp_path), actor="test")
        assert again.created == []
        assert sorted(_seal_items(again.existing)) == sorted(made)

        domain.seals.revoke(licence.es_id, "replaced")
        third = initialise(str(tmp_path), actor="test")
        remade = _seal_items(third.created)
        assert len(remade) == 1 and "licence seal" in remade[0] and licence.es_id not in remade[0]
        active = domain.seals.seals(DEMO_DEPARTMENT_CODE, "active", kind="licence")
        assert len(active) == 1 and active[0].serial == len(DEMO_SEALS) + 1
    finally:
        domain.close()
