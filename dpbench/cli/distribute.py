"""``dpbench publish`` and ``dpbench download``: ship a built pool, and get one, verified."""

from __future__ import annotations

from pathlib import Path

import typer

from dpbench.cli.support import console, friendly


@friendly
def publish_command(
    root: Path = typer.Argument(..., help="A built pool (dpbench build --out)."),
    to: str = typer.Option(..., "--to", help="Folder for the publishable copy, or hf://ORG/NAME to upload it to "
                                             "that Hugging Face dataset repository (HF_TOKEN or `hf auth login`)."),
    tasks: list[str] | None = typer.Option(None, "--tasks", help="Only these tasks (repeatable)."),
    force_licence: list[str] | None = typer.Option(
        None, "--force-licence", help="Publish this restricted task anyway (you hold the rights; repeatable)."),
) -> None:
    """Write shards, manifest.json and a Hugging Face dataset card (README.md) ready to upload, or upload them."""
    from dpbench.transport.publish import hub_repo, publish_pool, publish_to_hub

    repo = hub_repo(to)
    uploaded = publish_to_hub(root, repo, tasks, force_licence) if repo else None
    report = uploaded.published if uploaded else publish_pool(root, Path(to), tasks, force_licence)
    for name in report.forced:
        console.print(f"[yellow]published under --force-licence:[/] {name}")
    where = (f"hf://{uploaded.repo} ({uploaded.commit_url})" if uploaded
             else f"{to} (upload the folder as a dataset repo; see docs/download.md)")
    console.print(f"published {len(report.tasks)} task(s), {report.files} files, {report.bytes / 1e6:.1f} MB "
                  f"of shards → {where}")


@friendly
def download_command(
    pool: str = typer.Option(..., help="Pool to download (must match the mirror's manifest)."),
    out: Path = typer.Option(Path("dpbench-data"), help="Local folder; files already verified there are kept."),
    tasks: list[str] | None = typer.Option(None, "--tasks", help="Only these tasks (repeatable)."),
    mirror: list[str] | None = typer.Option(
        None, "--mirror", help="https://, file:// or a local path (repeatable; tried in order). "
                               "Default: $DPBENCH_MIRRORS, then the pool's mirrors."),
    offline: bool = typer.Option(False, help="Use only what is already in --out; no network."),
    workers: int = typer.Option(4, help="Parallel transfers."),
    retries: int = typer.Option(4, help="Retries per file on each mirror before failing over to the next."),
    trust_mirror: bool = typer.Option(
        False, "--trust-mirror", help="Accept a pool version whose manifest this dpbench does not pin (a mirror you "
                                      "control); a pinned version is always checked against its pin."),
) -> None:
    """Download a pool's shards from mirrors: resumable, verified by sha256, atomic, with failover; the mirror's
    manifest must be the one this dpbench pins for the pool version."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from dpbench.tasks.registry import get_pool
    from dpbench.transport.download import download_pool, resolve_mirrors

    chosen = get_pool(pool)
    mirrors = [] if offline and not mirror else resolve_mirrors(mirror or [], chosen.default_mirrors)
    with Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=console) as bar:
        overall = bar.add_task("download", total=None)
        seen: dict[str, int] = {}

        def on_progress(name: str, done: int, total: int) -> None:
            seen[name] = done
            bar.update(overall, completed=sum(seen.values()), description=name)

        report = download_pool(out, mirrors, tasks, offline=offline, workers=workers, retries=retries,
                               expected_pool=chosen.name, progress=on_progress, trust_mirror=trust_mirror)
    for warning in report.warnings:
        console.print(f"[bold yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    console.print(f"{out}: {len(report.fetched)} file(s) fetched ({report.bytes_fetched / 1e6:.1f} MB), "
                  f"{len(report.reused)} already verified, in {report.seconds:.1f} s; check any time with "
                  f"dpbench verify {out}")
