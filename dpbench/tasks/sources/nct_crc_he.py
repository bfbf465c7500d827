"""NCT-CRC-HE-100K + CRC-VAL-HE-7K (Kather et al. 2018/2019): 107,180 colorectal H&E tiles in nine classes."""

from dpbench.tasks.models import RawFile, Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="nct_crc_he",
    title="100,000 histological images of human colorectal cancer and healthy tissue (NCT-CRC-HE-100K, "
          "CRC-VAL-HE-7K)",
    url="https://zenodo.org/records/1214456",
    availability="public",
    licence="CC-BY-4.0",
    citation=r"""@article{kather2019predicting,
  title = {Predicting survival from colorectal cancer histology slides using deep learning:
           A retrospective multicenter study},
  author = {Kather, Jakob Nikolas and Krisam, Johannes and Charoentong, Pornpimol and Luedde, Tom
            and Herpel, Esther and Weis, Cleo-Aron and Gaiser, Timo and Marx, Alexander
            and Valous, Nektarios A. and Ferber, Dyke and Jansen, Lina and Reyes-Aldasoro, Constantino Carlos
            and Z{\"o}rnig, Inka and J{\"a}ger, Dirk and Brenner, Hermann and Chang-Claude, Jenny
            and Hoffmeister, Michael and Halama, Niels},
  journal = {PLOS Medicine},
  volume = {16},
  number = {1},
  pages = {e1002730},
  year = {2019},
  doi = {10.1371/journal.pmed.1002730}
}""",
    notes=(
        "Zenodo record doi:10.5281/zenodo.1214456, direct downloads, CC BY 4.0 (attribution required). "
        "224x224 px TIFF tiles at 0.5 um/px, Macenko colour-normalised, one folder per class. NCT-CRC-HE-100K "
        "comes from 86 slides, CRC-VAL-HE-7K from 50 other patients; neither release carries patient or "
        "slide ids. The unnormalised NCT-CRC-HE-100K-NONORM archive of the same record is not used."
    ),
    size="11.7 GB + 800 MB",
    downloads=(
        RawFile(name="NCT-CRC-HE-100K.zip", urls=("https://zenodo.org/records/1214456/files/NCT-CRC-HE-100K.zip",),
                md5="035777cf327776a71a05c95da6d6325f"),
        RawFile(name="CRC-VAL-HE-7K.zip", urls=("https://zenodo.org/records/1214456/files/CRC-VAL-HE-7K.zip",),
                md5="2fd1651b4f94ebd818ebf90ad2b6ce06"),
    ),
    deviations=(
        "The 100K set has no patient or slide ids, so its train/val split is by tile (image-level); the "
        "official CRC-VAL-HE-7K test set stays patient-disjoint from it.",
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="NctCrcHe",
        abbreviation="NCT",
        source=SOURCE,
        origin="CLF",
        organ="colorectal",
        stain="H&E",
        n_classes=9,
        classes=("ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"),
        metric="accuracy",
        split_unit="image",
        sizes=SplitSizes(
            train=SplitCount(images=90000, groups=90000),
            val=SplitCount(images=10000, groups=10000),
            test=SplitCount(images=7180, groups=7180),
        ),
        role="extra",
        patch_px=224,
        um_per_px=0.5,
        preprocessing=(
            "The 224x224 tiles are kept whole. CRC-VAL-HE-7K is the official test set (pinned). The source has "
            "no validation split: dpbench carves 10% of NCT-CRC-HE-100K (10,000 tiles, class-balanced by the "
            "grouped splitter) as val and trains on the other 90,000. Each tile is its own group, because the "
            "100K release publishes no patient or slide ids."
        ),
    ),
)
