"""MouseLba (Cytomine, GIGA): MGG-stained cells from mouse bronchoalveolar lavage, eight cell types."""

from dpbench.tasks.citations import MORMONT2018_CVPRW
from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="cytomine_mouse_lba",
    title="Mouse bronchoalveolar lavage cytology dataset (ULiège Cytomine, GIGA)",
    url="https://doi.org/10.1109/CVPRW.2018.00303",
    availability="private",
    licence="proprietary",
    citation=MORMONT2018_CVPRW,
    notes=(
        "Not publicly released: the images and annotations sit in ULiège Cytomine projects of clinical "
        "partners (here GIGA, ULiège); the authors list only their code and models as public. The URL is "
        "the paper that describes the data. The eight class names are not published."
    ),
    manual=(
        "Private data: ask the authors (ULiège, Cytomine team) and the data holders (GIGA, ULiège) for access. "
        "Put each task in its own folder under `--raw DIR`: `DIR/MouseLba/` or `DIR/ulg_lbtd_lba/` (also accepted "
        "under `DIR/private/` or `DIR/cytomine_mouse_lba/`). Use the authors' image-folder export, "
        "`[train|val|test/]<class>/<group>_<name>.png` with one class folder per class (names not published; see "
        "the deviations) and the slide or patient id before the first `_`, or a Cytomine Python client crop dump "
        "(pattern `{term}/{image}_{id}.png`) with a `terms.json` of term id to name, an optional `images.csv` "
        "(image id, group, optional split) and, when term names differ from the class names, a `classes.json`. "
        "Then run `dpbench build --pool mormont2020 --raw DIR`; shards of private data are marked "
        "non-redistributable."
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
        (
            "The class names are not published: labels follow the sorted class-folder or term names (as the "
            "authors' ImageFolder-based loader sorts them), so they match the paper's class indices only with the "
            "authors' own folder names."
        ),
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="MouseLba",
        abbreviation="MoLb",
        source=SOURCE,
        origin="DET",
        organ="lung",
        stain="MGG",
        n_classes=8,
        metric="accuracy",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=1722, groups=9),
            val=SplitCount(images=716, groups=4),
            test=SplitCount(images=1846, groups=7),
        ),
        role="evaluate",
        preprocessing=(
            "Each sample is the bounding-box crop of one annotated cell, labelled with its cell type "
            "(detection annotations turned into classification); split by slide."
        ),
    ),
)
