"""Janowczyk tutorial use case 1: ER+ breast-cancer H&E regions with partial nucleus segmentation masks."""

from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="janowczyk_nuclei",
    title="Janowczyk & Madabhushi deep-learning tutorial, use case 1: nuclei segmentation",
    url="http://andrewjanowczyk.com/wp-static/nuclei.tgz",
    availability="public",
    licence="unknown",
    citation=r"""@article{janowczyk2016deep,
  title = {Deep learning for digital pathology image analysis: A comprehensive tutorial with selected
           use cases},
  author = {Janowczyk, Andrew and Madabhushi, Anant},
  journal = {Journal of Pathology Informatics},
  volume = {7},
  number = {1},
  pages = {29},
  year = {2016},
  doi = {10.4103/2153-3539.186902}
}""",
    notes=(
        "Direct download of one archive from the tutorial author's site (plain http, no checksum "
        "published); no licence is stated, so derived patches are not re-hosted. The patient id is the "
        "file-name prefix before the first '_'. Annotation is partial: unmarked nuclei exist."
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Janowczyk1",
        abbreviation="J1",
        source=SOURCE,
        origin="SEG",
        organ="breast",
        stain="H&E",
        n_classes=2,
        classes=("background", "nucleus"),
        metric="roc_auc",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=17550, groups=77),
            val=SplitCount(images=4500, groups=19),
            test=SplitCount(images=9675, groups=41),
        ),
        role="pretrain",
        patch_px=250,
        preprocessing=(
            "Exhaustive 250x250 tiling with a 125 px overlap; a patch is 'nucleus' when at least 5 % of its "
            "area is covered by the nucleus mask, else 'background'."
        ),
    ),
)
