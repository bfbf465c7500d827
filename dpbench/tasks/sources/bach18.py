"""BACH 2018 (ICIAR grand challenge), microscopy part: 400 breast H&E images in four classes."""

from dpbench.tasks.models import RawFile, Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="bach18",
    title="BACH: ICIAR 2018 grand challenge on breast cancer histology images (microscopy set)",
    url="https://zenodo.org/records/3632035",
    availability="public",
    licence="CC-BY-NC-ND-4.0",
    citation=r"""@article{aresta2019bach,
  title = {{BACH}: Grand challenge on breast cancer histology images},
  author = {Aresta, Guilherme and Ara{\'u}jo, Teresa and Kwok, Scotty and Chennamsetty, Sai Saketh
            and Safwan, Mohammed and Alex, Varghese and Marami, Bahram and Prastawa, Marcel
            and Chan, Monica and Donovan, Michael and others},
  journal = {Medical Image Analysis},
  volume = {56},
  pages = {122--139},
  year = {2019},
  doi = {10.1016/j.media.2019.05.010}
}""",
    notes=(
        "Single zip on Zenodo, no registration. The NoDerivatives clause is read as forbidding "
        "redistribution of derived patches: convert locally, never re-host. Patient ids come from a "
        "spreadsheet linked from the challenge site (iciar2018-challenge.grand-challenge.org)."
    ),
    size="10.4 GB (whole archive; the microscopy photos are 7.37 GB)",
    downloads=(
        RawFile(
            name="ICIAR2018_BACH_Challenge.zip",
            urls=("https://zenodo.org/records/3632035/files/ICIAR2018_BACH_Challenge.zip",),
        ),
    ),
    manual=(
        "Download ICIAR2018_BACH_Challenge.zip from Zenodo record 3632035 and extract it. For a patient-level "
        "split, also get the patient spreadsheet linked from iciar2018-challenge.grand-challenge.org and save "
        "it as patients.csv (header row with 'image' and 'patient' columns) in the source folder"
    ),
    deviations=(
        "The 4x3 grid of 512 px tiles is inferred from the published counts (400 photos, 4,800 patches); the "
        "paper does not describe the tiling.",
        "The patient ids are not in the archive: without a patients.csv the split is by photo (the 12 tiles "
        "of a photo stay together, but one patient's photos may be split), not by patient as in the paper.",
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Bach18Micro",
        abbreviation="BACH",
        source=SOURCE,
        origin="CLF",
        organ="breast",
        stain="H&E",
        n_classes=4,
        classes=("Normal", "Benign", "InSitu", "Invasive"),
        metric="accuracy",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=2760, groups=143),
            val=SplitCount(images=720, groups=52),
            test=SplitCount(images=1320, groups=89),
        ),
        role="pretrain",
        patch_px=512,
        um_per_px=0.42,
        preprocessing=(
            "Each labelled 2048x1536 microscopy image is tiled into 12 non-overlapping 512x512 patches "
            "that keep the image's class; split by patient."
        ),
    ),
)
