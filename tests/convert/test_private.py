"""Private-task importer on tiny raw trees: image-folder exports and Cytomine crop dumps."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for, locate
from dpbench.convert.sources.private import PrivateExport
from dpbench.pool.tarstream import iter_tar_samples
from dpbench.tasks.registry import get_pool, get_task

NECROSIS = get_task("Necrosis")
MOUSE = get_task("MouseLba")
BREAST1 = get_task("Breast1")
BONE = get_task("BoneMarrow")
CELLS = get_task("CellInclusion")
MOUSE_CLASSES = ["Mast", "Other", "alveolar_macrophage", "basophil", "eosinophil", "epithelial", "lymphocyte",
                 "neutrophil"]  # code-point order, as torchvision's ImageFolder sorts


def put(path: Path, seed: int = 0, size: int = 8) -> Path:
    """A tiny random RGB image at ``path`` (PNG or JPEG from the suffix)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 255, (size, size + 1, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


def export(task_dir: Path, files: dict[str, int]) -> Path:
    """Image files at the given relative paths (value = pixel seed)."""
    for rel, seed in files.items():
        put(task_dir / rel, seed)
    return task_dir


def necrosis_split_export(root: Path) -> Path:
    """Necrosis with official splits: 3 train slides, 1 val, 1 test; class folders in mixed case."""
    files: dict[str, int] = {}
    for split, slides in (("train", ["s1", "s2", "s3"]), ("val", ["s4"]), ("test", ["s5"])):
        for slide in slides:
            for folder, n in (("healthy", 2), ("Necrosed", 2)):
                for j in range(n):
                    files[f"{split}/{folder}/{slide}_{folder.lower()}{j}.png"] = len(files)
    put(root / "train" / "healthy" / "s1_x.jpg", 99)  # a JPEG among PNGs
    return export(root, files)


def samples_of(task_name: str, raw: Path) -> tuple[PrivateExport, list[tuple[str, str, int, str | None]]]:
    conv = converter_for(get_task(task_name), raw)
    assert isinstance(conv, PrivateExport)
    return conv, [(s.source, s.group, s.label, s.split) for s in conv.samples()]


# -- image-folder export ------------------------------------------------------------------------------------
def test_image_folder_with_official_splits_under_the_internal_name(tmp_path: Path) -> None:
    folder = necrosis_split_export(tmp_path / "ulg_lbtd2_chimio_necrose")
    assert locate(NECROSIS, tmp_path) == folder
    conv, found = samples_of("Necrosis", tmp_path)
    assert len(found) == 5 * 4 + 1
    by_source = {src: (group, label, split) for src, group, label, split in found}
    assert by_source["train/healthy/s1_healthy0.png"] == ("s1", 0, "train")
    assert by_source["val/Necrosed/s4_necrosed1.png"] == ("s4", 1, "val")
    assert by_source["test/Necrosed/s5_necrosed0.png"] == ("s5", 1, "test")
    assert {g for _, g, _, s in found if s == "train"} == {"s1", "s2", "s3"}
    assert conv.labels == {"healthy": 0, "Necrosed": 1}
    jpeg = next(s for s in conv.samples() if s.source.endswith(".jpg"))
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(jpeg))))
    assert decoded.shape == (8, 9, 3)
    assert (decoded == np.asarray(Image.open(folder / jpeg.source).convert("RGB"))).all()
    again = converter_for(NECROSIS, tmp_path).samples()
    assert again == conv.samples()  # deterministic


