"""The demo's licence step run again on a home where the example licences are already live: it
renews a valid licence of the demo department, and leaves a suspended one alone (a renewal of a
suspended licence is refused, and issuing a second live licence with its number is too)."""

from __future__ import annotations

from support.cli import run_cli

FOOD = "11100000MB0000019L002"


def test_the_demo_renews_only_a_valid_licence_of_its_department(tmp_path):
    from trust.demo import DemoReport, _issue_licences
    from trust.domain import TrustDomain

    code, _, err = run_cli(tmp_path, "init")
    assert code == 0, err
    td = TrustDomain.open(str(tmp_path))
    try:
        first = DemoReport(init=None, export_dir=tmp_path)
        _issue_licences(td, first, tmp_path)
        assert first.ok and all(s.name.startswith("issue") for s in first.steps), first.steps
        example = td.licence_desk.catalogue.get(FOOD).example
        food = td.licences.live_licence(FOOD, example["许可证编号"])
        td.licences.suspend(food.identifier, "整改")
        again = DemoReport(init=None, export_dir=tmp_path)
        _issue_licences(td, again, tmp_path)
        assert again.ok, again.steps
        skipped = [s for s in again.steps if "skipped" in s.detail]
        assert len(skipped) == 1 and food.identifier in skipped[0].detail and "suspended" in skipped[0].detail
        assert sum(s.name.startswith("renew") for s in again.steps) == len(again.steps) - 1
        assert td.licences.find(food.identifier).status == "02"
    finally:
        td.close()
