"""Lung (Cytomine, GIGA): H&E crops of annotated lung tissue regions in ten tissue subtypes."""

from dpbench.tasks import private_sources as private
from dpbench.tasks.citations import MORMONT2018_CVPRW
from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

_HOLDER = "GIGA, ULiège"

SOURCE = Source(
    id="cytomine_lung",
    title="Lung tissue subtype dataset (ULiège Cytomine, GIGA)",
    url="https://doi.org/10.1109/CVPRW.2018.00303",
    availability="private",
    licence="proprietary",
    citation=MORMONT2018_CVPRW,
    notes=private.partner_notes(_HOLDER, "The ten class names are not published."),
    manual=private.manual("cytomine_lung", _HOLDER, [("Lung", "ulg_lbtd_tissus")], None),
    deviations=(private.split_deviation(), private.CROP_DUMP_DEVIATION, private.UNPUBLISHED_CLASSES_DEVIATION),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Lung",
        abbreviation="Lung",
        source=SOURCE,
        origin="CLF",
        organ="lung",
        stain="H&E",
        n_classes=10,
        metric="accuracy",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=4881, groups=669),
            val=SplitCount(images=562, groups=73),
            test=SplitCount(images=888, groups=139),
        ),
        role="evaluate",
        preprocessing=(
            "Each sample is the bounding-box crop of one annotated tissue region, labelled with its tissue "
            "subtype; split by slide as published."
        ),
    ),
)
