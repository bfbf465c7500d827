"""Janowczyk tutorial use case 5: breast-cancer H&E high-power fields with mitosis centre annotations."""

from dpbench.tasks.citations import JANOWCZYK2016_JPI
from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="janowczyk_mitosis",
    title="Janowczyk & Madabhushi deep-learning tutorial, use case 5: mitosis detection",
    url="http://www.andrewjanowczyk.com/use-case-5-mitosis-detection/",
    availability="public",
    licence="unknown",
    citation=JANOWCZYK2016_JPI,
    notes=(
        "Tutorial page of the author (URL and archive name not confirmed from a stored copy: check before "
        "use); no licence is stated, so derived patches are not re-hosted. Files are named PP_NN.tif with "
        "PP the two-digit patient id; 12 patients, one of which (10) has no mitosis."
    ),
    manual=(
        "Download the mitosis data linked from http://www.andrewjanowczyk.com/use-case-5-mitosis-detection/ "
        "(the archive name is not confirmed, so dpbench does not fetch it) and extract it under "
        "`<raw>/janowczyk_mitosis/` so that the `PP_NN.tif` fields and their `PP_NN_pc.png` mitosis-centre "
        "masks lie there (any sub-folder)."
    ),
    deviations=(
        "The paper gives no overlap for the mitosis-free tiles: dpbench uses 50 px (stride 200) plus a last "
        "row/column flush with the edge, so 'no_mitosis' counts may differ from the paper's.",
        "Mitoses are the centroids of the connected components of each `_pc.png` mask; a field without a mask "
        "is taken as mitosis-free.",
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Janowczyk5",
        abbreviation="J5",
        source=SOURCE,
        origin="DET",
        organ="breast",
        stain="H&E",
        n_classes=2,
        classes=("no_mitosis", "mitosis"),
        metric="roc_auc",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=16560, groups=7),
            val=SplitCount(images=4551, groups=2),
            test=SplitCount(images=3759, groups=3),
        ),
        role="pretrain",
        patch_px=250,
        preprocessing=(
            "250x250 patches: 10 randomly shifted patches around each annotated mitosis ('mitosis'); "
            "mitosis-free tiles taken exhaustively with overlap ('no_mitosis')."
        ),
    ),
)
