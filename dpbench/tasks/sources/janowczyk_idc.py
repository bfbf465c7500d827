"""Janowczyk tutorial use case 6: 50x50 px breast H&E patches labelled invasive ductal carcinoma or not."""

from dpbench.tasks.citations import JANOWCZYK2016_JPI
from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="janowczyk_idc",
    title="Janowczyk & Madabhushi deep-learning tutorial, use case 6: invasive ductal carcinoma (IDC)",
    url="http://andrewjanowczyk.com/wp-static/IDC_regular_ps50_idx5.zip",
    availability="public",
    licence="unknown",
    citation=JANOWCZYK2016_JPI,
    notes=(
        "Direct download of one zip from the tutorial author's site; a Kaggle mirror calls it public "
        "domain, but the original states no licence, so 'unknown' is kept and patches are not re-hosted. "
        "277,524 PNG patches (198,738 IDC-, 78,786 IDC+) in <patient>/<0|1>/ folders; the data were "
        "first used by Cruz-Roa et al. (SPIE 2014). The author also ships train/val/test case lists."
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Janowczyk6",
        abbreviation="J6",
        source=SOURCE,
        origin="CLF",
        organ="breast",
        stain="H&E",
        n_classes=2,
        classes=("IDC-", "IDC+"),
        metric="roc_auc",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=224822, groups=230),
            val=SplitCount(images=31934, groups=29),
            test=SplitCount(images=20768, groups=20),
        ),
        role="pretrain",
        patch_px=50,
        preprocessing=(
            "The original 50x50 patches and labels are kept as they are; grouped by patient folder "
            "(279 folders, although the source describes 162 slides)."
        ),
    ),
)
