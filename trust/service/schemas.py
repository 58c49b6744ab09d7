"""Request and response bodies of the signing service (what the OpenAPI document shows).

Requests forbid unknown fields (DESIGN.md: no mass assignment); the licence ``data`` object
itself is checked against the licence type's JSON Schema by the catalogue, which reports
every field error at once in Chinese and English.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IssueRequest(Strict):
    type: str = Field(description="licence type code (see `zhengyin licence types`)", max_length=21)
    data: dict[str, Any] = Field(description="the licence data, as the type's JSON Schema describes it")
    source_id: str | None = Field(
        None, max_length=200, description="the record's ID in the department's own system (unique per type)"
    )


class ChangeRequest(Strict):
    data: dict[str, Any] = Field(description="the changed licence data, complete")
    reason: str = Field(max_length=500, description="why it changed (goes into the licence's history)")


class RenewRequest(Strict):
    data: dict[str, Any] | None = Field(None, description="new licence data; omitted: the current data")
    reason: str | None = Field(None, max_length=500)


class ReasonRequest(Strict):
    reason: str = Field(max_length=500, description="goes into the licence's history")


class OptionalReasonRequest(Strict):
    reason: str | None = Field(None, max_length=500)


class Links(Strict):
    self: str
    ofd: str
    pdf: str


class IssuedResponse(Strict):
    identifier: str
    qr: str = Field(
        description="the text of the licence's QR code (a URL of the public verification service)"
    )
    metadata: dict[str, Any]
    links: Links


class HistoryEntry(Strict):
    act: str
    from_status: str | None
    to_status: str
    actor: str
    at: str
    reason: str | None


class LicenceSummary(Strict):
    """The summary ``zhengyin licence show|list`` prints too (licences/summary.py), plus links."""

    identifier: str
    type_code: str
    issuer_code: str
    licence_number: str
    holder_name: str
    status: str = Field(
        description="effective status code now: 01 valid, 02 suspended, 03 cancelled, 04 deregistered, "
        "05 expired (also when past its validity before the sweep records it), 06 transferred, "
        "07 revoked, 99 other (superseded by a change or renewal)"
    )
    status_name: str = Field(description="the status's name; `superseded` for a replaced licence (99)")
    recorded_status: str = Field(description="the status as recorded in the library")
    valid_from: str
    valid_until: str | None
    previous_identifier: str | None
    superseded_by: str | None
    ofd_sm3: str = Field(description="SM3 (hex) of the stored OFD: what GET …/ofd returns")
    pdf_sm3: str = Field(description="SM3 (hex) of the stored PDF")
    links: Links


class LicenceView(LicenceSummary):
    metadata: dict[str, Any]
    history: list[HistoryEntry]


class LicencePage(Strict):
    items: list[LicenceSummary]
    page: int
    limit: int


class Health(Strict):
    status: str
