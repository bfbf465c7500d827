"""BreakHis: 7,909 breast-tumour H&E images (700x460) from 82 patients at four magnifications."""

from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="breakhis",
    title="BreakHis: Breast Cancer Histopathological Image Classification database",
    url="https://web.inf.ufpr.br/vri/databases/breast-cancer-histopathological-database-breakhis/",
    availability="public",
    licence="CC-BY-4.0",
    citation=r"""@article{spanhol2016dataset,
  title = {A Dataset for Breast Cancer Histopathological Image Classification},
  author = {Spanhol, Fabio A and Oliveira, Luiz S and Petitjean, Caroline and Heutte, Laurent},
  journal = {IEEE Transactions on Biomedical Engineering},
  volume = {63},
  number = {7},
  pages = {1455--1462},
  year = {2016},
  doi = {10.1109/TBME.2015.2496264}
}""",
    notes=(
        "Direct tarball (BreaKHis_v1.tar.gz, about 4 GB, plain http) from the UFPR page; CC BY 4.0 as "
        "reported by third-party loaders, not yet confirmed at the source. A request form may apply. "
        "Labels, subtype, patient and magnification are encoded in the folder and file names."
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="BreakHis",
        abbreviation="BrHis",
        source=SOURCE,
        origin="CLF",
        organ="breast",
        stain="H&E",
        n_classes=2,
        classes=("benign", "malignant"),
        metric="roc_auc",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=5536, groups=57),
            val=SplitCount(images=791, groups=8),
            test=SplitCount(images=1582, groups=17),
        ),
        role="external",
        preprocessing=(
            "Whole 700x460 images at all four magnifications, benign vs malignant (2,480 / 5,429). The "
            "paper evaluates on the 5 official patient-wise folds with patient-level accuracy; the fixed "
            "~70/10/20 patient split here is dpbench's choice, not the paper's, and its image counts are "
            "targets that a patient-disjoint split approximates."
        ),
    ),
)
