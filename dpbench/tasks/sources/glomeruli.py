"""Glomeruli (Marée et al. 2016): Masson's trichrome kidney crops, glomerulus or not, from several sites."""

from dpbench.tasks import private_sources as private
from dpbench.tasks.models import Inconsistency, Source, SplitCount, SplitSizes, Task

_CLASSES = ("other", "glomerulus")

SOURCE = Source(
    id="glomeruli",
    title="Multisite kidney glomeruli dataset (Institut Pasteur / HEGP, on ULiège Cytomine)",
    url="https://doi.org/10.1109/JBHI.2020.2992878",
    availability="private",
    licence="proprietary",
    citation=r"""@inproceedings{maree2016approach,
  title = {An approach for detection of glomeruli in multisite digital pathology},
  author = {Mar{\'e}e, Rapha{\"e}l and Dallongeville, St{\'e}phane and Olivo-Marin, Jean-Christophe
            and Meas-Yedid, Vannary},
  booktitle = {IEEE 13th International Symposium on Biomedical Imaging (ISBI)},
  pages = {1033--1036},
  year = {2016}
}""",
    notes=(
        "Not publicly released: whole-slide images from Institut Pasteur and HEGP collaborators, "
        "annotated on Cytomine; no download was found. The URL is the pool paper (JBHI 2020), as the "
        "data have no public location; cite the ISBI 2016 paper above for the data."
    ),
    manual=private.manual("glomeruli", "Institut Pasteur and HEGP", [("Glomeruli", "glomeruli_no_aug")], [_CLASSES]),
    deviations=(private.split_deviation(), private.CROP_DUMP_DEVIATION),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Glomeruli",
        abbreviation="Glom",
        source=SOURCE,
        origin="CLF",
        organ="kidney",
        stain="Masson's trichrome",
        n_classes=2,
        classes=_CLASSES,
        metric="roc_auc",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=12157, groups=10),
            val=SplitCount(images=2448, groups=8),
            test=SplitCount(images=14608, groups=102),
        ),
        role="evaluate",
        preprocessing=(
            "Each sample is the bounding-box crop of one annotated object, a glomerulus or another "
            "structure; split by slide."
        ),
        inconsistencies=(
            Inconsistency(
                field="sizes.groups",
                seen=(
                    "91/12/102 = 205 slides (comment in the CVPRW 2018 table)",
                    "10/8/102 = 120 (JBHI 2020)",
                ),
                chosen="120",
                why="the 2020 supplementary split table is the reference for the pool",
            ),
        ),
    ),
)
