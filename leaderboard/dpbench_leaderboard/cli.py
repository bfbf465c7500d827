"""The leaderboard plug-in's commands: ``dpbench serve``, ``dpbench submit`` and ``dpbench leaderboard ...``.

Only typer, rich and the core are imported here; the service's dependencies (the ``leaderboard`` extra) load when
a command needs them, so the rest of the CLI works without them.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from dpbench.cli.support import fail, friendly
from dpbench.errors import DpbenchError
from dpbench.io import atomic_write_bytes
from dpbench.tasks.registry import get_pool, pool_tasks, pool_version

app = typer.Typer(help="Leaderboard: tokens, the static export and the registry as the board sees it.",
                  no_args_is_help=True)
token_app = typer.Typer(help="API tokens (admin): create, revoke, list.", no_args_is_help=True)
app.add_typer(token_app, name="token")
console = Console()
DATABASE = typer.Option(None, "--database", help="database URL (default: $DPBENCH_DATABASE_URL, else "
                        "sqlite:///dpbench-leaderboard.sqlite).")


def _need_extra() -> None:
    missing = [m for m in ("fastapi", "sqlalchemy", "alembic", "uvicorn", "jinja2")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise DpbenchError(f"the leaderboard service needs {', '.join(missing)}: pip install "
                           "'dpbench-pathology[leaderboard]'")


def board_tasks(pool_name: str) -> dict[str, object]:
    """The metadata the board shows for a pool: the same registry the CLI and docs use."""
    pool = get_pool(pool_name)
    return {
        "pool": pool.name, "version": pool_version(pool), "synthetic": pool.synthetic,
        "tasks": [
            {"name": t.name, "abbreviation": t.abbreviation, "metric": t.metric, "classes": list(t.class_names),
             "role": t.role, "licence": t.licence, "availability": t.availability, "linked": list(t.linked)}
            for t in pool_tasks(pool)
        ],
    }


@app.command("export-tasks")
@friendly
def export_tasks(pool: str = typer.Option("mormont2020", help="Pool to export."),
                 out: Path = typer.Option(..., help="JSON file to write.")) -> None:
    """Write the pool's task metadata as the board consumes it."""
    atomic_write_bytes(out, (json.dumps(board_tasks(pool), indent=1, sort_keys=True) + "\n").encode())
    Console().print(f"wrote {out}")


def _database(url: str | None) -> Any:
    _need_extra()
    from dpbench_leaderboard.config import database_url
    from dpbench_leaderboard.server import open_database

    return open_database(database_url(url))


@token_app.command("create")
@friendly
def token_create(owner: str = typer.Option(..., help="who the token is for (quota is counted per owner)."),
                 scope: list[str] = typer.Option(["submit"], help="submit, read (own raw submissions) or admin."),
                 days: float = typer.Option(90, help="lifetime in days."),
                 quota: int = typer.Option(10, help="accepted submissions per period (per owner)."),
                 period_hours: float = typer.Option(24, help="the quota period in hours."),
                 note: str = typer.Option("", help="a note kept with the token."),
                 database: str | None = DATABASE) -> None:
    """Create a token and print it once: only its hash is stored."""
    from dpbench_leaderboard.tokens import create_token

    new = create_token(_database(database), owner, scope, days=days, quota=quota, period_hours=period_hours,
                       note=note)
    until = dt.datetime.fromtimestamp(new.expires_at, dt.UTC).strftime("%Y-%m-%d") if new.expires_at else "never"
    console.print(f"token for {new.owner} (scopes {' '.join(new.scopes)}, id {new.prefix}, expires {until}); "
                  "it is shown only now:", highlight=False)
    print(new.secret)


@token_app.command("revoke")
@friendly
def token_revoke(prefix: str = typer.Argument(..., help="the token's id (or the token)."),
                 database: str | None = DATABASE) -> None:
    """Revoke a token: it stops working at once."""
    from dpbench_leaderboard.tokens import revoke_token

    if not revoke_token(_database(database), prefix):
        raise DpbenchError(f"no live token {prefix[:16]!r}; see dpbench leaderboard token list")
    console.print(f"revoked {prefix[:16]}")


