"""Necrosis (Cytomine, GIGA-Cancer): IHC crops of necrosed or healthy tissue from whole-slide images."""

from dpbench.tasks import private_sources as private
from dpbench.tasks.citations import MORMONT2018_CVPRW
from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

_HOLDER = "GIGA-Cancer, ULiège"
_CLASSES = ("healthy", "necrosed")

SOURCE = Source(
    id="cytomine_necrosis",
    title="Necrosis dataset (ULiège Cytomine, GIGA-Cancer)",
    url="https://doi.org/10.1109/CVPRW.2018.00303",
    availability="private",
    licence="proprietary",
    citation=MORMONT2018_CVPRW,
    notes=private.partner_notes(_HOLDER, "dpbench keeps the metadata and counts; the task can only be built by someone "
                        "granted access."),
    manual=private.manual("cytomine_necrosis", _HOLDER, [("Necrosis", "ulg_lbtd2_chimio_necrose")], [_CLASSES]),
    deviations=(private.split_deviation(), private.CROP_DUMP_DEVIATION),
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
        classes=_CLASSES,
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
