"""Janowczyk tutorial use case 6: 50x50 px breast H&E patches labelled invasive ductal carcinoma or not."""

from dpbench.tasks.citations import JANOWCZYK2016_JPI
from dpbench.tasks.models import RawFile, Source, SplitCount, SplitSizes, Task

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
        "first used by Cruz-Roa et al. (SPIE 2014). The author also ships train/val/test case lists "
        "(fetched with the archive). Third-party code reports the zip's sha256 as 55022d403bb3b738ef5df518e"
        "62a11d6de52daddaf3850e05134e669133b51c9 (unverified, so not pinned)."
    ),
    downloads=(
        RawFile(name="IDC_regular_ps50_idx5.zip",
                urls=("https://andrewjanowczyk.com/wp-static/IDC_regular_ps50_idx5.zip",
                      "http://andrewjanowczyk.com/wp-static/IDC_regular_ps50_idx5.zip")),
        *(RawFile(name=f"cases_{split}.txt", extract=False, urls=tuple(
            f"https://raw.githubusercontent.com/choosehappy/public/{ref}/DL%20tutorial%20Code/6-idc/cases_{split}.txt"
            for ref in ("8560e48bc5eaf41b349d203f6ac0a2b7d9be1b67", "master")))
          for split in ("train", "val", "test")),
    ),
    deviations=(
        "The split is the tutorial author's official case lists (84 train, 29 val, 49 test patients), "
        "not the paper's unpublished 230/29/20 patient split; the 117 patient folders in no list go to "
        "train, giving 201/29/49 patients.",
        "Border patches smaller than 50x50 px are kept as published (the paper's 277,524 counts them).",
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
