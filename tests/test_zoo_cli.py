"""``dpbench encoders list|show|fetch``, the docs table and the extraction benchmark's zoo choices."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dpbench.cli.app import app
from dpbench.cli.encoders import COLUMNS, markdown_table
from dpbench.encoders.presets import presets

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["encoders", *args])
    return result.exit_code, result.stdout, result.stderr


def test_list_formats_carry_every_preset_whole() -> None:
    names = list(presets())
    code, out, _ = invoke("list", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert [p["name"] for p in data] == names
    uni2 = next(p for p in data if p["name"] == "uni2-h")
    assert uni2["loader"]["args"]["mlp_layer"] == "SwiGLUPacked" and uni2["card"].startswith("https://")
    code, out, _ = invoke("list", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and list(rows[0]) == list(COLUMNS) and [r["name"] for r in rows] == names
    virchow2 = next(r for r in rows if r["name"] == "virchow2")
    assert (virchow2["dim"], virchow2["pooling"], virchow2["gated"]) == ("2560", "cls+mean", "yes")
    assert virchow2["mean / std"] == "(0.485, 0.456, 0.406) / (0.229, 0.224, 0.225)"
    code, out, _ = invoke("list")  # a table into a pipe: no cell cut, one line per preset
    longest = max(len(r["weights"]) for r in rows)
    assert code == 0 and any(len(r["weights"]) == longest and r["weights"] in out for r in rows)
    for name in names:
        assert sum(line.startswith(f"│ {name} ") for line in out.splitlines()) == 1


def test_list_refuses_an_unknown_format_in_one_line() -> None:
    code, _, err = invoke("list", "--format", "xml")
    assert code == 2 and "table, csv, json, markdown" in err and len(err.strip().splitlines()) == 1


def test_show_and_its_errors() -> None:
    code, out, _ = invoke("show", "gigapath")
    assert code == 0 and "256 → crop 224" in out and "timm.create_model('hf-hub:prov-gigapath/prov-gigapath'" in out
    code, out, _ = invoke("show", "hibou-l")
    assert "trust_remote_code=True" in out and "pooler" in out
    code, _, err = invoke("show", "virchow3")
    assert code == 2 and "did you mean virchow" in err


def test_fetch_offline_names_the_cache_to_fill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hf"))
    code, _, err = invoke("fetch", "virchow2", "--offline")
    assert code == 2 and str(tmp_path / "hf" / "models--paige-ai--Virchow2") in err.replace("\n", "")


def test_the_docs_table_is_the_registry() -> None:
    text = (REPO / "docs" / "encoders.md").read_text()
    table = text.split("<!-- presets:begin -->\n", 1)[1].split("<!-- presets:end -->", 1)[0]
    assert table == markdown_table(list(presets().values())), "regenerate: dpbench encoders list --format markdown"
    assert "(encoders.md)" in (REPO / "docs" / "index.md").read_text()


def test_the_throughput_benchmark_offers_the_large_vit_presets() -> None:
    script = REPO / "benchmarks" / "extract_throughput.py"
    out = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0
    for name in ("kaiko-vitl14", "hibou-l", "virchow2", "uni2-h"):
        assert name in out.stdout
