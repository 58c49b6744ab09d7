"""Bulk conversion racing another converter: a record issued by someone else after this one's
library query is "already issued", never a second licence and never a false rejection."""

from __future__ import annotations

import pytest

from keys_dev.domain import DEMO_DEPARTMENT_CODE
from licences.catalogue import Catalogue
from support.cli import run_cli
from trust.batch import Converter, SourceRecord

BUSINESS = "11100000MB0000019L001"


@pytest.fixture(scope="module")
def converter(tmp_path_factory):
    home = tmp_path_factory.mktemp("race-home")
    code, _, err = run_cli(home, "init")
    assert code == 0, err
    converter = Converter(str(home), BUSINESS, DEMO_DEPARTMENT_CODE)
    yield converter
    converter.close()


def record(line: int, source_id: str, credit_code: str) -> SourceRecord:
    example = dict(Catalogue.load().get(BUSINESS).example)
    return SourceRecord(line, source_id, example | {"统一社会信用代码": credit_code})


def test_a_record_issued_meanwhile_counts_as_already_issued(converter, monkeypatch):
    first = record(1, "R-1", "91350100000000001L")
    [issued] = converter.convert([first])
    assert issued.status == "issued"

    real = converter.recorded
    calls = []

    def stale(source_ids):  # the chunk's query ran before the other converter committed
        calls.append(list(source_ids))
        return {} if len(calls) == 1 else real(calls[-1])

    monkeypatch.setattr(converter, "recorded", stale)
    [again] = converter.convert([first])
    assert again.status == "already" and again.identifier == issued.identifier
    monkeypatch.undo()
    assert converter.recorded(["R-1"]) == {"R-1": issued.identifier}


def test_another_record_with_a_live_licence_number_is_rejected(converter):
    [first] = converter.convert([record(1, "R-2", "91350100000000002P")])
    assert first.status == "issued"
    [second] = converter.convert([record(2, "R-3", "91350100000000002P")])
    assert second.status == "rejected" and second.identifier is None
    assert second.reasons[0]["message_zh"] and "91350100000000002P" in second.reasons[0]["message_en"]
    assert converter.recorded(["R-2", "R-3"]) == {"R-2": first.identifier}
