"""Janowczyk tutorial use case 1: ER+ breast-cancer H&E regions with partial nucleus segmentation masks."""

from dpbench.tasks.citations import JANOWCZYK2016_JPI
from dpbench.tasks.models import RawFile, Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="janowczyk_nuclei",
    title="Janowczyk & Madabhushi deep-learning tutorial, use case 1: nuclei segmentation",
    url="http://andrewjanowczyk.com/wp-static/nuclei.tgz",
    availability="public",
    licence="unknown",
    citation=JANOWCZYK2016_JPI,
    notes=(
        "Direct download of one archive from the tutorial author's site (plain http, no checksum "
        "published); no licence is stated, so derived patches are not re-hosted. The patient id is the "
        "file-name prefix before the first '_'. Annotation is partial: unmarked nuclei exist."
    ),
    downloads=(
        RawFile(name="nuclei.tgz", urls=("https://andrewjanowczyk.com/wp-static/nuclei.tgz",
                                         "http://andrewjanowczyk.com/wp-static/nuclei.tgz")),
    ),
    deviations=(
        "The archive holds 143 images of 2000x2000 px, i.e. 143 x 225 = 32,175 tiles; the paper reports "
        "31,725 = 141 x 225 without saying which two images it left out, so dpbench keeps all of them.",
        "The split is dpbench's grouped patient split: the paper's patient lists were not published.",
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Janowczyk1",
        abbreviation="J1",
        source=SOURCE,
        origin="SEG",
        organ="breast",
        stain="H&E",
        n_classes=2,
        classes=("background", "nucleus"),
        metric="roc_auc",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=17550, groups=77),
            val=SplitCount(images=4500, groups=19),
            test=SplitCount(images=9675, groups=41),
        ),
        role="pretrain",
        patch_px=250,
        preprocessing=(
            "Exhaustive 250x250 tiling with a 125 px overlap; a patch is 'nucleus' when at least 5 % of its "
            "area is covered by the nucleus mask, else 'background'."
        ),
    ),
)
