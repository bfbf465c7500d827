"""Breast (Cytomine, CHU Liège): H&E whole-slide images with in-situ and infiltrating cancer outlines."""

from dpbench.tasks.citations import MORMONT2018_CVPRW
from dpbench.tasks.models import Inconsistency, Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="cytomine_breast",
    title="Breast cancer tissue segmentation dataset (ULiège Cytomine, CHU Liège)",
    url="https://doi.org/10.1109/CVPRW.2018.00303",
    availability="private",
    licence="proprietary",
    citation=MORMONT2018_CVPRW,
    notes=(
        "Not publicly released: the images and annotations sit in ULiège Cytomine projects of clinical "
        "partners (here CHU Liège); the authors list only their code and models as public. The URL is "
        "the paper that describes the data. Breast1 and Breast2 share slides and annotations."
    ),
    manual=(
        "Private data: ask the authors (ULiège, Cytomine team) and the data holders (CHU Liège) for access. Put "
        "each task in its own folder under `--raw DIR`: `DIR/Breast1/` or `DIR/ulg_breast/`; `DIR/Breast2/` or "
        "`DIR/ulg_breast2/` (also accepted under `DIR/private/` or `DIR/cytomine_breast/`). Use the authors' "
        "image-folder export, `[train|val|test/]<class>/<group>_<name>.png` with class folders named `other` and "
        "`cancer` and the slide or patient id before the first `_`. The folders hold the patches themselves (384 "
        "px for Breast1, 250 px for Breast2), grouped by patient. Then run `dpbench build --pool mormont2020 "
        "--raw DIR`; shards of private data are marked non-redistributable."
    ),
    deviations=(
        (
            "Without the authors' train/val/test folders dpbench's grouped splitter assigns the same patients to "
            "splits, which gives a split different from the paper's; with them the split is reproduced exactly."
        ),
        (
            "dpbench does not cut Breast1/Breast2 patches from the polygon annotations: it imports the patches "
            "already extracted (the authors' export); a crop dump of the annotations is refused."
        ),
    ),
)

_NAMING = Inconsistency(
    field="name",
    seen=(
        "Breast1 = 14,953 train+val images, Breast2 = 18,261 (evaluation-task table)",
        "Breast1 = central-pixel rule, 14,055+4,206 = 18,261 train+val (supplementary)",
    ),
    chosen="supplementary naming: Breast1 = central-pixel rule, Breast2 = area rule",
    why="the supplementary ties each name to its recipe and split sizes; the evaluation table swaps them",
)
_ORIGIN = Inconsistency(
    field="origin",
    seen=("CLF (Table I)", "SEG (supplementary transform table)"),
    chosen="SEG",
    why="patches are cut from polygon annotations and labelled by a segmentation rule",
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Breast1",
        abbreviation="Br1",
        source=SOURCE,
        origin="SEG",
        organ="breast",
        stain="H&E",
        n_classes=2,
        classes=("other", "cancer"),
        metric="roc_auc",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=14055, groups=22),
            val=SplitCount(images=4206, groups=8),
            test=SplitCount(images=4771, groups=4),
        ),
        role="evaluate",
        linked=("Breast2",),
        patch_px=384,
        preprocessing=(
            "384x384 patches labelled by the tissue type of their central pixel: 'cancer' for in situ or "
            "infiltrating carcinoma, 'other' otherwise; split by patient."
        ),
        inconsistencies=(_NAMING, _ORIGIN),
    ),
    Task(
        name="Breast2",
        abbreviation="Br2",
        source=SOURCE,
        origin="SEG",
        organ="breast",
        stain="H&E",
        n_classes=2,
        classes=("other", "cancer"),
        metric="roc_auc",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=11483, groups=22),
            val=SplitCount(images=3470, groups=8),
            test=SplitCount(images=2570, groups=4),
        ),
        role="evaluate",
        linked=("Breast1",),
        patch_px=250,
        preprocessing=(
            "Exhaustive 250x250 tiling with a 125 px overlap; 'cancer' when in situ or infiltrating "
            "carcinoma covers at least 10 % of the patch, else 'other'; split by patient."
        ),
        inconsistencies=(_NAMING, _ORIGIN),
    ),
)