@token_app.command("list")
@friendly
def token_list(database: str | None = DATABASE) -> None:
    """List tokens (ids, owners, scopes, quota, state; never secrets)."""
    from dpbench_leaderboard.tokens import list_tokens

    table = Table("id", "owner", "scopes", "quota", "expires", "state")
    for t in list_tokens(_database(database)):
        expires = t["expires_at"]
        when = dt.datetime.fromtimestamp(float(str(expires)), dt.UTC).strftime("%Y-%m-%d") if expires else "never"
        state = "revoked" if t["revoked_at"] else "live"
        table.add_row(str(t["prefix"]), str(t["owner"]), " ".join(map(str, t["scopes"])),  # type: ignore[call-overload]
                      f"{t['quota']}/{t['quota_period_hours']:g} h", when, state)
    console.print(table)


@app.command("export")
@friendly
def export(out: Path = typer.Argument(..., help="folder for the static site."), database: str | None = DATABASE,
           bootstrap: int = typer.Option(1000, help="bootstrap redraws of the rank intervals.")) -> None:
    """Write every board as a static site (HTML, JSON, CSV, CD diagrams) that any web server can host."""
    from dpbench_leaderboard.config import Settings, database_url
    from dpbench_leaderboard.export import export_site

    db = _database(database)
    written = export_site(db, out, Settings(database_url=database_url(database), bootstrap=bootstrap))
    console.print(f"wrote {len(written)} files under {out} (open {out / 'index.html'})")


@app.command("demo")
@friendly
def demo(results: list[Path] = typer.Argument(..., help="results.json files to submit."),
         pool: Path = typer.Option(..., help="the built pool the results were evaluated on."),
         out: Path = typer.Option(Path("dpbench-results/leaderboard"), help="folder for the database and site."),
         bootstrap: int = typer.Option(1000, help="bootstrap redraws of the rank intervals.")) -> None:
    """Start a local service on SQLite, submit RESULTS, print the board, export it as a static site, stop."""
    _need_extra()
    from dpbench_leaderboard.demo import run_demo

    run = run_demo(pool, results, out, bootstrap)
    for answer in run.results:
        console.print(f"submitted {answer.body['model_name']}: {answer.body['status']}, submission "
                      f"{answer.body['id']}", highlight=False)
    console.print(f"board: {run.url} (served while the demo ran)", highlight=False)
    table = Table("rank", "model", "status", "avg rank", "95% ranks")
    for row in run.rows[:10]:
        interval = f"{row['rank_low']}–{row['rank_high']}" if row.get("rank_low") is not None else "–"
        avg = row.get("avg_rank")
        table.add_row(f"{'=' if row.get('tied') else ''}{row['rank']}", str(row["model_name"]), str(row["status"]),
                      f"{avg:.2f}" if isinstance(avg, float) else "–", interval)
    console.print(table)
    console.print(f"static board: {run.site / 'index.html'} ({run.files} files); the service has stopped")


@app.command("migrate")
@friendly
def migrate(database: str | None = DATABASE) -> None:
    """Create or upgrade the database schema (dpbench serve also does it at start)."""
    db = _database(database)
    console.print(f"database {db!r} is at the newest schema")


@friendly
def serve(pool: Path | None = typer.Option(None, help="built pool whose test labels score submissions (verified at "
                                           "start); without it the boards are read-only."),
          database: str | None = DATABASE,
          host: str = typer.Option("127.0.0.1", help="address to listen on (put a reverse proxy in front)."),
          port: int = typer.Option(8000, help="port to listen on."),
          protocol: list[str] = typer.Option(["linear", "finetune"], help="protocols to open boards for."),
          max_body_mb: float = typer.Option(64, help="largest request body in MiB."),
          bootstrap: int = typer.Option(1000, help="bootstrap redraws of the rank intervals."),
          root_path: str = typer.Option("", help="path prefix when served under a sub-path by a proxy."),
          proxy_headers: bool = typer.Option(False, help="trust X-Forwarded-* from a proxy on 127.0.0.1.")) -> None:
    """Run the leaderboard service (FastAPI + uvicorn)."""
    _need_extra()
    from dpbench_leaderboard.config import Settings, database_url
    from dpbench_leaderboard.server import build_service, serve_forever

    settings = Settings(database_url=database_url(database), max_body_bytes=int(max_body_mb * 2**20),
                        bootstrap=bootstrap)
    service = build_service(settings, pool, tuple(protocol))
    console.print(f"serving {len(service.accepting)} open board(s) on http://{host}:{port}{root_path}/ "
                  f"(database {service.db!r})", highlight=False)
    serve_forever(service, host, port, root_path, proxy_headers)


