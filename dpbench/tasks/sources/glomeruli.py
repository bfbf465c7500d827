"""Glomeruli (Marée et al. 2016): Masson's trichrome kidney crops, glomerulus or not, from several sites."""

from dpbench.tasks.models import Inconsistency, Source, SplitCount, SplitSizes, Task

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
    manual=(
        "Private data: ask the authors (ULiège, Cytomine team) and the data holders (Institut Pasteur and HEGP) "
        "for access. Put each task in its own folder under `--raw DIR`: `DIR/Glomeruli/` or "
        "`DIR/glomeruli_no_aug/` (also accepted under `DIR/private/` or `DIR/glomeruli/`). Use the authors' "
        "image-folder export, `[train|val|test/]<class>/<group>_<name>.png` with class folders named `other` and "
        "`glomerulus` and the slide or patient id before the first `_`, or a Cytomine Python client crop dump "
        "(pattern `{term}/{image}_{id}.png`) with a `terms.json` of term id to name, an optional `images.csv` "
        "(image id, group, optional split) and, when term names differ from the class names, a `classes.json`. "
        "Then run `dpbench build --pool mormont2020 --raw DIR`; shards of private data are marked "
        "non-redistributable."
    ),
    deviations=(
        (
            "Without the authors' train/val/test folders (or a split column in images.csv) dpbench's grouped "
            "splitter assigns the same slides to splits, which gives a split different from the paper's; with "
            "them the split is reproduced exactly."
        ),
        (
            "A Cytomine crop dump made now may differ from the authors' crops (zoom level, crop margins, "
            "annotations edited since 2018): the paper does not give its dump parameters."
        ),
    ),
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
        classes=("other", "glomerulus"),
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
