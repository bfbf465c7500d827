"""Lung (Cytomine, GIGA): H&E crops of annotated lung tissue regions in ten tissue subtypes."""

from dpbench.tasks.citations import MORMONT2018_CVPRW
from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="cytomine_lung",
    title="Lung tissue subtype dataset (ULiège Cytomine, GIGA)",
    url="https://doi.org/10.1109/CVPRW.2018.00303",
    availability="private",
    licence="proprietary",
    citation=MORMONT2018_CVPRW,
    notes=(
        "Not publicly released: the images and annotations sit in ULiège Cytomine projects of clinical "
        "partners (here GIGA, ULiège); the authors list only their code and models as public. The URL is "
        "the paper that describes the data. The ten class names are not published."
    ),
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
