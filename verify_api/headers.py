"""Headers every answer of a service carries, added as the response starts.

A plain ASGI middleware rather than Starlette's ``BaseHTTPMiddleware`` (``@app.middleware``):
that one runs the rest of the app in a task group and re-streams every response body through a
memory channel, which on the public QR page cost about as much as the page itself. Here the
only work per response is one pass over its header list.

``always`` headers replace whatever the route set; ``defaults`` are added only where the route
set none (``Cache-Control: no-store`` unless a published file says how long it may be kept);
``https_only`` are added when ``https(scope)`` says so (HSTS, which a browser must not see over
plain HTTP unless the operator says the site is HTTPS-only behind a proxy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RawHeaders = list[tuple[bytes, bytes]]


def _raw(headers: Mapping[str, str]) -> RawHeaders:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class ResponseHeaders:
    """Adds ``always``, ``defaults`` and (over HTTPS) ``https_only`` headers to every HTTP response."""

    def __init__(self, app: ASGIApp, *, always: Mapping[str, str], defaults: Mapping[str, str] | None = None,
                 https_only: Mapping[str, str] | None = None,
                 https: Callable[[Scope], bool] | None = None):
        self.app = app
        self.always, self.defaults = _raw(always), _raw(defaults or {})
        self.https_only, self.https = _raw(https_only or {}), https
        self._replaced = frozenset(name for name, _ in self.always + self.https_only)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.always + (self.https_only if self.https is not None and self.https(scope) else [])

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                given = message.get("headers") or []
                kept = [(n, v) for n, v in given if n.lower() not in self._replaced]
                present = {n.lower() for n, _ in kept}
                message = {**message, "headers": kept + extra
                           + [(n, v) for n, v in self.defaults if n not in present]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
