"""Janowczyk tutorial use case 2: breast-cancer H&E images with epithelium segmentation masks."""

from dpbench.tasks.citations import JANOWCZYK2016_JPI
from dpbench.tasks.models import RawFile, Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="janowczyk_epithelium",
    title="Janowczyk & Madabhushi deep-learning tutorial, use case 2: epithelium segmentation",
    url="http://andrewjanowczyk.com/wp-static/epi.tgz",
    availability="public",
    licence="unknown",
    citation=JANOWCZYK2016_JPI,
    notes=(
        "Direct download of one archive from the tutorial author's site (plain http, no checksum "
        "published); no licence is stated, so derived patches are not re-hosted. 42 images, one per "
        "patient; the patient id is the file-name prefix before the first '_'. Masks are in the "
        "archive's masks/ folder."
    ),
    downloads=(
        RawFile(name="epi.tgz", urls=("https://andrewjanowczyk.com/wp-static/epi.tgz",
                                      "http://andrewjanowczyk.com/wp-static/epi.tgz")),
    ),
    deviations=(
        "Tiles are taken at the images' native resolution (the tutorial halves them first; the paper lists "
        "no rescaling, and 42 x 81 = 3,402 tiles matches its count only at native size).",
        "'stroma' is every tile under the 10 % epithelium threshold, background included: the paper "
        "describes no tissue detection for this set.",
        "The split is dpbench's grouped patient split: the paper's patient lists were not published.",
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Janowczyk2",
        abbreviation="J2",
        source=SOURCE,
        origin="SEG",
        organ="breast",
        stain="H&E",
        n_classes=2,
        classes=("stroma", "epithelium"),
        metric="roc_auc",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=1701, groups=21),
            val=SplitCount(images=405, groups=5),
            test=SplitCount(images=1296, groups=16),
        ),
        role="pretrain",
        patch_px=200,
        preprocessing=(
            "Exhaustive 200x200 tiling with a 100 px overlap; a patch is 'epithelium' when at least 10 % of "
            "its area is covered by the epithelium mask, else 'stroma' (non-epithelial tissue)."
        ),
    ),
)
