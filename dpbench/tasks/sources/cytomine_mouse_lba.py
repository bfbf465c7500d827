"""MouseLba (Cytomine, GIGA): MGG-stained cells from mouse bronchoalveolar lavage, eight cell types."""

from dpbench.tasks import private_sources as private
from dpbench.tasks.citations import MORMONT2018_CVPRW
from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

_HOLDER = "GIGA, ULiège"

SOURCE = Source(
    id="cytomine_mouse_lba",
    title="Mouse bronchoalveolar lavage cytology dataset (ULiège Cytomine, GIGA)",
    url="https://doi.org/10.1109/CVPRW.2018.00303",
    availability="private",
    licence="proprietary",
    citation=MORMONT2018_CVPRW,
    notes=private.partner_notes(_HOLDER, "The eight class names are not published."),
    manual=private.manual("cytomine_mouse_lba", _HOLDER, [("MouseLba", "ulg_lbtd_lba")], None),
    deviations=(private.split_deviation(), private.CROP_DUMP_DEVIATION, private.UNPUBLISHED_CLASSES_DEVIATION),
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
