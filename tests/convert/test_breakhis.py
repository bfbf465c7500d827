"""BreakHis converter on a tiny raw tree in the release's layout, with an official-style Folds.csv, and on the
release's real tree: the 7,663 image names of ``fixtures/breakhis/names_without_14-13412.txt`` (from
``dataset/BreaKHis_v1/mysplit.csv`` of GitHub lizbaka/BreakHis-exp at commit 632217ff) plus patient 14-13412's two
folders, with the two rows of the authors' ``dsfold1.txt`` quoted by oleksandr-kardash/synthetic-cancer-cell-
image-generation (``fixtures/breakhis/dsfold1_quoted_rows.txt``). The other fold-1 rows are stand-ins (the fold
files are not public in full); pixels are stand-ins."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dpbench.build import BuildOptions, build_pool
from dpbench.convert import RawDataError, converter_for
from dpbench.convert.base import ids_across_splits
from dpbench.convert.sources.breakhis import PATIENT, BreakHis, fold_samples
from dpbench.pool.splits import SplitManifest
from dpbench.pool.verify import verify_pool
from dpbench.tasks.registry import get_pool, get_task

TASK = get_task("BreakHis")
BREAST = "BreaKHis_v1/histology_slides/breast"
FIXTURES = Path(__file__).parent / "fixtures" / "breakhis"
FOLDERS = {"A": "benign/SOB/adenosis", "F": "benign/SOB/fibroadenoma", "PT": "benign/SOB/phyllodes_tumor",
           "TA": "benign/SOB/tubular_adenoma", "DC": "malignant/SOB/ductal_carcinoma",
           "LC": "malignant/SOB/lobular_carcinoma", "MC": "malignant/SOB/mucinous_carcinoma",
           "PC": "malignant/SOB/papillary_carcinoma"}
#: Images of 14-13412 per magnification in each of its two folders: the release's published per-class counts
#: (DC 864/903/896/788, LC 156/170/163/137) minus those of the 80-folder list (DC 832/870/864/762, LC 124/137/131/111).
SHARED_COUNTS = {40: 32, 100: 33, 200: 32, 400: 26}
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
    with pytest.raises(RawDataError, match=r"Folds\.csv \(or dsfold3\.txt\) not found"):
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


def path_of(name: str) -> str:
    """Where the release keeps image ``name`` (the rule of the authors' mkfold.py)."""
    head, year, pid, mag, _ = name.split("-")
    return f"{BREAST}/{FOLDERS[head.split('_')[-1]]}/{head}_{year}-{pid}/{mag}X/{name}"


def real_names() -> list[str]:
    """The 7,909 image names of the release: the 80-folder list plus 14-13412's ductal and lobular folders."""
    names = (FIXTURES / "names_without_14-13412.txt").read_text().split()
    shared = [f"SOB_M_{t}-14-13412-{mag}-{seq:03d}.png" for t in ("DC", "LC")
              for mag, n in SHARED_COUNTS.items() for seq in range(1, n + 1)]
    return sorted(names + shared)


def stand_in_fold1(names: list[str]) -> str:
    """A dsfold1.txt: the two quoted rows verbatim, 14-13412's other images like them (ductal train, lobular test),
    and a stand-in for everyone else (every third patient folder of each subtype in test)."""
    quoted = (FIXTURES / "dsfold1_quoted_rows.txt").read_text().splitlines()
    by_name = {row.split("|")[0]: row for row in quoted}
    folders = sorted({n.rsplit("-", 2)[0] for n in names if "13412" not in n})
    test = {f for i, f in enumerate(sorted(folders, key=lambda f: (f.split("-")[0], f))) if i % 3 == 2}
    rows = []
    for name in names:
        folder, mag = name.rsplit("-", 2)[0], name.split("-")[3]
        grp = ("test" if "_LC-" in name else "train") if "13412" in name else ("test" if folder in test else "train")
        rows.append(by_name.get(name, f"{name}|{mag}|1|{grp}"))
    assert all(row in rows for row in quoted)
    return "\n".join(rows) + "\n"


def make_real_raw(raw: Path) -> Path:
    """The real tree (7,909 files, each a 4x2 stand-in PNG) with the stand-in dsfold1.txt."""
    base = raw / "breakhis"
    png = io.BytesIO()
    Image.new("RGB", (4, 2), (210, 150, 200)).save(png, format="PNG")
    names = real_names()
    for name in names:
        path = base / path_of(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png.getvalue())
    (base / "dsfold1.txt").write_text(stand_in_fold1(names))
    return base


@pytest.fixture(scope="module")
def real_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A raw root holding the real tree (:func:`make_real_raw`); do not modify."""
    raw = tmp_path_factory.mktemp("breakhis-real")
    make_real_raw(raw)
    return raw


def test_real_tree_82_folders_81_patients_and_the_shared_patient(real_raw: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    breast = real_raw / "breakhis" / BREAST
    assert len(list(breast.glob("*/SOB/*/SOB_*"))) == 82
    with caplog.at_level(logging.WARNING, logger="dpbench.convert"):
        samples = converter_for(TASK, real_raw).samples()
    assert len(samples) == 7909 and sum(s.label for s in samples) == 5429  # 2,480 benign, 5,429 malignant
    assert len({s.group for s in samples}) == 81
    shared = [s for s in samples if s.group == "14-13412"]
    assert len(shared) == 246 and {s.split for s in shared} == {"test"}  # one group, both folders, in test
    assert "14-13412" in caplog.text and "123 moved from train" in caplog.text
    split_of = {s.key: s.split or "" for s in samples}
    assert ids_across_splits(samples, PATIENT, split_of) == {}
    assert {s.split for s in samples} == {"train", "val", "test"}


def test_real_tree_builds_the_official_fold_and_verifies(real_raw: Path, tmp_path: Path) -> None:
    report = build_pool(get_pool("external"), tmp_path / "out", ["BreakHis"],
                        BuildOptions(shard_size=4000, workers=1, raw=real_raw))
    entry = report.tasks[0].entry
    assert sum(s.images for s in entry.splits.values()) == 7909
    assert sum(s.groups or 0 for s in entry.splits.values()) == 81
    assert verify_pool(tmp_path / "out", decode=False)[1] == []
    split = SplitManifest.model_validate_json((tmp_path / "out" / "BreakHis" / "split.json").read_bytes())
    assert split.groups["14-13412"] == "test"
    listed = dict(row.split("|")[0::3] for row in (real_raw / "breakhis" / "dsfold1.txt").read_text().split())
    assert all(split.samples[name[:-4]] == "test" for name, grp in listed.items() if grp == "test")
    assert all(split.samples[name[:-4]] in ("train", "val") for name, grp in listed.items()
               if grp == "train" and "13412" not in name)


def test_a_patient_in_train_and_test_other_than_the_known_one_is_still_an_error(tmp_path: Path) -> None:
    base = make_raw(tmp_path, folds=False)
    rows = [f"{Path(p).name}|{p.split('/')[-2][:-1]}|1|{'test' if '-40-' in p else 'train'}"
            for p in sorted(str(q.relative_to(base)) for q in base.rglob("*.png"))]
    (base / "dsfold1.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(RawDataError, match=r"patient 14-\S+ is in both train and test of fold 1"):
        converter_for(TASK, tmp_path).samples()
    (base / "dsfold1.txt").write_text("SOB_B_A-14-22549AB-40-001.png,40,1,train\n")
    with pytest.raises(RawDataError, match=r"dsfold1\.txt line 1: expected"):
        converter_for(TASK, tmp_path).samples()
