"""Evaluate encoders on your own data: task cards from a class-folder tree, a table and annotated slides, built,
evaluated and ranked like registry tasks but under their own names, in their own pool (docs/own-data.md)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from dpbench.build import BuildOptions
from dpbench.build.cards import build_cards
from dpbench.convert.annotations import parse_geojson, read_regions
from dpbench.convert.imaging import read_rgb
from dpbench.encoders import Encoder, load_encoder
from dpbench.errors import DpbenchError
from dpbench.evaluation.finetune import FinetuneConfig
from dpbench.evaluation.report import render_report
from dpbench.evaluation.run import EvalConfig, evaluate
from dpbench.pool.built import BuiltPool
from dpbench.pool.verify import verify_pool
from dpbench.ranking.table import read_scores
from dpbench.results import load_results
from dpbench.tasks.cards import load_card
from tests.conftest import REALDATA, run_cli, tree_bytes

REAL = REALDATA / "openslide_skimage_sources"
OPTIONS = BuildOptions(shard_size=16, workers=1)
needs_realdata = pytest.mark.skipif(not (REAL / "he" / "cmu_small_region.svs").is_file(),
                                    reason="../shared/realdata is absent")


def edit(card: Path, **changes: object) -> None:
    """Change fields of a card as a user would in an editor."""
    fields = yaml.safe_load(card.read_text())
    fields.update(changes)
    card.write_text(yaml.safe_dump(fields, sort_keys=False))


def random64(spec: str = "random") -> Encoder:
    encoder = load_encoder(spec)
    return dataclasses.replace(encoder, input=dataclasses.replace(encoder.input, size=64))


# -- the data a user brings ------------------------------------------------------------------------------
def real_patch_tree(root: Path) -> None:
    """H&E vs IHC: 64 px patches cut from five real crops, in ``<class>/<crop>-<half>/`` folders (one group per
    half of a crop: an annotated region, so split_unit region)."""
    crops = {"he": ["he/cmu_small_region.svs", "he/OS-1-detail.ome.tif"],
             "ihc": ["ihc/ihc.png", "ihc/OS-2-ndpi.ome.tif", "ihc/OS-2-vsi.ome.tif"]}
    for cls, files in crops.items():
        for name in files:
            pixels = read_rgb(REAL / name)
            h, w = pixels.shape[:2]
            if name.endswith(".svs"):  # the tissue column of the skin section
                pixels, h, w = pixels[900:2900, 1000:1500], 2000, 500
            for half in (0, 1):
                folder = root / cls / f"{Path(name).name.split('.')[0]}-{half}"
                folder.mkdir(parents=True)
                for i in range(4):
                    y = half * h // 2 + (i + 1) * (h // 2 - 64) // 5
                    x = (i + 1) * (w - 64) // 5
                    Image.fromarray(pixels[y:y + 64, x:x + 64]).save(folder / f"patch{i}.png")


def geojson(boxes: dict[str, list[tuple[int, int, int, int]]]) -> str:
    """A QuPath GeoJSON export of rectangles per class (level-0 pixels)."""
    features = [{"type": "Feature", "id": f"{cls}-{i}",
                 "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
                 "properties": {"objectType": "annotation", "classification": {"name": cls, "color": [0, 0, 0]}}}
                for cls, rects in boxes.items() for i, (x0, y0, x1, y1) in enumerate(rects)]
    return json.dumps({"type": "FeatureCollection", "features": features})


#: Tissue and glass outlined on the real skin section cmu_small_region.svs (2220x2967 px at 0.499 µm/px).
SKIN = {"tissue": [(920, 800, 1200, 1200), (800, 1800, 1120, 2240), (680, 2400, 1040, 2880), (1360, 1920, 1680, 2400)],
        "background": [(40, 1280, 480, 1760), (40, 2000, 480, 2480), (80, 80, 600, 720), (1920, 720, 2200, 1160)]}


def synthetic_tree(root: Path, groups: int = 4, per_group: int = 3, classes: tuple[str, ...] = ("a", "b")) -> None:
    """Small coloured PNGs in ``<class>/<group>/`` folders (one hue per class)."""
    rng = np.random.default_rng(0)
    for k, cls in enumerate(classes):
        for g in range(groups):
            folder = root / cls / f"case{g}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_group):
                base = np.array([180 - 60 * k, 60 + 50 * k, 150], dtype=float)
                pixels = np.clip(base + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"img{i}.png")


def folder_card(root: Path, **fields: object) -> Path:
    card = root / "task.yaml"
    card.write_text(yaml.safe_dump({"name": "Hues", "classes": ["a", "b"], "split_unit": "patient", "stain": "H&E",
                                    "data": {"kind": "folders"}, **fields}))
    return card


# -- the walk-through -------------------------------------------------------------------------------------
@needs_realdata
def test_walkthrough_from_a_folder_and_a_slide_to_a_ranking(tmp_path: Path) -> None:
    # 1. H&E vs IHC patches in class folders: dpbench drafts the card, the user names the task and pool.
    patches = tmp_path / "he-vs-ihc"
    real_patch_tree(patches)
    init = run_cli("tasks", "init", str(patches))
    assert init.returncode == 0, init.stderr
    assert "class he: 4 group sub-folder(s)" in init.stdout and "class ihc: 6" in init.stdout
    stain_card = patches / "task.yaml"
    assert load_card(stain_card).classes == ("he", "ihc")
    edit(stain_card, name="HeVsIhc", pool="mylab", split_unit="region", stain="multiple", um_per_px=0.5,
         description="H&E or IHC? patches of five real crops")

    # 2. Tissue vs glass on a real slide, outlined in QuPath and exported as GeoJSON beside it.
    slides = tmp_path / "slides"
    slides.mkdir()
    os.symlink(REAL / "he" / "cmu_small_region.svs", slides / "cmu_small_region.svs")  # the data stay in place
    (slides / "cmu_small_region.geojson").write_text(geojson(SKIN))
    init = run_cli("tasks", "init", str(slides), "--name", "SkinTissue")
    assert init.returncode == 0, init.stderr
    assert "fewer than 3 slides" in init.stdout
    tissue_card = slides / "task.yaml"
    drafted = load_card(tissue_card)
    assert drafted.classes == ("background", "tissue") and drafted.data.kind == "slides"
    assert drafted.split_unit == "region" and drafted.data.background == ("background",)
    edit(tissue_card, pool="mylab", um_per_px=1.0, patch_px=64, organ="other", organ_other="skin")

    # 3. Both cards build into one pool of the user's own, versioned by the cards and their splits.
    pool = tmp_path / "pool"
    build = run_cli("build", "--task", str(stain_card), "--task", str(tissue_card), "--out", str(pool),
                    "--shard-size", "32", "--workers", "1")
    assert build.returncode == 0, build.stderr
    assert "your own pool mylab" in build.stdout and "dpbench eval --data" in build.stdout
    manifest = BuiltPool(pool).manifest
    assert manifest.pool == "mylab" and [t.name for t in manifest.tasks] == ["HeVsIhc", "SkinTissue"]
    skin = manifest.task("SkinTissue")
    assert skin.classes == ["background", "tissue"] and skin.split_unit == "region"
    assert all(skin.splits[s].images > 0 for s in ("train", "val", "test")) and not skin.missing_classes
    assert (pool / "SkinTissue" / "card.json").is_file() and verify_pool(pool)[1] == []
    listing = run_cli("tasks", "--data", str(pool))
    assert listing.returncode == 0 and "HeVsIhc" in listing.stdout and "SkinTissue" in listing.stdout
    assert "skin" in listing.stdout and "not dpbench benchmark tasks" in listing.stdout

    # 4. Evaluate two encoders from the built pool alone, then rank them.
    for spec, out in (("random", "rnd"), ("torchvision:resnet18", "r18")):
        result = run_cli("eval", "--pool", "mylab", "--data", str(pool), "--encoder", spec, "--input-size", "64",
                         "--out", str(tmp_path / out))
        assert result.returncode == 0, result.stderr
        assert "HeVsIhc" in result.stdout and "SkinTissue" in result.stdout
    results = load_results(tmp_path / "r18" / "results.json")
    prov = results.provenance
    assert prov.pool == "mylab" and prov.pool_version == manifest.pool_version and not prov.synthetic
    assert prov.tasks["SkinTissue"].defined_by == "card" and prov.tasks["SkinTissue"].card is not None
    assert prov.tasks["SkinTissue"].card["organ_other"] == "skin" and "data" not in prov.tasks["SkinTissue"].card
    assert {s.task: s.metric for s in results.scores} == {"HeVsIhc": "roc_auc", "SkinTissue": "roc_auc"}
    report = (tmp_path / "r18" / "report.html").read_text()
    assert "your own task cards" in report and "<th>tissue</th>" in report
    ranked = run_cli("rank", str(tmp_path / "rnd" / "results.json"), str(tmp_path / "r18" / "results.json"),
                     "--bootstrap", "50")
    assert ranked.returncode == 0, ranked.stderr
    assert "ranking over 2 task(s)" in ranked.stdout and "torchvision:resnet18" in ranked.stdout


# -- the three data forms ---------------------------------------------------------------------------------
def test_table_forms_take_groups_and_splits_from_columns(tmp_path: Path) -> None:
    synthetic_tree(tmp_path / "img", groups=5)
    rows = []
    for path in sorted((tmp_path / "img").rglob("*.png")):
        cls, case = path.parent.parent.name, path.parent.name
        # file names carry a misleading prefix: groups come from the column, never from names
        renamed = path.with_name(f"P0-{case}-{path.name}")
        path.rename(renamed)
        rows.append({"path": renamed.relative_to(tmp_path).as_posix(), "label": cls, "group": case,
                     "split": "test" if case == "case4" else ""})
    pd.DataFrame(rows).to_csv(tmp_path / "images.csv", index=False)
    pd.DataFrame(rows).to_parquet(tmp_path / "images.parquet")
    for table in ("images.csv", "images.parquet"):
        card = tmp_path / f"{table}.yaml"
        card.write_text(yaml.safe_dump({"name": "Table", "classes": ["a", "b"], "split_unit": "patient",
                                        "stain": "IHC", "split": {"column": "split"},
                                        "data": {"kind": "table", "path": table}}))
        report = build_cards([card], tmp_path / f"pool-{table}", OPTIONS)
        entry = report.manifest.tasks[0]
        split = json.loads((tmp_path / f"pool-{table}" / "Table" / "split.json").read_text())
        assert split["groups"]["case4"] == "test" and set(split["groups"]) == {f"case{i}" for i in range(5)}
        assert entry.splits["test"].groups == 1 and sum(e.images for e in entry.splits.values()) == 30
    shards = [{k: v for k, v in tree_bytes(tmp_path / f"pool-{t}").items() if k.endswith((".tar", "split.json"))}
              for t in ("images.csv", "images.parquet")]
    assert shards[0] == shards[1] and len(shards[0]) > 3  # the same samples, whichever table format


def test_folder_task_evaluates_with_both_protocols_from_the_pool_alone(tmp_path: Path) -> None:
    synthetic_tree(tmp_path / "data", classes=("a", "b", "c"))
    card = folder_card(tmp_path / "data", classes=["a", "b", "c"], licence="CC-BY-4.0")
    pool = tmp_path / "pool"
    build_cards([card], pool, OPTIONS)
    linear = evaluate(random64(), pool, None, EvalConfig(), tmp_path / "lin")
    assert linear.scores[0].task == "Hues" and linear.scores[0].metric == "accuracy"
    assert linear.provenance.tasks["Hues"].classes == ["a", "b", "c"]
    assert "<th>c</th>" in render_report(linear)
    tuned = evaluate(random64(), pool, None, EvalConfig(protocol="finetune", finetune=FinetuneConfig(
        lrs=(1e-3,), epochs=1, batch_size=8, max_batches=1)), tmp_path / "ft", name="random-ft")
    assert tuned.scores[0].selected["lr"] == 1e-3
    table = read_scores([tmp_path / "lin" / "results.json", tmp_path / "ft" / "results.json"])
    assert table.methods == ["random", "random-ft"] and table.tasks == ["Hues"]


def test_builds_are_byte_identical_and_cards_are_verified(tmp_path: Path) -> None:
    synthetic_tree(tmp_path / "data")
    card = folder_card(tmp_path / "data")
    first = build_cards([card], tmp_path / "one", OPTIONS)
    build_cards([card], tmp_path / "two", BuildOptions(shard_size=16, workers=2))  # in worker processes
    assert tree_bytes(tmp_path / "one") == tree_bytes(tmp_path / "two")
    assert first.manifest.pool == "custom-hues"
    edit(card, description="same data, another card")
    assert build_cards([card], tmp_path / "three", OPTIONS).manifest.pool_version != first.manifest.pool_version
    refused = run_cli("publish", str(tmp_path / "one"), "--to", str(tmp_path / "shipped"))
    lines = [line for line in refused.stderr.splitlines() if line.strip()]
    assert refused.returncode == 2 and len(lines) == 1 and "built from task cards" in lines[0], refused.stderr
    assert "--task CARD" in lines[0] and not (tmp_path / "shipped").exists()
    stored = tmp_path / "one" / "Hues" / "card.json"
    stored.write_text(stored.read_text().replace('"proprietary"', '"CC0-1.0"'))  # a licence edited after the build
    assert any("a card was edited" in p.what for p in verify_pool(tmp_path / "one")[1])
    with pytest.raises(DpbenchError, match="a card was edited after the build"):
        evaluate(random64(), tmp_path / "one", None, EvalConfig(), tmp_path / "res")


# -- refusals: the reason and the fix ---------------------------------------------------------------------
def test_too_few_groups_names_the_minimum(tmp_path: Path) -> None:
    synthetic_tree(tmp_path / "data", groups=2)
    card = folder_card(tmp_path / "data")
    with pytest.raises(DpbenchError, match=r"come from 2 patient\(s\).*at least 3 patients of every class"):
        build_cards([card], tmp_path / "pool", OPTIONS)
    edit(card, split={"fractions": {"train": 0.5, "val": 0, "test": 0.5}})
    assert build_cards([card], tmp_path / "pool", OPTIONS).manifest.tasks[0].splits["val"].images == 0


def test_class_absent_from_a_prescribed_split_is_refused(tmp_path: Path) -> None:
    synthetic_tree(tmp_path / "img", groups=3)
    rows = [{"path": p.relative_to(tmp_path).as_posix(), "label": p.parent.parent.name,
             "group": f"{p.parent.parent.name}{p.parent.name}",
             "split": "test" if p.parent.parent.name == "a" and p.parent.name == "case2" else ""}
            for p in sorted((tmp_path / "img").rglob("*.png"))]
    pd.DataFrame(rows).to_csv(tmp_path / "t.csv", index=False)
    card = tmp_path / "t.yaml"
    card.write_text(yaml.safe_dump({"name": "T", "classes": ["a", "b"], "split_unit": "slide", "stain": "H&E",
                                    "split": {"column": "split"}, "data": {"kind": "table", "path": "t.csv"}}))
    with pytest.raises(DpbenchError, match="class 'b' has no images in the test split"):
        build_cards([card], tmp_path / "pool", OPTIONS)


@pytest.mark.parametrize(("damage", "needle"), [
    ("unknown_class", r"label\(s\) 'c' .* not classes of the card \(a, b\); add them to classes"),
    ("unreadable", r"cannot read image .*broken\.png .*fix, convert or remove it"),
    ("loose_image", r"lies directly in its class folder.*move it to"),
    ("unknown_field", r"unknown field 'clases'; did you mean classes\?"),
    ("organ", r"organ: Input should be .*use organ: other with organ_other"),
    ("registry_name", r"task name 'Necrosis' is a dpbench registry task"),
])
def test_bad_input_is_one_clear_error(tmp_path: Path, damage: str, needle: str) -> None:
    synthetic_tree(tmp_path / "data", groups=3)
    card = folder_card(tmp_path / "data")
    if damage == "unknown_class":
        synthetic_tree(tmp_path / "data", groups=3, classes=("c",))
    elif damage == "unreadable":
        (tmp_path / "data" / "a" / "case0" / "broken.png").write_bytes(b"not a png")
    elif damage == "loose_image":
        Image.new("RGB", (32, 32)).save(tmp_path / "data" / "b" / "loose.png")
    elif damage == "unknown_field":
        card.write_text(card.read_text().replace("classes:", "clases:"))
    elif damage == "organ":
        edit(card, organ="skin")
    else:
        edit(card, name="Necrosis")
    with pytest.raises(DpbenchError, match=needle):
        build_cards([card], tmp_path / "pool", OPTIONS)


def test_cli_refusal_is_one_line(tmp_path: Path) -> None:
    synthetic_tree(tmp_path / "data", groups=1)
    card = folder_card(tmp_path / "data")
    result = run_cli("build", "--task", str(card), "--out", str(tmp_path / "pool"), "--workers", "1")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and "at least 3 patients" in lines[0], result.stderr


# -- annotations ------------------------------------------------------------------------------------------
def test_qupath_geojson_and_asap_xml_regions(tmp_path: Path) -> None:
    document = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "MultiPolygon", "coordinates": [
            [[[0, 0], [10, 0], [10, 10], [0, 0]]],
            [[[20, 20], [40, 20], [40, 40], [20, 40]], [[25, 25], [30, 25], [30, 30]]]]},
         "properties": {"objectType": "annotation", "name": "t1", "classification": {"name": "Tumor"}}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [1, 1]},
         "properties": {"classification": {"name": "Tumor"}}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [5, 5]]]},
         "properties": {"objectType": "detection", "classification": {"name": "Tumor"}}},
        {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [5, 0], [5, 5]]]},
         "properties": {"objectType": "annotation"}}]}
    regions, skips = parse_geojson(json.dumps(document).encode(), "x.geojson")
    assert [r.name for r in regions] == ["t1/0", "t1/1"] and regions[1].label == "Tumor"
    assert len(regions[1].holes) == 1 and regions[1].outer.shape == (4, 2)
    assert sorted(reason.split(" (")[0] for reason, _ in skips) == [
        "QuPath detection, not an annotation", "annotation without a class", "annotation without an area"]
    xml = tmp_path / "s.xml"
    xml.write_text('<ASAP_Annotations><Annotations><Annotation Name="a" PartOfGroup="stroma" Type="Polygon">'
                   '<Coordinates><Coordinate Order="0" X="1" Y="1"/><Coordinate Order="1" X="9" Y="1"/>'
                   '<Coordinate Order="2" X="9" Y="9"/></Coordinates></Annotation></Annotations></ASAP_Annotations>')
    regions, skips = read_regions(xml)
    assert [(r.label, len(r.outer)) for r in regions] == [("stroma", 3)] and not skips
    with pytest.raises(DpbenchError, match="not a GeoJSON FeatureCollection"):
        parse_geojson(b'{"type": "Polygon"}', "bad.geojson")


@needs_realdata
def test_a_single_slide_split_by_slide_is_refused_before_eval(tmp_path: Path) -> None:
    """The pilot that used to build with a note and crash at eval: one slide cannot fill three splits by slide."""
    notes = tmp_path / "asap"
    notes.mkdir()
    boxes = [(cls, box) for cls, rects in SKIN.items() for box in rects[:2]]
    xml = "".join(f'<Annotation Name="{cls}{i}" PartOfGroup="{cls}" Type="Polygon"><Coordinates>'
                  + "".join(f'<Coordinate Order="{j}" X="{x}" Y="{y}"/>'
                            for j, (x, y) in enumerate([(x0, y0), (x1, y0), (x1, y1), (x0, y1)]))
                  + "</Coordinates></Annotation>" for i, (cls, (x0, y0, x1, y1)) in enumerate(boxes))
    document = f"<ASAP_Annotations><Annotations>{xml}</Annotations></ASAP_Annotations>"
    (notes / "cmu_small_region.xml").write_text(document)
    card = tmp_path / "pilot.yaml"
    card.write_text(yaml.safe_dump({
        "name": "Pilot", "classes": ["tissue", "background"], "split_unit": "slide", "stain": "H&E",
        "um_per_px": 2.0, "patch_px": 32, "data": {"kind": "slides", "path": str(REAL / "he"),
                                                   "annotations": "asap", "background": ["background"]}}))
    with pytest.raises(DpbenchError, match=r"come from 1 slide\(s\).*needs at least 3 slides of every class"):
        build_cards([card], tmp_path / "pool", OPTIONS)
