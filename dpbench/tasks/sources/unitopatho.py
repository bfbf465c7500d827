"""UniToPatho (Barbano et al. 2021): colorectal-polyp H&E crops from 292 slides, six polyp/dysplasia classes."""

from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="unitopatho",
    title="UniToPatho: colorectal polyps classification and adenoma dysplasia grading",
    url="https://ieee-dataport.org/open-access/unitopatho",
    availability="public",
    licence="CC-BY-4.0",
    citation=r"""@inproceedings{barbano2021unitopatho,
  title = {{UniToPatho}, a Labeled Histopathological Dataset for Colorectal Polyps Classification and
           Adenoma Dysplasia Grading},
  author = {Barbano, Carlo Alberto and Perlo, Daniele and Tartaglione, Enzo and Fiandrotti, Attilio
            and Bertero, Luca and Cassoni, Paola and Grangetto, Marco},
  booktitle = {2021 IEEE International Conference on Image Processing (ICIP)},
  pages = {76--80},
  year = {2021},
  doi = {10.1109/ICIP42928.2021.9506198}
}""",
    notes=(
        "IEEE DataPort open access (dataset doi:10.21227/9fsv-tm25; an IEEE account may be needed to start "
        "the download), CC BY 4.0; loaders at GitHub EIDOSLAB/UNITOPATHO. Hamamatsu NanoZoomer S210 at 20x, "
        "0.4415 um/px; each slide belongs to a different patient. The 800 subset holds 8,669 crops of "
        "800 um (1812x1812 px) with train.csv / test.csv (image_id, top_label_name, wsi, ...)."
    ),
    size="48.37 GB (all subsets)",
)

TASKS: tuple[Task, ...] = (
    Task(
        name="UniToPatho",
        abbreviation="UTP",
        source=SOURCE,
        origin="CLF",
        organ="colorectal",
        stain="H&E",
        n_classes=6,
        classes=("HP", "NORM", "TA.HG", "TA.LG", "TVA.HG", "TVA.LG"),
        metric="accuracy",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=5643, groups=None),
            val=SplitCount(images=627, groups=None),
            test=SplitCount(images=2399, groups=None),
        ),
        role="extra",
        patch_px=906,
        um_per_px=0.883,
        preprocessing=(
            "The 800 um subset: each 1812x1812 crop is downsampled by exactly 2 to 906x906 (0.883 um/px) to "
            "keep shards a quarter of the raw size. test.csv is the official test set (2,399, pinned); the "
            "source has no validation split, so dpbench carves about 10% of the official train images "
            "(by slide) as val. Groups are slides (one slide per patient in UniToPatho)."
        ),
    ),
)