def _print_accepted(result: Any, server: str) -> None:
    body = result.body
    what = "already stored (duplicate)" if body.get("duplicate") else "accepted"
    console.print(f"{what}: submission {body['id']} of {body['model_name']} on board {body['board']} "
                  f"[bold]{body['status']}[/]", highlight=False)
    table = Table("task", "metric", "mean", "std", "seeds", title="the board's scores")
    for t in body["tasks"]:
        table.add_row(t["task"], t["metric"], f"{t['mean']:.4f}", f"{t['std']:.4f}", str(t["n"]))
    console.print(table)
    standing = result.standing
    if standing and standing.get("rank") is not None:
        interval = (f" (95% ranks {standing['rank_low']}–{standing['rank_high']})"
                    if standing.get("rank_low") is not None else "")
        tie = "=" if standing.get("tied") else ""
        console.print(f"rank {tie}{standing['rank']} of {standing['of']}{interval}", highlight=False)
    elif standing:
        console.print(standing.get("why", "not ranked"), highlight=False)
    for d in body.get("discrepancies", []):
        console.print(f"note: {d['task']} seed {d['seed']}: you reported {d['reported']:.6f}, the board computed "
                      f"{d['verified']:.6f} and shows its own number", highlight=False)
    console.print(f"board: {server.rstrip('/')}{body['links']['board']}", highlight=False)


@friendly
def submit(results: Path = typer.Argument(..., help="results.json written by dpbench eval."),
           server: str = typer.Option(..., help="the leaderboard's URL."),
           token: str = typer.Option(..., envvar="DPBENCH_TOKEN", help="API token (or $DPBENCH_TOKEN)."),
           board: str | None = typer.Option(None, help="board slug (default: the open board of the results' pool "
                                            "version and protocol)."),
           name: str | None = typer.Option(None, help="model name on the board (default: the results' method)."),
           code_url: str | None = typer.Option(None, help="https URL of the code."),
           paper_url: str | None = typer.Option(None, help="https URL of the paper."),
           pretraining_data: str | None = typer.Option(None, help="declared pre-training data."),
           unseen_tasks: Path | None = typer.Option(None, help="JSON {task: [tasks its model never saw]} of a "
                                                    "leave-one-task-out entry."),
           retries: int = typer.Option(5, help="attempts on network errors and 502/503/504.")) -> None:
    """Submit a results file to a leaderboard; prints the verified scores and the rank, or the reason it was
    refused. Safe to retry: the same file is never stored twice."""
    from dpbench_leaderboard.client import submit as send

    unseen = json.loads(unseen_tasks.read_text()) if unseen_tasks else None
    card = {"model_name": name, "code_url": code_url, "paper_url": paper_url, "pretraining_data": pretraining_data,
            "unseen_tasks": unseen}
    result = send(results, server, token, board=board, card=card, retries=retries)
    if not result.accepted:
        code = result.body.get("code", "error")
        raise fail(f"rejected (HTTP {result.status}, {code}): {result.reason}", 1)
    _print_accepted(result, server)


def register(root: typer.Typer) -> None:
    """Entry point: attach this plug-in's commands to the ``dpbench`` CLI."""
    panel = "Leaderboard (plug-in)"
    root.add_typer(app, name="leaderboard", rich_help_panel=panel)
    root.command("serve", rich_help_panel=panel)(serve)
    root.command("submit", rich_help_panel=panel)(submit)
