"""Necrosis (Cytomine, GIGA-Cancer): IHC crops of necrosed or healthy tissue from whole-slide images."""

from dpbench.tasks.citations import MORMONT2018_CVPRW
from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="cytomine_necrosis",
    title="Necrosis dataset (ULiège Cytomine, GIGA-Cancer)",
    url="https://doi.org/10.1109/CVPRW.2018.00303",
    availability="private",
    licence="proprietary",
    citation=MORMONT2018_CVPRW,
    notes=(
        "Not publicly released: the images and annotations sit in ULiège Cytomine projects of clinical "
        "partners (here GIGA-Cancer, ULiège); the authors list only their code and models as public. The "
        "URL is the paper that describes the data. dpbench keeps the metadata and counts; the task can "
        "only be built by someone granted access."
    ),
    manual=(
        "Private data: ask the authors (ULiège, Cytomine team) and the data holders (GIGA-Cancer, ULiège) for "
        "access. Put each task in its own folder under `--raw DIR`: `DIR/Necrosis/` or "
        "`DIR/ulg_lbtd2_chimio_necrose/` (also accepted under `DIR/private/` or `DIR/cytomine_necrosis/`). Use "
        "the authors' image-folder export, `[train|val|test/]<class>/<group>_<name>.png` with class folders named "
        "`healthy` and `necrosed` and the slide or patient id before the first `_`, or a Cytomine Python client "
        "crop dump (pattern `{term}/{image}_{id}.png`) with a `terms.json` of term id to name, an optional "
        "`images.csv` (image id, group, optional split) and, when term names differ from the class names, a "
        "`classes.json`. Then run `dpbench build --pool mormont2020 --raw DIR`; shards of private data are marked "
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
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Necrosis",
        abbreviation="Nec",
        source=SOURCE,
        origin="CLF",
        organ="breast",
        stain="IHC",
        n_classes=2,
        classes=("healthy", "necrosed"),
        metric="roc_auc",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=695, groups=9),
            val=SplitCount(images=96, groups=1),
            test=SplitCount(images=91, groups=3),
        ),
        role="evaluate",
        preprocessing=(
            "Each sample is the bounding-box crop of one annotated object (necrosed or healthy tissue) "
            "in a whole-slide image; original labels kept, split by slide."
        ),
    ),
)
