"""Authenticate first, then read at most ``limit`` bytes of the body: an ASGI guard for paths
that take a body from callers who must prove who they are.

FastAPI reads and parses a request body before any dependency runs, so an endpoint whose
authentication is a dependency would parse 30 MB from an anonymous caller — or answer its
malformed JSON with a 400 — before it said 401. The guard runs in front of the app: it calls
the ``gate`` (authentication and the rate limit, from the headers alone) and answers its
refusal without reading a byte of the body; a declared ``Content-Length`` over the limit is
refused before the body is read, and a body without one (chunked) is counted as it arrives and
refused the moment it passes the limit (:class:`BodyTooLarge`, an HTTPException so that
FastAPI's body reader lets it through to the app's handler; the guard answers it itself if it
escapes). The signing service solved the same problem for its API
(:mod:`trust.service.limits`); this is the same approach with the answers left to the app, so
that each service keeps its own error format.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: Answers a request's headers: None to let it in, or the response that refuses it.
Gate = Callable[[Scope], Awaitable[Response | None]]


class BodyTooLarge(HTTPException):
    """The body passed the limit while it was being read."""

    def __init__(self, limit: int):
        self.limit = limit
        super().__init__(413, f"the request body is larger than {limit} bytes")


def counting(receive: Receive, limit: int, error: type[BodyTooLarge] = BodyTooLarge) -> Receive:
    """``receive``, raising ``error(limit)`` once the body it delivered passes ``limit`` bytes."""
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise error(limit)
        return message

    return counted


async def run_counted(app: ASGIApp, scope: Scope, receive: Receive, send: Send, limit: int,
                      refuse: Callable[[BodyTooLarge], Awaitable[None]],
                      error: type[BodyTooLarge] = BodyTooLarge) -> None:
    """Run ``app`` on a body counted against ``limit``; when the overflow escapes the app (no
    handler turned it into a response) and nothing was sent yet, ``refuse(exc)`` answers it."""
    started = False

    async def tracked(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, counting(receive, limit, error), tracked)
    except BodyTooLarge as exc:
        if started:
            raise
        await refuse(exc)


def declared_too_large(headers: Headers, limit: int) -> bool:
    """Whether the declared Content-Length is over ``limit`` (or not a number at all)."""
    declared = headers.get("content-length")
    return declared is not None and (not declared.strip().isdigit() or int(declared) > limit)


class BodyGuard:
    """ASGI middleware: for paths starting with one of ``prefixes``, the ``gate`` first, then at
    most ``limit`` bytes of body; ``too_large(limit)`` is the app's 413 answer."""

    def __init__(self, app: ASGIApp, *, prefixes: tuple[str, ...], limit: int, gate: Gate | None,
                 too_large: Callable[[int], Response]):
        self.app, self.prefixes, self.limit, self.gate, self.too_large = app, prefixes, limit, gate, too_large

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        if self.gate is not None:
            refused = await self.gate(scope)
            if refused is not None:
                await refused(scope, receive, send)
                return
        if declared_too_large(Headers(scope=scope), self.limit):
            await self.too_large(self.limit)(scope, receive, send)
            return

        async def refuse(exc: BodyTooLarge) -> None:
            await self.too_large(self.limit)(scope, receive, send)

        await run_counted(self.app, scope, receive, send, self.limit, refuse)