def test_unpublished_class_names_take_sorted_folder_order(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    files = {f"{name}/slide{j % 3}_{name}{j}.png": j for name in reversed(MOUSE_CLASSES) for j in range(3)}
    export(tmp_path / "private" / "MouseLba", files)
    with caplog.at_level(logging.WARNING, logger="dpbench.convert"):
        conv, found = samples_of("MouseLba", tmp_path)
    assert conv.labels == {name: i for i, name in enumerate(MOUSE_CLASSES)}
    assert all(src.split("/")[0] == MOUSE_CLASSES[label] for src, _, label, _ in found)  # provenance
    assert {g for _, g, _, _ in found} == {"slide0", "slide1", "slide2"}
    assert all(split is None for *_, split in found)
    assert "Mast=0" in caplog.text and "neutrophil=7" in caplog.text


def test_wrong_number_of_unnamed_class_folders_is_an_error(tmp_path: Path) -> None:
    export(tmp_path / "MouseLba", {f"{name}/s_{name}.png": 0 for name in MOUSE_CLASSES[:7]})
    with pytest.raises(RawDataError, match=r"7 class folders .* MouseLba has 8 classes"):
        converter_for(MOUSE, tmp_path).samples()


def test_unknown_class_folder_is_an_error_naming_it(tmp_path: Path) -> None:
    export(tmp_path / "Necrosis", {"healthy/a_1.png": 0, "necrosed/a_2.png": 1, "tumour/a_3.png": 2})
    with pytest.raises(RawDataError, match=r"Necrosis/tumour: unknown class folder 'tumour'"):
        converter_for(NECROSIS, tmp_path).samples()


def test_file_name_without_group_prefix_is_an_error(tmp_path: Path) -> None:
    export(tmp_path / "Necrosis", {"healthy/a_1.png": 0, "necrosed/nogroup.png": 1})
    with pytest.raises(RawDataError, match=r"necrosed/nogroup.png: the file name has no group prefix"):
        converter_for(NECROSIS, tmp_path).samples()


def test_split_folders_mixed_with_class_folders_is_an_error(tmp_path: Path) -> None:
    export(tmp_path / "Necrosis", {"train/healthy/a_1.png": 0, "necrosed/b_1.png": 1})
    with pytest.raises(RawDataError, match=r"Necrosis/necrosed is a class folder next to split folders"):
        converter_for(NECROSIS, tmp_path).samples()


def test_group_in_two_splits_is_leakage(tmp_path: Path) -> None:
    export(tmp_path / "Necrosis", {"train/healthy/s7_1.png": 0, "test/necrosed/s7_2.png": 1,
                                   "test/healthy/s8_1.png": 2})
    with pytest.raises(RawDataError, match=r"group 's7' is in both (train|test)"):
        converter_for(NECROSIS, tmp_path).samples()


def test_stray_files_are_skipped_and_counted(tmp_path: Path) -> None:
    root = export(tmp_path / "Necrosis", {"healthy/a_1.png": 0, "necrosed/b_1.png": 1,
                                          "healthy/deeper/c_1.png": 2})
    (root / "healthy" / ".DS_Store").write_bytes(b"x")
    (root / "necrosed" / "notes.txt").write_text("x")
    (root / "README.md").write_text("x")
    conv = converter_for(NECROSIS, tmp_path)
    assert len(conv.samples()) == 2
    assert conv.skipped == {"hidden file": 1, "not an image file": 1, "nested folder inside a class folder": 1,
                            "file outside the class folders": 1}


def test_classes_json_maps_and_leaves_out_folders(tmp_path: Path) -> None:
    root = export(tmp_path / "Necrosis", {"sain/a_1.png": 0, "necrose/a_2.png": 1, "artefact/a_3.png": 2,
                                          "necrose/b_1.png": 3})
    (root / "classes.json").write_text(json.dumps({"Sain": "healthy", "necrose": 1, "artefact": None}))
    conv, found = samples_of("Necrosis", tmp_path)
    assert sorted((src, label) for src, _, label, _ in found) == [("necrose/a_2.png", 1), ("necrose/b_1.png", 1),
                                                                  ("sain/a_1.png", 0)]
    assert conv.skipped == {"class folder left out by classes.json": 1}
    (root / "other").mkdir()
    put(root / "other" / "c_1.png")
    with pytest.raises(RawDataError, match=r"Necrosis/other: class folder 'other' is not in .*classes.json"):
        converter_for(NECROSIS, tmp_path).samples()
    (root / "classes.json").write_text(json.dumps({"sain": "healthy", "necrose": "tumour"}))
    with pytest.raises(RawDataError, match="maps to unknown class 'tumour'"):
        converter_for(NECROSIS, tmp_path).samples()


# -- Cytomine crop dumps ------------------------------------------------------------------------------------
PATTERN_TERMS = [{"id": 101, "name": "Papillary"}, {"id": 102, "name": "Microfollicular"},
                 {"id": 103, "name": "Normal follicular"}, {"id": 104, "name": "Artifact"}]


def patterns_dump(root: Path) -> Path:
    """ProliferativePattern crops of images 11, 12 (slide A) and 13 (slide B), with multi-term and term-less
    crops; term names mapped to classes by classes.json (by name, or by term id)."""
    export(root, {
        "101/11_1.png": 1, "102/11_1.png": 1,       # two terms of one class: merged
        "101/11_2.jpg": 2, "103/11_2.jpg": 2,       # terms of different classes: skipped
        "103/12_3.png": 3, "102/12_4.png": 4, "103/13_5.png": 5, "101/13_6.png": 6,
        "104/13_7.png": 7,                          # left out by classes.json
        "None/12_8.png": 8,                         # no term
    })
    (root / "terms.json").write_text(json.dumps(PATTERN_TERMS))
    (root / "images.csv").write_text("image,slide,name\n11,A,a.ndpi\n12,A,b.ndpi\n13,B,c.ndpi\n")
    (root / "classes.json").write_text(json.dumps({"Papillary": "proliferative", "microfollicular": "proliferative",
                                                   "103": "non_proliferative", "artifact": None}))
    return root


def test_cytomine_dump_terms_groups_and_multi_term_annotations(tmp_path: Path) -> None:
    patterns_dump(tmp_path / "patterns_no_aug")
    conv, found = samples_of("ProliferativePattern", tmp_path)
    assert conv.form == "cytomine"
    assert sorted(found) == [("101/11_1.png", "A", 1, None), ("101/13_6.png", "B", 1, None),
                             ("102/12_4.png", "A", 1, None), ("103/12_3.png", "A", 0, None),
                             ("103/13_5.png", "B", 0, None)]
    assert [s.key for s in conv.samples()] == ["11_1", "12_3", "12_4", "13_5", "13_6"]
    assert conv.skipped == {"annotation with terms of different classes": 1, "annotation without a term": 1,
                            "annotation whose terms are left out by classes.json": 1,
                            "extra copy of an annotation with several terms": 1}
    assert locate(CELLS, tmp_path) is None  # each task of a two-task source has its own folder


def test_breast_refuses_a_crop_dump(tmp_path: Path) -> None:
    patterns_dump(tmp_path / "Breast1")
    with pytest.raises(RawDataError, match=r"Breast1 is made of 384 px patches .* supply the patch export"):
        converter_for(BREAST1, tmp_path).samples()


def test_cytomine_unpublished_classes_sorted_by_term_name_and_image_groups(tmp_path: Path) -> None:
    root = tmp_path / "bone_marrow"
    names = ["myelocyte", "band", "blast", "erythroblast", "metamyelocyte", "normoblast", "promyelocyte",
             "segmented"]
    files = {f"{900 + i}/{50 + j}_{i}{j}.png": i * 10 + j for i in range(8) for j in range(2)}
    export(root, files)
    (root / "terms.csv").write_text("id,name,color\n" + "".join(f"{900 + i},{n},#fff\n" for i, n in enumerate(names)))
    assert locate(BONE, tmp_path) == root  # a single-task source's folder is the task folder
    conv, found = samples_of("BoneMarrow", tmp_path)
    ordered = sorted(names)
    assert conv.labels == {str(900 + i): ordered.index(n) for i, n in enumerate(names)}
    assert {g for _, g, _, _ in found} == {"50", "51"}  # default group: the image id
    assert len(found) == 16


def test_cytomine_splits_from_folders_and_images_csv(tmp_path: Path) -> None:
    root = export(tmp_path / "Necrosis", {"train/7/1_1.png": 0, "train/8/1_2.png": 1, "test/7/2_3.png": 2,
                                          "test/8/3_4.png": 3})
    (root / "terms.json").write_text(json.dumps({"7": "Healthy", "8": "Necrosed"}))
    (root / "images.csv").write_text("image,slide,split\n1,S1,train\n2,S2,\n3,S2,test\n")
    _, found = samples_of("Necrosis", tmp_path)
    assert sorted(found) == [("test/7/2_3.png", "S2", 0, "test"), ("test/8/3_4.png", "S2", 1, "test"),
                             ("train/7/1_1.png", "S1", 0, "train"), ("train/8/1_2.png", "S1", 1, "train")]
    (root / "images.csv").write_text("image,slide,split\n1,S1,val\n2,S2,\n3,S2,test\n")
    with pytest.raises(RawDataError, match=r"train/7/1_1.png sits in train/ but .*images.csv puts image 1 in val"):
        converter_for(NECROSIS, tmp_path).samples()
    (root / "images.csv").write_text("image,slide,split\n1,S1,train\n2,S1,\n3,S2,test\n")
    with pytest.raises(RawDataError, match=r"group 'S1' is in both"):
        converter_for(NECROSIS, tmp_path).samples()


def test_cytomine_metadata_errors_name_the_file(tmp_path: Path) -> None:
    root = export(tmp_path / "Necrosis", {"7/1_1.png": 0, "8/2_2.png": 1})
    (root / "terms.json").write_text(json.dumps({"7": "healthy"}))
    with pytest.raises(RawDataError, match=r"Necrosis/8: term id 8 is not in .*terms.json"):
        converter_for(NECROSIS, tmp_path).samples()
    (root / "terms.json").write_text(json.dumps({"7": "healthy", "8": "necrosed"}))
    (root / "images.csv").write_text("image,group\n1,S1\n")
    with pytest.raises(RawDataError, match=r"images.csv: image 2 \(of .*8/2_2.png\) is not listed"):
        converter_for(NECROSIS, tmp_path).samples()
    (root / "images.csv").write_text("id,colour\n1,red\n")
    with pytest.raises(RawDataError, match=r"images.csv needs a header row"):
        converter_for(NECROSIS, tmp_path).samples()
    (root / "images.csv").unlink()
    (root / "terms.json").write_text("{not json")
    with pytest.raises(RawDataError, match=r"cannot read .*terms.json"):
        converter_for(NECROSIS, tmp_path).samples()
    (root / "terms.json").write_text(json.dumps({"7": "healthy", "8": "mitosis"}))
    with pytest.raises(RawDataError, match=r"Necrosis/8: unknown term 'mitosis'"):
        converter_for(NECROSIS, tmp_path).samples()


# -- locating -----------------------------------------------------------------------------------------------
def test_locate_search_order_and_ambiguity(tmp_path: Path) -> None:
    assert locate(CELLS, tmp_path) is None
    (tmp_path / "cytomine_thyroid" / "healthy").mkdir(parents=True)
    assert locate(CELLS, tmp_path) is None  # a two-task source folder is not a task folder
    nested = tmp_path / "private" / "cytomine_thyroid" / "cells_no_aug"
    nested.mkdir(parents=True)
    assert locate(CELLS, tmp_path) == nested
    (tmp_path / "cellinclusion").mkdir()
    with pytest.raises(RawDataError, match="CellInclusion: raw data found twice"):
        locate(CELLS, tmp_path)
    (tmp_path / "ulg_breast").mkdir()
    (tmp_path / "private" / "ULG_BREAST2").mkdir(parents=True)
    assert locate(BREAST1, tmp_path) == tmp_path / "ulg_breast"
    assert locate(get_task("Breast2"), tmp_path) == tmp_path / "private" / "ULG_BREAST2"
    (tmp_path / "cytomine_necrosis").mkdir()
    assert locate(NECROSIS, tmp_path) == tmp_path / "cytomine_necrosis"
    (tmp_path / "cytomine_necrosis" / "Necrosis").mkdir()
    assert locate(NECROSIS, tmp_path) == tmp_path / "cytomine_necrosis" / "Necrosis"


# -- building -----------------------------------------------------------------------------------------------
def test_build_necrosis_keeps_official_splits_and_marks_private_licence(tmp_path: Path) -> None:
    necrosis_split_export(tmp_path / "raw" / "Necrosis")
    report = build_pool(get_pool("mormont2020"), tmp_path / "out", ["Necrosis"],
                        BuildOptions(raw=tmp_path / "raw", workers=1, shard_size=16))
    entry = report.tasks[0].entry
    assert entry.name == "Necrosis" and not entry.redistributable
    assert {name: s.images for name, s in entry.splits.items()} == {"train": 13, "val": 4, "test": 4}
    records = [json.loads(parts["json"]) for shard in sorted((tmp_path / "out" / "Necrosis").glob("*.tar"))
               for _, parts in iter_tar_samples(shard)]
    assert len(records) == 21
    assert all(r["licence"] == "proprietary" and r["redistributable"] is False for r in records)
    assert all(r["source"].split("/")[0] == r["split"] for r in records)  # the authors' split, exactly
    assert all(r["source_id"] == "cytomine_necrosis" for r in records)
