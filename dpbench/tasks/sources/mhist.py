"""MHIST (Wei et al. 2021): 3,152 colorectal-polyp H&E images, hyperplastic polyp vs sessile serrated adenoma."""

from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="mhist",
    title="MHIST: minimalist histopathology image analysis dataset (colorectal polyps, HP vs SSA)",
    url="https://bmirds.github.io/MHIST/",
    availability="registration",
    licence="research-only",
    citation=r"""@inproceedings{wei2021petri,
  title = {A Petri Dish for Histopathology Image Analysis},
  author = {Wei, Jerry and Suriawinata, Arief and Ren, Bing and Liu, Xiaoying and Lisovsky, Mikhail
            and Vaickus, Louis and Brown, Charles and Baker, Michael and Tomita, Naofumi and Torresani, Lorenzo
            and Wei, Jason and Hassanpour, Saeed},
  booktitle = {Artificial Intelligence in Medicine (AIME 2021)},
  series = {Lecture Notes in Computer Science},
  volume = {12721},
  pages = {11--24},
  publisher = {Springer},
  year = {2021},
  doi = {10.1007/978-3-030-77211-6_2}
}""",
    notes=(
        "Dartmouth-Hitchcock Medical Center (BMIRDS). Access needs a request form and the signed Dataset "
        "Research Use Agreement; download links arrive by e-mail (images.zip, annotations.csv, "
        "MD5SUMs.txt). Research use only: derived shards must not be re-hosted. No patient ids are published."
    ),
    size="354 MB",
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Mhist",
        abbreviation="MHIST",
        source=SOURCE,
        origin="CLF",
        organ="colorectal",
        stain="H&E",
        n_classes=2,
        classes=("HP", "SSA"),
        metric="roc_auc",
        split_unit="image",
        sizes=SplitSizes(
            train=SplitCount(images=1958, groups=1958),
            val=SplitCount(images=217, groups=217),
            test=SplitCount(images=977, groups=977),
        ),
        role="extra",
        patch_px=224,
        preprocessing=(
            "The 224x224 images are kept whole; the label is the majority vote of seven pathologists (SSA is the "
            "positive class). The official Partition column gives train (2,175) and test (977, pinned). The "
            "source has no validation split: dpbench carves about 10% of the official train images (217) as "
            "val. No patient ids are published, so every image is its own group."
        ),
    ),
)
