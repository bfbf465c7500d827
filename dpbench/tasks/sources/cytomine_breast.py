"""Breast (Cytomine, CHU Liège): H&E whole-slide images with in-situ and infiltrating cancer outlines."""

from dpbench.tasks import private_sources as private
from dpbench.tasks.citations import MORMONT2018_CVPRW
from dpbench.tasks.models import Inconsistency, Source, SplitCount, SplitSizes, Task

_HOLDER = "CHU Liège"
_CLASSES = ("other", "cancer")

SOURCE = Source(
    id="cytomine_breast",
    title="Breast cancer tissue segmentation dataset (ULiège Cytomine, CHU Liège)",
    url="https://doi.org/10.1109/CVPRW.2018.00303",
    availability="private",
    licence="proprietary",
    citation=MORMONT2018_CVPRW,
    notes=private.partner_notes(_HOLDER, "Breast1 and Breast2 share slides and annotations."),
    manual=private.manual(
        "cytomine_breast",
        _HOLDER,
        [("Breast1", "ulg_breast"), ("Breast2", "ulg_breast2")],
        [_CLASSES, _CLASSES],
        crop_dumps=False,
        note="The folders hold the patches themselves (384 px for Breast1, 250 px for Breast2), grouped by patient.",
    ),
    deviations=(
        private.split_deviation("patients", crop_dumps=False),
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
        classes=_CLASSES,
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
        classes=_CLASSES,
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
