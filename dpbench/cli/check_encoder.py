"""``dpbench check-encoder SPEC``: load an encoder and print its contract checks as a table."""

from __future__ import annotations

import typer
from rich.table import Table

from dpbench.cli.evaluate import BATCH_SIZE
from dpbench.cli.support import DEVICES, SPECS, console, device, fail, friendly, integer


@friendly
def check_encoder_command(
    spec: str = typer.Argument(..., help=f"Encoder spec: {SPECS}."),
    device_name: str = typer.Option("auto", "--device", help="cpu, cuda, cuda:N, mps, or auto (cuda when available).",
                                    parser=device, metavar=f"<{DEVICES}>"),
    batch: int = typer.Option(8, help="Synthetic images per batch of the contract checks.",
                              parser=integer("--batch", 1)),
    batch_size: int = typer.Option(BATCH_SIZE, help="The batch size dpbench eval will use (its --batch-size): one "
                                   "batch of it must fit in memory.", parser=integer("--batch-size", 1)),
    offline: bool = typer.Option(False, "--offline", help="No network while loading: presets need their weights "
                                 "cached (dpbench encoders fetch NAME)."),
) -> None:
    """Load an encoder and check its contract: (B, D) float output, finite, deterministic, batch-independent, and
    a batch of eval's size fits."""
    from dpbench.encoders.base import resolve_device
    from dpbench.encoders.check import check_encoder
    from dpbench.encoders.specs import load_encoder

    target = str(resolve_device(device_name))
    encoder = load_encoder(spec, offline=offline)
    checks = check_encoder(encoder, device=target, batch=batch, eval_batch=batch_size)
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
