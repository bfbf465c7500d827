"""``dpbench check-encoder SPEC``: load an encoder and print its contract checks as a table."""

from __future__ import annotations

import typer
from rich.table import Table

from dpbench.cli.support import SPECS, console, fail, friendly


@friendly
def check_encoder_command(
    spec: str = typer.Argument(..., help=f"Encoder spec: {SPECS}."),
    device: str = typer.Option("auto", help="cpu, cuda, cuda:N, or auto (cuda when available)."),
    batch: int = typer.Option(8, min=1, help="Synthetic images per batch."),
) -> None:
    """Load an encoder and check its contract: (B, D) float output, finite, deterministic, batch-independent."""
    from dpbench.encoders.base import resolve_device
    from dpbench.encoders.check import check_encoder
    from dpbench.encoders.specs import load_encoder

    target = str(resolve_device(device))
    encoder = load_encoder(spec)
    checks = check_encoder(encoder, device=target, batch=batch)
    table = Table(title=f"{encoder.spec}: D={encoder.dim}, input {encoder.input.size} px, "
                        f"fingerprint {encoder.fingerprint()[:12]}")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail", overflow="fold")
    for check in checks:
        table.add_row(check.name, "[green]pass[/]" if check.passed else "[bold red]FAIL[/]", check.detail)
    console.print(table)
    failed = [c.name for c in checks if not c.passed]
    if failed:
        raise fail(f"{len(failed)} check(s) failed: {', '.join(failed)}", 1)
    console.print(f"[green]all {len(checks)} checks passed[/]")
