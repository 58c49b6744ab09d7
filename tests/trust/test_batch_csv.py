"""The CSV convention of bulk conversion: typed cells per the JSON Schema, dotted names for
nested fields, empty cells absent, and header faults refused for the whole file."""

from __future__ import annotations

from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from licences.catalogue import _field_error
from trust.batch import BatchInputError, Outcome, SourceRecord, csv_header, csv_records, read_records

SCHEMA = {
    "type": "object",
    "properties": {
        "名称": {"type": "string", "title": "名称"},
        "人数": {"type": "integer", "title": "人数", "minimum": 0},
        "面积": {"type": "number", "title": "面积"},
        "连锁": {"type": "boolean", "title": "连锁"},
        "项目": {"type": "array", "items": {"type": "string"}, "title": "项目"},
        "地址": {"type": "object", "title": "地址",
                 "properties": {"省": {"type": "string"}, "门牌": {"type": ["integer", "null"]}},
                 "additionalProperties": False},
    },
    "required": ["名称", "人数"],
    "additionalProperties": False,
}


class FakeType:
    """What the CSV reader needs of a licence type: its schema and its field errors."""

    schema = SCHEMA

    def errors(self, data):
        return [_field_error(e, SCHEMA) for e in Draft202012Validator(SCHEMA).iter_errors(data)]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_cells_are_typed_by_the_schema_and_dotted_names_nest(tmp_path):
    path = write(tmp_path, "source_id,名称,人数,面积,连锁,项目,地址.省,地址.门牌\n"
                           'A,甲,12,3.5,是,"[""餐饮"",""零售""]",福建,158\n'
                           "B,乙,0,,false,,,\n")
    records = list(csv_records(path, FakeType()))
    assert records == [
        SourceRecord(2, "A", {"名称": "甲", "人数": 12, "面积": 3.5, "连锁": True, "项目": ["餐饮", "零售"],
                              "地址": {"省": "福建", "门牌": 158}}),
        SourceRecord(3, "B", {"名称": "乙", "人数": 0, "连锁": False}),
    ]


def test_a_cell_of_the_wrong_type_is_reported_with_the_other_faults(tmp_path):
    path = write(tmp_path, "source_id,名称,人数,面积,连锁\nA,,十二,NaN,也许\n")
    [outcome] = list(csv_records(path, FakeType()))
    assert isinstance(outcome, Outcome) and outcome.status == "rejected" and outcome.line == 2
    paths = [r["path"] for r in outcome.reasons]
    # 人数 cannot be read (so it is not reported missing as well); 名称 is empty, hence missing.
    assert paths[:3] == ["$.人数", "$.面积", "$.连锁"] and "$.名称" in paths and paths.count("$.人数") == 1
    first = outcome.reasons[0]
    assert "人数应为整数" in first["message_zh"] and "integer" in first["message_en"]


def test_duplicate_and_missing_source_ids_are_rejected_records(tmp_path):
    path = write(tmp_path, "source_id,名称,人数\nA,甲,1\n ,乙,2\nA,丙,3\n")
    outcomes = list(read_records(path, FakeType()))
    assert isinstance(outcomes[0], SourceRecord)
    assert outcomes[1].status == "rejected" and outcomes[1].reasons[0]["path"] == "$.source_id"
    assert outcomes[2].status == "rejected" and "first at line 2" in outcomes[2].reasons[0]["message_en"]


@pytest.mark.parametrize("header, message", [
    ("名称,人数", "source_id column"),
    ("source_id,名称,名称", "more than once"),
    ("source_id,名称,电话", "电话"),
    ("source_id,地址,地址.省", "both fill the same field"),
    ("source_id,名称.省", "名称.省"),
])
def test_header_faults_refuse_the_file(tmp_path, header, message):
    path = write(tmp_path, header + "\nA,甲,1\n")
    with pytest.raises(BatchInputError, match=message):
        csv_header(path, FakeType())
