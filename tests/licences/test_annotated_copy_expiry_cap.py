"""A copy's expiry (licences.annotated_copy.copy_expiry): the days asked for, cut short by the
holder's grant or the licence's last valid day (China time), whichever ends first, in whole
seconds and never past either end; and the one ISO-UTC formatter every copy time goes through."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from licences.annotated_copy import Annotation, CopyRequest, copy_expiry
from licences.states import CHINA_TIME, expiry_instant
from licences.utc_text import iso_utc

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.mark.parametrize(("grant", "licence", "expected", "by"), [
    (None, None, NOW + timedelta(days=30), None),
    (NOW + timedelta(days=40), date(2026, 12, 31), NOW + timedelta(days=30), None),
    (NOW + timedelta(minutes=5, microseconds=900), None, NOW + timedelta(minutes=5), "grant"),
    (NOW + timedelta(days=40), date(2026, 3, 10), datetime(2026, 3, 10, 16, 0, tzinfo=UTC), "licence"),
    (NOW + timedelta(days=2), date(2026, 3, 10), NOW + timedelta(days=2), "grant"),
])
def test_the_earliest_end_wins(grant, licence, expected, by):
    assert copy_expiry(NOW, 30, grant, licence) == (expected, by)


def test_the_licence_ends_after_its_last_day_in_china_time():
    assert expiry_instant(date(2026, 3, 10)) == datetime(2026, 3, 10, 16, 0, tzinfo=UTC)


def test_the_annotation_carries_the_capped_expiry_and_why():
    annotation = Annotation.for_request(CopyRequest("pdf", 90), purpose="核验", client_id="dept-1",
                                        client_name="部门", now=NOW, response_id="resp-1", identifier="x",
                                        grant_until=NOW + timedelta(hours=1))
    assert (annotation.expires, annotation.capped_by) == (NOW + timedelta(hours=1), "grant")
    assert annotation.metadata()["AnnotationExpires"] == "2026-03-04T06:06:07Z"


def test_one_iso_utc_format():
    assert iso_utc(NOW.replace(microsecond=999999)) == "2026-03-04T05:06:07Z"
    assert iso_utc(datetime(2026, 3, 4, 13, 6, 7, tzinfo=CHINA_TIME)) == "2026-03-04T05:06:07Z"
