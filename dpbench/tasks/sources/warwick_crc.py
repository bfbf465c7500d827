"""Warwick CRCHistoPhenotypes: 100 colorectal-adenocarcinoma H&E images with classified nucleus centres."""

from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="warwick_crc",
    title="CRCHistoPhenotypes: labelled nuclei in colorectal adenocarcinoma H&E images",
    url="https://warwick.ac.uk/fac/cross_fac/tia/data/crchistolabelednucleihe/",
    availability="public",
    licence="research-only",
    citation="""@article{sirinukunwattana2016locality,
  title = {Locality Sensitive Deep Learning for Detection and Classification of Nuclei in Routine
           Colon Cancer Histology Images},
  author = {Sirinukunwattana, Korsuk and Raza, Shan E Ahmed and Tsang, Yee-Wah and Snead, David R J
            and Cree, Ian A and Rajpoot, Nasir M},
  journal = {IEEE Transactions on Medical Imaging},
  volume = {35},
  number = {5},
  pages = {1196--1206},
  year = {2016},
  doi = {10.1109/TMI.2016.2525803}
}""",
    notes=(
        "Single zip (CRCHistoPhenotypes_2016_04_28) from the TIA Warwick page; the host describes it for "
        "research use and no open licence was found, so dpbench converts locally and does not re-host. "
        "The 100 images come from 10 WSIs of 9 patients, but no image-to-patient mapping is published."
    ),
    manual=(
        "Download CRCHistoPhenotypes_2016_04_28.zip from "
        "https://warwick.ac.uk/fac/cross_fac/tia/data/crchistolabelednucleihe/ (the archive link is not pinned "
        "here, so dpbench does not fetch it) and extract it under `<raw>/warwick_crc/`, keeping its "
        "`Detection/imgN/` and `Classification/imgN/` folders."
    ),
    deviations=(
        "Tiles form a non-overlapping 5x5 grid of 100 px per image: the supplementary calls the tiling "
        "overlapping, but only a non-overlapping grid gives the published 2,500 patches (25 per image).",
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="WarwickCRC",
        abbreviation="WCRC",
        source=SOURCE,
        origin="DET",
        organ="colorectal",
        stain="H&E",
        n_classes=2,
        classes=("other", "inflammatory"),
        metric="roc_auc",
        split_unit="image",
        sizes=SplitSizes(
            train=SplitCount(images=1500, groups=60),
            val=SplitCount(images=500, groups=20),
            test=SplitCount(images=500, groups=20),
        ),
        role="pretrain",
        patch_px=100,
        preprocessing=(
            "Each 500x500 image is cut into 100x100 patches (25 per image, no supersampling); a patch is "
            "'inflammatory' when it contains an inflammatory nucleus, 'other' when it holds only epithelial, "
            "fibroblast or other nuclei, or none. Split by source image since patient ids are not released."
        ),
    ),
)
