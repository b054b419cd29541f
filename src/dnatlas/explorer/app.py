"""The explorer's FastAPI app: ``create_app(ExplorerConfig)``.

Routes and shapes: :mod:`dnatlas.explorer.api_models` (OpenAPI at ``/docs``). Reading the
atlas and the annotation runs on the server's threads; model work (tracks not in the cache,
Gram maps, pasted sequences, steering) on a bounded pool (503 + Retry-After when full).
Every error is ``{"error": message}``; security headers (CSP, nosniff, frame denial, no
referrer) go on every response; no CORS; request bodies over the limit get 413.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from dnatlas.errors import InputError
from dnatlas.explorer.config import ExplorerConfig
from dnatlas.explorer.pool import Busy
from dnatlas.explorer.state import ExplorerState

log = logging.getLogger("dnatlas.explorer")

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' data: blob:; "
       "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
# FastAPI's /docs page loads Swagger UI from a CDN with an inline script
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "img-src 'self' data: https://fastapi.tiangolo.com; frame-ancestors 'none'")
HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
           (b"referrer-policy", b"no-referrer"), (b"cross-origin-opener-policy", b"same-origin"),
           (b"cross-origin-resource-policy", b"same-origin"),
           (b"permissions-policy", b"camera=(), microphone=(), geolocation=()")]
PLACEHOLDER = ("<!doctype html><meta charset=utf-8><title>dnatlas explorer</title>"
               "<p>The front end is not installed; the API is at <a href=docs>/docs</a>.")


def error(status: int, message: str, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


class SecurityHeaders:
    """Pure ASGI: add the security headers (and the CSP) to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        csp = DOCS_CSP if scope["path"] in ("/docs", "/redoc") else CSP
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS if k not in names]
                extra.append((b"content-security-policy", csp.encode()))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:   # a bug: JSON 500 with the headers, the traceback logged
            if started:
                raise
            log.exception("explorer: %s %s failed", scope.get("method"), scope["path"])
            await error(500, f"internal error ({type(exc).__name__}); see the server log")(
                scope, receive, send_with_headers)


class BodyLimit:
    """Pure ASGI: 413 for a body over ``max_bytes`` (by Content-Length, or while read)."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        too_big = JSONResponse({"error": f"request body over {self.max_bytes:,} bytes"},
                               status_code=413)
        try:
            if length is not None and int(length) > self.max_bytes:
                return await too_big(scope, receive, send)
        except ValueError:
            return await error(400, "invalid Content-Length")(scope, receive, send)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise HTTPException(413, f"request body over {self.max_bytes:,} bytes")
            return message

        await self.app(scope, limited, send)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x not in ("query", "body", "path"))
        parts.append(f"{where or 'request'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts)


def create_app(config: ExplorerConfig, state: ExplorerState | None = None) -> FastAPI:
    """The explorer app over ``config`` (``state``: an already opened state, for tests)."""
    from dnatlas._version import __version__
    from dnatlas.explorer import routes

    state = state or ExplorerState(config)
    app = FastAPI(title="dnatlas explorer API", version=__version__,
                  description=__doc__.split("\n\n")[0], openapi_url="/openapi.json")
    app.state.explorer = state

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError):
        return error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return error(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Busy)
    async def _busy(request: Request, exc: Busy):
        return error(503, str(exc), {"Retry-After": str(config.limits.retry_after_s)})

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception):
        log.exception("explorer: %s %s failed", request.method, request.url.path)
        return error(500, f"internal error ({type(exc).__name__}); see the server log")

    routes.add_api_routes(app, state)
    _add_files(app, state, Path(config.static_dir))
    app.add_middleware(BodyLimit, max_bytes=config.limits.body_max_bytes)
    if config.allowed_hosts:
        from starlette.middleware.trustedhost import TrustedHostMiddleware

        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(config.allowed_hosts))
    app.add_middleware(SecurityHeaders)
    app.router.add_event_handler("shutdown", state.close)
    return app


def _add_files(app: FastAPI, state: ExplorerState, static_dir: Path) -> None:
    """``/`` (index.html), ``/static/...`` and igv's reference ``/genome/NAME.fa[.fai]``."""
    from dnatlas.explorer.genome_data import parse_range

    index = static_dir / "index.html"

    @app.get("/", include_in_schema=False)
    def _index():
        if index.is_file():
            return FileResponse(index, media_type="text/html")
        return HTMLResponse(PLACEHOLDER)

    app.mount("/static", StaticFiles(directory=static_dir, check_dir=False), name="static")

    @app.get("/genome/{filename}", include_in_schema=False)
    def _genome(filename: str, request: Request):
        g = state.genome
        if g is None or filename not in (f"{g.name}.fa", f"{g.name}.fa.fai"):
            raise HTTPException(404, f"no file {filename!r} here")
        data = g.fasta.fai if filename.endswith(".fai") else g.fasta.fasta
        media = "text/plain"
        try:
            span = parse_range(request.headers.get("range"), len(data))
        except ValueError:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{len(data)}"})
        if span is None:
            return Response(data, media_type=media, headers={"Accept-Ranges": "bytes"})
        a, b = span
        return Response(data[a:b + 1], status_code=206, media_type=media,
                        headers={"Accept-Ranges": "bytes",
                                 "Content-Range": f"bytes {a}-{b}/{len(data)}"})
