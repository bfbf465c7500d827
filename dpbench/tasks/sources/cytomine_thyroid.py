"""Thyroid FNAB cytology (Cytomine, Erasme/ULB): Diff-Quik crops of cells and cell patterns."""

from dpbench.tasks.citations import MORMONT2018_CVPRW
from dpbench.tasks.models import Inconsistency, Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="cytomine_thyroid",
    title="Thyroid fine-needle aspiration cytology dataset (ULiège Cytomine, Erasme hospital / ULB)",
    url="https://doi.org/10.1109/CVPRW.2018.00303",
    availability="private",
    licence="proprietary",
    citation=MORMONT2018_CVPRW,
    notes=(
        "Not publicly released: the images and annotations sit in ULiège Cytomine projects of clinical "
        "partners (here Erasme hospital / ULB); the authors list only their code and models as public. "
        "The URL is the paper that describes the data. Both tasks come from the same slides, so they must "
        "be left out together."
    ),
    manual=(
        "Private data: ask the authors (ULiège, Cytomine team) and the data holders (Erasme hospital / ULB) for "
        "access. Put each task in its own folder under `--raw DIR`: `DIR/ProliferativePattern/` or "
        "`DIR/patterns_no_aug/`; `DIR/CellInclusion/` or `DIR/cells_no_aug/` (also accepted under `DIR/private/` "
        "or `DIR/cytomine_thyroid/`). Use the authors' image-folder export, "
        "`[train|val|test/]<class>/<group>_<name>.png` with class folders named "
        "`non_proliferative`/`proliferative` (ProliferativePattern) and `healthy`/`inclusion` (CellInclusion) and "
        "the slide or patient id before the first `_`, or a Cytomine Python client crop dump (pattern "
        "`{term}/{image}_{id}.png`) with a `terms.json` of term id to name, an optional `images.csv` (image id, "
        "group, optional split) and, when term names differ from the class names, a `classes.json`. Then run "
        "`dpbench build --pool mormont2020 --raw DIR`; shards of private data are marked non-redistributable."
    ),
    deviations=(
        (
            "Without the authors' train/val/test folders (or a split column in images.csv) dpbench's grouped "
            "splitter assigns the same slides to splits, which gives a split different from the paper's; with "
            "them the split is reproduced exactly."
        ),
        (
            "A Cytomine crop dump made now may differ from the authors' crops (zoom level, crop margins, "
            "annotations edited since 2018): the paper does not give its dump parameters."
        ),
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="ProliferativePattern",
        abbreviation="PrPa",
        source=SOURCE,
        origin="CLF",
        organ="thyroid",
        stain="Diff-Quik",
        n_classes=2,
        classes=("non_proliferative", "proliferative"),
        metric="roc_auc",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=1179, groups=19),
            val=SplitCount(images=167, groups=4),
            test=SplitCount(images=511, groups=13),
        ),
        role="evaluate",
        linked=("CellInclusion",),
        preprocessing=(
            "Each sample is the bounding-box crop of one annotated cell pattern, labelled proliferative "
            "or not; split by slide."
        ),
    ),
    Task(
        name="CellInclusion",
        abbreviation="CeIn",
        source=SOURCE,
        origin="CLF",
        organ="thyroid",
        stain="Diff-Quik",
        n_classes=2,
        classes=("healthy", "inclusion"),
        metric="roc_auc",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=1643, groups=21),
            val=SplitCount(images=173, groups=2),
            test=SplitCount(images=1821, groups=22),
        ),
        role="evaluate",
        linked=("ProliferativePattern",),
        preprocessing=(
            "Each sample is the bounding-box crop of one annotated cell, labelled as a cell with a nuclear "
            "inclusion or a healthy cell; split by slide."
        ),
        inconsistencies=(
            Inconsistency(
                field="sizes.train.images",
                seen=("1644 train, 3638 total (CVPRW 2018)", "1643 train, 3637 total (JBHI 2020)"),
                chosen="1643",
                why="the 2020 pool paper is the reference for this benchmark and its totals sum to 882,800",
            ),
        ),
    ),
)
