"""``dpbench encoders list|show|fetch``: the encoder zoo as a table, one preset's card, weights into the caches."""

from __future__ import annotations

import csv
import io
import json
from typing import Literal

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from dpbench.cli.support import choice, console, friendly
from dpbench.encoders.presets import Preset, get_preset, presets

encoders_app = typer.Typer(help="The encoder zoo: pathology foundation models by name (dpbench eval --encoder NAME).")

Format = Literal["table", "csv", "json", "markdown"]
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
COLUMNS = ("name", "aliases", "model", "weights", "architecture", "params (M)", "dim", "input px", "mean / std",
           "interpolation", "µm/px", "pooling", "licence", "gated", "card")


def _number(value: float) -> str:
    return f"{value:g}"


def _norm(preset: Preset, short: bool) -> str:
    t = preset.transform
    if t is None:
        return "as trained"
    if short and (t.mean, t.std) == IMAGENET:
        return "ImageNet"
    if short and set(t.mean) == {0.5} and set(t.std) == {0.5}:
        return "0.5 / 0.5"
    return f"({', '.join(map(_number, t.mean))}) / ({', '.join(map(_number, t.std))})"


def weights_source(preset: Preset) -> str:
    """Where the weights come from: the hub id, the URL, the torchvision weights or the checkpoint form."""
    loader = preset.loader
    if preset.hub_id is not None:
        return preset.hub_id + ("" if preset.revision == "main" else f"@{preset.revision}")
    if loader.library == "timm" and loader.url is not None:
        return loader.url
    if loader.library == "torchvision":
        return f"torchvision {loader.model} {loader.weights}"
    return "checkpoint:PATH"


def row(preset: Preset, short: bool = True) -> dict[str, str]:
    """One preset as display strings, keyed by :data:`COLUMNS`."""
    t = preset.transform
    size = "—" if t is None else (str(t.size) if t.resize == t.size else f"{t.resize} → crop {t.size}")
    params = "—" if preset.params_m is None else f"{preset.params_m:g} ({preset.params_source})"
    return {
        "name": preset.name, "aliases": ", ".join(preset.aliases), "model": preset.title,
        "weights": weights_source(preset), "architecture": preset.architecture, "params (M)": params,
        "dim": "—" if preset.dim is None else str(preset.dim), "input px": size, "mean / std": _norm(preset, short),
        "interpolation": "—" if t is None else t.interpolation,
        "µm/px": ", ".join(map(_number, preset.um_per_px)) or "not stated", "pooling": preset.pooling,
        "licence": preset.licence, "gated": "yes" if preset.gated else "no", "card": preset.card,
    }


def markdown_table(items: list[Preset]) -> str:
    """The zoo as a Markdown table (docs/encoders.md holds this output)."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for preset in items:
        cells = row(preset)
        cells["name"] = f"`{cells['name']}`"
        cells["card"] = f"[card]({cells['card']})"
        lines.append("| " + " | ".join(cells[c].replace("|", "\\|") for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def _csv(items: list[Preset]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for preset in items:
        writer.writerow(row(preset, short=False))
    return buffer.getvalue()


@encoders_app.command("list")
@friendly
def list_command(
    format: str = typer.Option("table", "--format", parser=choice("--format", Format),
                               help="table, csv, json (every fact, with the sources) or markdown."),
) -> None:
    """List the presets: hub id, architecture, size, transform, resolution, pooling, licence and gating."""
    items = list(presets().values())
    if format == "json":
        typer.echo(json.dumps([p.model_dump(mode="json") for p in items], indent=1, ensure_ascii=False))
        return
    if format in ("csv", "markdown"):
        typer.echo(_csv(items) if format == "csv" else markdown_table(items), nl=False)
        return
    table = Table(title=f"{len(items)} encoder presets (dpbench eval --encoder NAME)")
    for column in COLUMNS:
        table.add_column(column, overflow="fold", justify="right" if column in ("dim", "params (M)") else "left")
    for preset in items:
        table.add_row(*row(preset).values())
    # A pipe or a file gets the whole table: no terminal width to wrap to, nothing cut.
    (console if console.is_terminal else Console(width=100_000, soft_wrap=True)).print(table)


def _recipe(preset: Preset) -> str:
    loader = preset.loader
    if loader.library == "timm":
        args = ", ".join(f"{k}={v!r}" for k, v in loader.args.values().items())
        target = f"'hf-hub:{preset.hub_id}'" if loader.weights == "hf-hub" else f"'{loader.arch}', url {loader.url}"
        return f"timm.create_model({target}, pretrained=True{', ' + args if args else ''})"
    if loader.library == "transformers":
        extra = "".join([f", add_pooling_layer={loader.add_pooling_layer}" if loader.add_pooling_layer is not None
                         else "", ", trust_remote_code=True" if loader.trust_remote_code else ""])
        return f"transformers.{loader.model_class}.from_pretrained('{preset.hub_id}'{extra})"
    if loader.library == "conch":
        return (f"CONCH vision tower (ViT width {loader.width}, patch {loader.patch_size}, {loader.image_size} px, "
                f"attentional pooler) from {preset.hub_id}/{loader.filename}")
    if loader.library == "torchvision":
        return f"torchvision.models.get_model('{loader.model}', weights='{loader.weights}') without its classifier"
    return loader.howto


@encoders_app.command("show")
@friendly
def show_command(name: str = typer.Argument(..., help="Preset name or alias (see dpbench encoders list).")) -> None:
    """Print one preset's card: every fact, how it loads, where its facts come from."""
    preset = get_preset(name)
    facts = row(preset, short=False)
    lines = [f"{key}: {value}" for key, value in facts.items()]
    if preset.transform is not None:
        lines.append(f"transform source: {preset.transform.source}")
    lines += [f"magnification: {preset.magnification}", f"loads with: {_recipe(preset)}"]
    if preset.notes:
        lines.append(f"notes: {preset.notes}")
    lines += [f"source: {s}" for s in preset.sources]
    if console.is_terminal:
        console.print(Panel("\n".join(lines), title=preset.title, expand=False))
    else:  # a pipe gets every line whole
        typer.echo("\n".join([preset.title, *lines]))


@encoders_app.command("fetch")
@friendly
def fetch_command(
    names: list[str] = typer.Argument(..., help="Preset names: their weights are downloaded and loaded once."),
    offline: bool = typer.Option(False, "--offline", help="No network: only check that the weights are cached."),
) -> None:
    """Download presets' weights into the usual caches (Hugging Face, torch) and check that they load."""
    from dpbench.encoders.specs import load_encoder

    for name in names:
        preset = get_preset(name)
        encoder = load_encoder(f"preset:{preset.name}", offline=offline)
        console.print(f"[green]{preset.name}[/]: D={encoder.dim}, input {encoder.input.size} px, "
                      f"fingerprint {encoder.fingerprint()[:12]}")
