"""BreakHis: 7,909 breast-tumour H&E images (700x460) from 82 patients at four magnifications."""

from dpbench.tasks.models import RawFile, Source, SplitCount, SplitSizes, Task

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
    size="about 4 GB",
    downloads=(
        RawFile(name="BreaKHis_v1.tar.gz", urls=("http://www.inf.ufpr.br/vri/databases/BreaKHis_v1.tar.gz",)),
    ),
    manual=(
        "Download BreaKHis_v1.tar.gz from the UFPR page and extract it. For the paper's protocol also put "
        "Folds.csv (the five official patient-wise folds: columns fold, mag, grp, filename; shipped with common "
        "copies of the dataset), or the authors' own dsfold1.txt (rows name|mag|fold|grp, read by their "
        "mkfold.py), in the source folder"
    ),
    deviations=(
        "The paper reports patient-level accuracy over the 5 official folds, per magnification; the dpbench "
        "task pools the four magnifications and uses fold 1 only (its train patients minus 10 % per class kept "
        "for validation). dpbench.convert.sources.breakhis.fold_samples rebuilds any fold and magnification.",
        "Without Folds.csv the patients are split by dpbench's grouped splitter to the ~70/10/20 target "
        "sizes of the task, which are dpbench's, not the paper's.",
        "Patient 14-13412, filed under both ductal and lobular carcinoma (123 images in each folder, apparently "
        "the same pictures), is one group; the authors' fold 1 lists its ductal folder in train and its lobular "
        "folder in test, and dpbench puts the whole patient in test (the published test list stays complete; "
        "the patient is on one side only).",
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
            "Whole 700x460 images at all four magnifications, benign vs malignant (2,480 / 5,429), grouped by "
            "patient. The paper evaluates on the 5 official patient-wise folds with patient-level accuracy; "
            "dpbench pins official fold 1 when Folds.csv is present (10 % of its train patients per class go to "
            "val), else splits patients ~70/10/20; the image counts here are those fall-back targets, not "
            "published numbers."
        ),
    ),
)
