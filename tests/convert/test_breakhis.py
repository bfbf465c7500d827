"""BreakHis converter on a tiny raw tree in the release's layout, with an official-style Folds.csv."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.convert.sources.breakhis import BreakHis, fold_samples
from dpbench.tasks.registry import get_pool, get_task

TASK = get_task("BreakHis")
BREAST = "BreaKHis_v1/histology_slides/breast"
#: (class, subtype folder, code, patient); three benign and four malignant patients.
PATIENTS = [
    ("benign", "adenosis", "A", "14-22549AB"),
    ("benign", "fibroadenoma", "F", "14-9133"),
    ("benign", "tubular_adenoma", "TA", "14-3411F"),
    ("malignant", "ductal_carcinoma", "DC", "14-2523"),
    ("malignant", "ductal_carcinoma", "DC", "14-2980"),
    ("malignant", "lobular_carcinoma", "LC", "14-12204"),
    ("malignant", "mucinous_carcinoma", "MC", "14-13418DE"),
]
#: fold 1: the last benign and last malignant patient are the test patients.
TEST_FOLD1 = {"14-3411F", "14-13418DE"}


def rel_path(cls: str, subtype: str, code: str, patient: str, mag: int, seq: int) -> str:
    c = cls[0].upper()
    return f"{BREAST}/{cls}/SOB/{subtype}/SOB_{c}_{code}_{patient}/{mag}X/SOB_{c}_{code}-{patient}-{mag}-{seq:03d}.png"


def make_raw(raw: Path, folds: bool = True) -> Path:
    base = raw / "breakhis"
    rng = np.random.default_rng(0)
    rows = ["fold,mag,grp,filename"]
    for cls, subtype, code, patient in PATIENTS:
        for mag in (40, 100):
            for seq in (1, 2):
                rel = rel_path(cls, subtype, code, patient, mag, seq)
                (base / rel).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(rng.integers(0, 255, (46, 70, 3), dtype=np.uint8)).save(base / rel)
                for fold in (1, 2):
                    test = patient in TEST_FOLD1 if fold == 1 else patient in {"14-9133", "14-2523"}
                    rows.append(f"{fold},{mag},{'test' if test else 'train'},{rel}")
    if folds:
        (base / "Folds.csv").write_text("\n".join(rows) + "\n")
    return base


def test_labels_groups_and_fold1_pins(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    conv = converter_for(TASK, tmp_path)
    samples = conv.samples()
    assert len(samples) == 7 * 2 * 2
    assert {s.group for s in samples} == {p[3] for p in PATIENTS}
    assert all(s.label == (0 if "/benign/" in s.source else 1) for s in samples)
    split_of = {s.group: s.split for s in samples}
    assert {g for g, s in split_of.items() if s == "test"} == TEST_FOLD1
    val = {g for g, s in split_of.items() if s == "val"}
    benign_train = {"14-22549AB", "14-9133"}
    malignant_train = {"14-2523", "14-2980", "14-12204"}
    assert len(val & benign_train) == 1 and len(val & malignant_train) == 1  # 10 % per class, at least one
    assert len({(s.group, s.split) for s in samples}) == 7  # a patient sits in one split
    assert converter_for(TASK, tmp_path).samples() == samples  # deterministic
    one = samples[0]
    decoded = np.asarray(Image.open(io.BytesIO(conv.image(one))))
    assert decoded.shape == (46, 70, 3) and (decoded == np.asarray(Image.open(base / one.source))).all()


def test_any_fold_and_magnification(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    fold2 = fold_samples(TASK, base, fold=2, magnification=100)
    assert len(fold2) == 7 * 2 and all("/100X/" in s.source for s in fold2)
    assert {s.group for s in fold2 if s.split == "test"} == {"14-9133", "14-2523"}
    assert {s.split for s in fold2} == {"train", "val", "test"}
    with pytest.raises(ValueError, match="folds 1-5"):
        BreakHis(TASK, base, fold=6)


def test_without_folds_nothing_is_pinned(tmp_path: Path) -> None:
    base = make_raw(tmp_path, folds=False)
    samples = converter_for(TASK, tmp_path).samples()
    assert len(samples) == 28 and all(s.split is None for s in samples)
    with pytest.raises(RawDataError, match=r"Folds\.csv not found"):
        fold_samples(TASK, base, fold=3)


def test_unlisted_and_missing_files_are_counted(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    extra = base / rel_path("benign", "adenosis", "A", "14-22549AB", 40, 9)
    Image.new("RGB", (70, 46)).save(extra)
    (base / rel_path("malignant", "lobular_carcinoma", "LC", "14-12204", 100, 2)).unlink()
    conv = converter_for(TASK, tmp_path)
    assert len(conv.samples()) == 27
    assert conv.skipped == {"not listed in Folds.csv fold 1": 1, "listed in Folds.csv fold 1 but missing on disk": 1}


@pytest.mark.parametrize(("name", "message"), [
    ("SOB_B_A-14-22549AB-100-003.png", "magnification folder"),  # says 100X, sits in 40X
    ("SOB_M_A-14-22549AB-40-003.png", "class"),
    ("SOB_B_F-14-22549AB-40-003.png", "subtype"),
    ("SOB_B_A-14-99999-40-003.png", "patient folder"),
    ("image.png", "name is not"),
])
def test_name_and_folders_must_agree(tmp_path: Path, name: str, message: str) -> None:
    base = make_raw(tmp_path, folds=False)
    folder = (base / rel_path("benign", "adenosis", "A", "14-22549AB", 40, 1)).parent
    Image.new("RGB", (70, 46)).save(folder / name)
    with pytest.raises(RawDataError, match=message) as info:
        converter_for(TASK, tmp_path).samples()
    assert name in str(info.value)


def test_bad_folds_and_folders(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    folds = base / "Folds.csv"
    text = folds.read_text()
    leak = rel_path("benign", "adenosis", "A", "14-22549AB", 100, 2)
    folds.write_text(text.replace(f"1,100,train,{leak}", f"1,100,test,{leak}"))
    with pytest.raises(RawDataError, match="14-22549AB is in both train and test"):
        converter_for(TASK, tmp_path).samples()
    folds.write_text("fold,magnification,group,file\n1,40,train,x.png\n")
    with pytest.raises(RawDataError, match="lacks the column"):
        converter_for(TASK, tmp_path).samples()
    folds.write_text(text + "one,40,train,x.png\n")
    with pytest.raises(RawDataError, match=r"Folds\.csv line"):
        converter_for(TASK, tmp_path).samples()
    folds.write_text(text)
    (base / BREAST / "benign" / "SOB" / "hamartoma").mkdir()
    with pytest.raises(RawDataError, match="hamartoma"):
        converter_for(TASK, tmp_path).samples()


def test_build_from_raw_keeps_the_fold(tmp_path: Path) -> None:
    make_raw(tmp_path / "raw")
    report = build_pool(get_pool("external"), tmp_path / "out", ["BreakHis"],
                        BuildOptions(shard_size=16, workers=1, raw=tmp_path / "raw"))
    splits = report.tasks[0].entry.splits
    assert (splits["test"].images, splits["test"].groups) == (8, 2)
    assert (splits["val"].images, splits["val"].groups) == (8, 2)
    assert (splits["train"].images, splits["train"].groups) == (12, 3)


def test_folds_header_with_spaces_reads_like_the_plain_one(tmp_path: Path) -> None:
    base = make_raw(tmp_path)
    plain = converter_for(TASK, tmp_path).samples()
    folds = base / "Folds.csv"
    folds.write_text(folds.read_text().replace("fold,mag,grp,filename", "fold, mag, grp, filename", 1))
    assert converter_for(TASK, tmp_path).samples() == plain
