"""Credentials, request size and media type, checked before and while the body is read.

Every request under the API prefix is first authenticated from its headers by the ``gate``
the app gives (:func:`~trust.service.context.gate`): a request without a valid key is
answered 401 before a byte of its body is read or parsed. A declared ``Content-Length`` over
the limit is refused before a byte of the body is read; a body without one (chunked) is
counted as it arrives and refused the moment it passes the limit, so a client cannot make the
service buffer more than the limit. Only the upload
endpoint takes ``multipart/form-data`` (with its own, larger limit); every other request
with a body must be ``application/json``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from ..body_guard import BodyTooLarge as BaseBodyTooLarge
from ..body_guard import run_counted
from .errors import ApiError

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class BodyTooLarge(BaseBodyTooLarge):
    """Raised from the body stream (:func:`trust.body_guard.counting`), with the service's answer."""

    def api_error(self) -> ApiError:
        return ApiError(
            "payload_too_large",
            f"the request body is larger than this endpoint's limit of {self.limit} bytes",
            {"limit": self.limit},
        )


async def send_error(send: Send, error: ApiError) -> None:
    body = json.dumps(error.body(), ensure_ascii=False).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()),
    ]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


Gate = Callable[[Scope], Awaitable[ApiError | None]]


class BodyLimits:
    """ASGI middleware: the gate, then the size and media type rules above, for paths under
    ``prefix``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str,
        json_limit: int,
        upload_limit: int,
        upload_paths: Collection[str],
        gate: Gate | None = None,
    ):
        self.app, self.prefix, self.gate = app, prefix, gate
        self.json_limit, self.upload_limit, self.upload_paths = (
            json_limit,
            upload_limit,
            frozenset(upload_paths),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if self.gate is not None:
            refused = await self.gate(scope)
            if refused is not None:
                await send_error(send, refused)
                return
        if scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        upload = scope["path"] in self.upload_paths
        limit = self.upload_limit if upload else self.json_limit
        headers = Headers(scope=scope)
        expected = "multipart/form-data" if upload else "application/json"
        given = media_type(headers.get("content-type"))
        if given != expected:
            await send_error(
                send,
                ApiError(
                    "unsupported_media_type",
                    f"this endpoint takes {expected}, not {given or 'a body without Content-Type'}",
                    {"expected": expected, "given": given or None},
                ),
            )
            return
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                await send_error(send, ApiError("bad_request", "the Content-Length header is not a number"))
                return
            if int(declared) > limit:
                await send_error(send, BodyTooLarge(limit).api_error())
                return

        async def refuse(exc: BaseBodyTooLarge) -> None:
            await send_error(send, BodyTooLarge(exc.limit).api_error())

        await run_counted(self.app, scope, receive, send, limit, refuse, BodyTooLarge)
