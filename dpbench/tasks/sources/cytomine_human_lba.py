"""HumanLba (Cytomine, Erasme/ULB): MGG-stained cells from human bronchoalveolar lavage, nine types."""

from dpbench.tasks import private_sources as private
from dpbench.tasks.citations import MORMONT2018_CVPRW
from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

_HOLDER = "Erasme hospital / ULB"

SOURCE = Source(
    id="cytomine_human_lba",
    title="Human bronchoalveolar lavage cytology dataset (ULiège Cytomine, Erasme hospital / ULB)",
    url="https://doi.org/10.1109/CVPRW.2018.00303",
    availability="private",
    licence="proprietary",
    citation=MORMONT2018_CVPRW,
    notes=private.partner_notes(_HOLDER, "The nine class names are not published."),
    manual=private.manual("cytomine_human_lba", _HOLDER, [("HumanLba", "ulb_anapath_lba")], None),
    deviations=(private.split_deviation(), private.CROP_DUMP_DEVIATION, private.UNPUBLISHED_CLASSES_DEVIATION),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="HumanLba",
        abbreviation="HuLba",
        source=SOURCE,
        origin="DET",
        organ="lung",
        stain="MGG",
        n_classes=9,
        metric="accuracy",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=4051, groups=50),
            val=SplitCount(images=346, groups=5),
            test=SplitCount(images=1023, groups=9),
        ),
        role="evaluate",
        preprocessing=(
            "Each sample is the bounding-box crop of one annotated cell, labelled with its cell type "
            "(detection annotations turned into classification); split by slide."
        ),
    ),
)
