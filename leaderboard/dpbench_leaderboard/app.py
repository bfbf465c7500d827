"""The HTTP service (FastAPI): HTML pages, the JSON/CSV API and the submission endpoint.

Errors are answers, never tracebacks: a refused request gets its status and ``{"error": one line, "code": ...}``
(an HTML page outside ``/api``); a database that is down or went away mid-request gets 503 with Retry-After, and
since the submission was not stored the client's retry (same Idempotency-Key) stores it exactly once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from importlib.resources import files
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.staticfiles import StaticFiles

from dpbench.errors import DpbenchError
from dpbench_leaderboard.checks import Rejection
from dpbench_leaderboard.db import DatabaseUnavailable, unavailable
from dpbench_leaderboard.limits import BodyLimit, SecurityHeaders
from dpbench_leaderboard.queries import list_boards, raw_results, siblings, submission
from dpbench_leaderboard.render import Links
from dpbench_leaderboard.service import ID_RE, Service
from dpbench_leaderboard.standings import view_csv, view_json
from dpbench_leaderboard.tokens import AuthError, authenticate

log = logging.getLogger("dpbench.leaderboard")
Tasks = Annotated[list[str] | None, Query(max_length=100)]
Short = Annotated[str, Query(max_length=120)]


def _error(request: Request, service: Service, status: int, message: str, code: str,
           headers: Mapping[str, str] | None = None) -> Response:
    if "/api/" in request.url.path or request.method != "GET":
        return JSONResponse({"error": message, "code": code}, status_code=status, headers=headers)
    html = service.pages.error(Links(request.scope.get("root_path", "")), status, message)
    return HTMLResponse(html, status_code=status, headers=headers)


def _handlers(app: FastAPI, service: Service) -> None:
    retry = {"Retry-After": str(service.settings.retry_after_s)}

    @app.exception_handler(Rejection)
    async def rejected(request: Request, exc: Rejection) -> Response:
        headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
        return _error(request, service, exc.status, str(exc), exc.code, headers)

    @app.exception_handler(AuthError)
    async def unauthorised(request: Request, exc: AuthError) -> Response:
        return _error(request, service, exc.status, str(exc), "auth", {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(DatabaseUnavailable)
    async def database_down(request: Request, exc: DatabaseUnavailable) -> Response:
        return _error(request, service, 503, f"{exc}; nothing was stored, retry later", "database", retry)

    @app.exception_handler(DBAPIError)
    async def database_error(request: Request, exc: DBAPIError) -> Response:
        if unavailable(exc):
            return _error(request, service, 503, "database unavailable; nothing was stored, retry later",
                          "database", retry)
        log.exception("database error")
        return _error(request, service, 500, "internal database error", "internal")

    @app.exception_handler(DpbenchError)
    async def bad_input(request: Request, exc: DpbenchError) -> Response:
        return _error(request, service, 422, str(exc)[:500], "invalid")

    @app.exception_handler(RequestValidationError)
    async def bad_query(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"])
        return _error(request, service, 422, f"{where}: {first['msg']}"[:300], "invalid")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(exc.status_code, "http")
        return _error(request, service, exc.status_code, str(exc.detail), code, exc.headers)

    @app.exception_handler(ClientDisconnect)
    async def disconnected(request: Request, exc: ClientDisconnect) -> Response:
        return _error(request, service, 400, "the client disconnected before sending the whole body", "truncated")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return _error(request, service, 500, "internal error", "internal")


def _pages(app: FastAPI, service: Service) -> None:
    def links(request: Request) -> Links:
        return Links(request.scope.get("root_path", ""))

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request, protocol: Short = "") -> HTMLResponse:
        boards = [{"slug": s.slug, "pool": s.pool, "pool_version": s.pool_version, "protocol": s.protocol,
                   "synthetic": s.synthetic, "tasks": len(s.tasks), "entries": e, "submissions": n}
                  for _, s, e, n in list_boards(service.db) if protocol in ("", s.protocol)]
        return HTMLResponse(service.pages.index(links(request), boards, service.accepting))

    @app.get("/boards/{slug}", response_class=HTMLResponse)
    def board_page(request: Request, slug: str, task: Tasks = None, organ: Short = "", role: Short = "",
                   sort: Short = "") -> HTMLResponse:
        board_id, spec = service.board(slug)
        filters = service.filters(spec, task or [], organ, role, sort)
        view = service.views.view(board_id, spec, filters)
        organs = sorted({t.organ for t in spec.tasks})
        roles = sorted({t.role for t in spec.tasks})
        root = links(request)
        html = service.views.rendered("html", view, lambda: service.pages.board(
            root, view, organs, roles, view.nemenyi is not None, live=True,
            siblings=siblings(service.db, spec)).encode(), root.root)
        return HTMLResponse(html)

    @app.get("/boards/{slug}/cd.png")
    def diagram(slug: str, task: Tasks = None, organ: Short = "", role: Short = "",
                sort: Short = "") -> Response:
        board_id, spec = service.board(slug)
        image = service.views.diagram(board_id, spec, service.filters(spec, task or [], organ, role, sort))
        if image is None:
            raise Rejection(404, "no_diagram", "no critical-difference diagram: it needs two ranked entries on two "
                            "tasks")
        return Response(image, media_type="image/png", headers={"Cache-Control": "no-cache"})

    @app.get("/boards/{slug}/submissions/{public_id}", response_class=HTMLResponse)
    def submission_page(request: Request, slug: str, public_id: str) -> HTMLResponse:
        detail = submission(service.db, public_id) if ID_RE.fullmatch(public_id) else None
        if detail is None or detail.board.slug != slug:
            raise Rejection(404, "not_found", f"no submission {public_id[:40]!r} on board {slug[:80]!r}")
        return HTMLResponse(service.pages.submission(links(request), detail))


def _api(app: FastAPI, service: Service) -> None:
    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        with service.db.read() as session:
            session.execute(text("SELECT 1"))
        return {"ok": True, "accepting": sorted(service.accepting)}

    @app.get("/api/v1/boards")
    def boards(protocol: Short = "") -> dict[str, Any]:
        return {"boards": [{"slug": s.slug, "pool": s.pool, "pool_version": s.pool_version, "protocol": s.protocol,
                            "splits_sha256": s.splits_sha256, "synthetic": s.synthetic, "entries": e,
                            "submissions": n, "accepting": s.slug in service.accepting,
                            "tasks": [t.name for t in s.tasks]} for _, s, e, n in list_boards(service.db)
                           if protocol in ("", s.protocol)]}

    @app.get("/api/v1/boards/{slug}")
    def board_json(slug: str, task: Tasks = None, organ: Short = "", role: Short = "",
                   sort: Short = "") -> Response:
        board_id, spec = service.board(slug)
        view = service.views.view(board_id, spec, service.filters(spec, task or [], organ, role, sort))
        return Response(service.views.rendered("json", view, lambda: json.dumps(view_json(view)).encode()),
                        media_type="application/json")

    @app.get("/api/v1/boards/{slug}/board.csv")
    def board_csv(slug: str, task: Tasks = None, organ: Short = "", role: Short = "",
                  sort: Short = "") -> Response:
        board_id, spec = service.board(slug)
        view = service.views.view(board_id, spec, service.filters(spec, task or [], organ, role, sort))
        csv = service.views.rendered("csv", view, lambda: view_csv(view).encode())
        return Response(csv, media_type="text/csv", headers={
            "Content-Disposition": f'attachment; filename="{spec.slug}.csv"'})

    @app.get("/api/v1/submissions/{public_id}")
    def submission_json(public_id: str) -> dict[str, Any]:
        detail = submission(service.db, public_id) if ID_RE.fullmatch(public_id) else None
        if detail is None:
            raise Rejection(404, "not_found", f"no submission {public_id[:40]!r}")
        entry, spec = detail.entry, detail.board
        board_id, _ = service.board(spec.slug)
        return {"id": entry.id, "board": spec.slug, "model_name": entry.model_name, "owner": entry.owner,
                "status": entry.status, "created_at": entry.created_at, "card": entry.card,
                "provenance": entry.provenance, "report": entry.report,
                "scores": [{"task": t, "seed": s, "metric": m, "score": v, "reported": r}
                           for t, s, m, v, r in entry.scores],
                "history": [h["id"] for h in detail.history], "superseded_by": detail.superseded_by,
                "standing": None if detail.superseded_by else service.rank_of(board_id, spec, entry.id)}

    @app.get("/api/v1/submissions/{public_id}/results.json")
    async def submitted_file(request: Request, public_id: str) -> Response:
        identity = await run_in_threadpool(authenticate, service.db, request.headers.get("authorization"), "read")
        found = await run_in_threadpool(raw_results, service.db, public_id) if ID_RE.fullmatch(public_id) else None
        if found is None or (found[0] != identity.owner and "admin" not in identity.scopes):
            raise Rejection(404, "not_found", f"no submission {public_id[:40]!r} of {identity.owner}")
        return Response(found[1], media_type="application/json")

    @app.post("/api/v1/submissions")
    async def submit(request: Request) -> Response:
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json":
            raise Rejection(415, "content_type", "send the submission as Content-Type: application/json")
        if request.headers.get("content-encoding", "identity").lower() not in ("", "identity"):
            raise Rejection(415, "content_encoding", "compressed request bodies are not accepted")
        identity = await run_in_threadpool(authenticate, service.db, request.headers.get("authorization"), "submit")
        key = request.headers.get("idempotency-key")
        body = await request.body()
        outcome = await run_in_threadpool(service.submit, identity, key, body)
        headers = {"Location": outcome.body["links"]["json"]} if outcome.status == 201 else {}
        if outcome.replayed:
            headers["Idempotent-Replayed"] = "true"
        return JSONResponse(outcome.body, status_code=outcome.status, headers=headers)


def create_app(service: Service) -> FastAPI:
    """The FastAPI application of ``service`` (no interactive docs: they would load assets from a CDN)."""
    app = FastAPI(title="dpbench leaderboard", docs_url=None, redoc_url=None, openapi_url="/api/v1/openapi.json")
    app.add_middleware(BodyLimit, limit=service.settings.max_body_bytes)
    app.add_middleware(SecurityHeaders)
    _handlers(app, service)
    _pages(app, service)
    _api(app, service)
    app.mount("/static", StaticFiles(directory=str(files("dpbench_leaderboard") / "static")), name="static")
    return app
