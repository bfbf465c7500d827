"""Thyroid FNAB cytology (Cytomine, Erasme/ULB): Diff-Quik crops of cells and cell patterns."""

from dpbench.tasks import private_sources as private
from dpbench.tasks.citations import MORMONT2018_CVPRW
from dpbench.tasks.models import Inconsistency, Source, SplitCount, SplitSizes, Task

_HOLDER = "Erasme hospital / ULB"
_PATTERN_CLASSES = ("non_proliferative", "proliferative")
_CELL_CLASSES = ("healthy", "inclusion")

SOURCE = Source(
    id="cytomine_thyroid",
    title="Thyroid fine-needle aspiration cytology dataset (ULiège Cytomine, Erasme hospital / ULB)",
    url="https://doi.org/10.1109/CVPRW.2018.00303",
    availability="private",
    licence="proprietary",
    citation=MORMONT2018_CVPRW,
    notes=private.partner_notes(_HOLDER, "Both tasks come from the same slides, so they must be left out together."),
    manual=private.manual(
        "cytomine_thyroid",
        _HOLDER,
        [("ProliferativePattern", "patterns_no_aug"), ("CellInclusion", "cells_no_aug")],
        [_PATTERN_CLASSES, _CELL_CLASSES],
    ),
    deviations=(private.split_deviation(), private.CROP_DUMP_DEVIATION),
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
        classes=_PATTERN_CLASSES,
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
        classes=_CELL_CLASSES,
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
