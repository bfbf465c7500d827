"""Server-rendered HTML (Jinja2, autoescaped, no CDN): the same templates serve the live board and the static export,
which differ only in how links are written (:class:`Links`)."""

from __future__ import annotations

import datetime as dt
import math
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from dpbench_leaderboard.queries import Detail
from dpbench_leaderboard.standings import Filters, View

ASSETS = ("style.css", "board.js")


def _query(filters: Filters | None) -> str:
    if filters is None:
        return ""
    pairs = [("task", t) for t in filters.tasks] + [(k, v) for k, v in (
        ("organ", filters.organ), ("role", filters.role), ("sort", filters.sort)) if v and v != "rank"]
    return "?" + urlencode(pairs) if pairs else ""


class Links:
    """URLs of the pages: absolute under ``root`` (the live service) or relative files (``static``, at ``depth``)."""

    def __init__(self, root: str = "", static: bool = False, depth: int = 0) -> None:
        self.root, self.is_static, self.depth = root.rstrip("/"), static, depth

    def at(self, depth: int) -> Links:
        return Links(self.root, self.is_static, depth)

    def _path(self, path: str) -> str:
        return "../" * self.depth + path if self.is_static else f"{self.root}/{path}"

    def home(self) -> str:
        return self._path("index.html") if self.is_static else f"{self.root}/"

    def asset(self, name: str) -> str:
        return self._path(f"static/{name}")

    def board(self, slug: str, filters: Filters | None = None) -> str:
        return self._path(f"boards/{slug}/index.html") if self.is_static else self._path(f"boards/{slug}") + _query(
            filters)

    def diagram(self, slug: str, filters: Filters | None = None) -> str:
        return self._path(f"boards/{slug}/cd.png") + ("" if self.is_static else _query(filters))

    def json(self, slug: str, filters: Filters | None = None) -> str:
        return self._path(f"boards/{slug}/board.json") if self.is_static else self._path(
            f"api/v1/boards/{slug}") + _query(filters)

    def csv(self, slug: str, filters: Filters | None = None) -> str:
        return self._path(f"boards/{slug}/board.csv") if self.is_static else self._path(
            f"api/v1/boards/{slug}/board.csv") + _query(filters)

    def submission(self, slug: str, public_id: str) -> str:
        return self._path(f"boards/{slug}/submissions/{public_id}" + (".html" if self.is_static else ""))


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _when(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _https(url: object) -> str | None:
    """``url`` when it is an https URL (links are written only for those), else None."""
    return url if isinstance(url, str) and url.startswith("https://") else None


def environment() -> Environment:
    """The Jinja2 environment: autoescape on for every template, undefined names an error."""
    env = Environment(loader=FileSystemLoader(str(files("dpbench_leaderboard") / "templates")), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=_num, when=_when, https=_https)
    return env


class Pages:
    """Renders the index, board, submission and error pages."""

    def __init__(self) -> None:
        self.env = environment()

    def index(self, links: Links, boards: list[dict[str, Any]], accepting: set[str] | None) -> str:
        return self.env.get_template("index.html").render(links=links, boards=boards, accepting=accepting,
                                                          title="Boards", synthetic=False)

    def board(self, links: Links, view: View, organs: list[str], roles: list[str], has_diagram: bool,
              live: bool, siblings: list[tuple[str, str]] | None = None) -> str:
        """The standings page; ``siblings``: (slug, protocol) of the other boards of the same pool version."""
        return self.env.get_template("board.html").render(
            links=links, view=view, spec=view.spec, filters=view.filters, organs=organs, roles=roles,
            has_diagram=has_diagram, live=live, title=view.spec.title, synthetic=view.spec.synthetic,
            siblings=siblings or [])

    def submission(self, links: Links, detail: Detail) -> str:
        entry = detail.entry
        cells: dict[str, list[tuple[int, float, float]]] = {}
        for task, seed, _metric, score, reported in entry.scores:
            cells.setdefault(task, []).append((seed, score, reported))
        return self.env.get_template("submission.html").render(
            links=links, detail=detail, entry=entry, spec=detail.board, cells=cells,
            title=f"{entry.model_name} on {detail.board.slug}", synthetic=detail.board.synthetic)

    def error(self, links: Links, status: int, message: str) -> str:
        return self.env.get_template("error.html").render(links=links, status=status, message=message,
                                                          title=f"{status}", synthetic=False)
