"""Reading an uploaded document: multipart/form-data, streamed, with the size limit enforced
while the bytes arrive (never after buffering an unbounded body).

A declared Content-Length over the limit is refused before a byte is read; otherwise every
chunk is counted as it comes, and the request is refused (413) the moment the body or the file
passes the limit. At most :data:`MAX_PARTS` parts, small text fields only beside the one file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

MAX_PARTS = 4
MAX_FIELD_BYTES = 256
#: Room for the multipart framing and the small fields around the file.
OVERHEAD = 16 * 1024
FILE_FIELD = "file"


class UploadError(Exception):
    """An upload that cannot be taken; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str):
        self.status, self.code, self.message = status, code, message
        super().__init__(message)


def too_large(limit: int) -> UploadError:
    return UploadError(413, "too_large", f"the upload is larger than the limit of {limit} bytes")


@dataclass
class Upload:
    file: bytes | None = None
    filename: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


class _Collector:
    """python-multipart callbacks gathering the parts, counting the file's bytes."""

    def __init__(self, limit: int):
        self.limit = limit
        self.upload = Upload()
        self.parts = 0
        self._header_field = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, bytes] = {}
        self._name: str | None = None
        self._is_file = False
        self._data = bytearray()

    def callbacks(self) -> dict:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end}

    def part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise UploadError(400, "bad_upload", f"the form has more than {MAX_PARTS} parts")
        self._headers, self._data, self._name, self._is_file = {}, bytearray(), None, False

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def header_end(self) -> None:
        self._headers[bytes(self._header_field).decode("latin-1").lower()] = bytes(self._header_value)
        self._header_field, self._header_value = bytearray(), bytearray()

    def headers_finished(self) -> None:
        kind, options = parse_options_header(self._headers.get("content-disposition", b""))
        name = options.get(b"name")
        if kind != b"form-data" or name is None:
            raise UploadError(400, "bad_upload", "a form part has no Content-Disposition form-data name")
        self._name = name.decode("utf-8", "replace")
        self._is_file = self._name == FILE_FIELD
        if self._is_file:
            if self.upload.file is not None:
                raise UploadError(400, "bad_upload", "send one file only")
            filename = options.get(b"filename")
            self.upload.filename = filename.decode("utf-8", "replace")[:200] if filename else None

    def part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]
        if self._is_file and len(self._data) > self.limit:
            raise too_large(self.limit)
        if not self._is_file and len(self._data) > MAX_FIELD_BYTES:
            raise UploadError(400, "bad_upload",
                              f"form field {self._name!r} is longer than {MAX_FIELD_BYTES} bytes")

    def part_end(self) -> None:
        if self._is_file:
            self.upload.file = bytes(self._data)
        elif self._name is not None:
            self.upload.fields[self._name] = self._data.decode("utf-8", "replace")
        self._data = bytearray()


async def read_upload(request: Request, limit: int) -> Upload:
    """The form's file (field ``file``) and its small fields; UploadError for anything else."""
    kind, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise UploadError(415, "unsupported_media_type",
                          "send the document as multipart/form-data with the file in the field 'file'")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit + OVERHEAD:
        raise too_large(limit)
    collector = _Collector(limit)
    try:
        parser = MultipartParser(boundary, collector.callbacks())
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + OVERHEAD:
                raise too_large(limit)
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise UploadError(400, "bad_upload", f"the form data cannot be read: {exc}") from None
    if not collector.upload.file:
        raise UploadError(400, "bad_upload", "no document: send a non-empty file in the form field 'file'")
    return collector.upload
