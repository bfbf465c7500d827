"""BoneMarrow (Kainz et al. 2017): H&E bone-marrow cell images at granulopoietic and erythropoietic stages."""

from dpbench.tasks.models import Inconsistency, Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="bone_marrow",
    title="Bone marrow cell classification dataset (Kainz et al. 2017)",
    url="https://doi.org/10.1007/s00521-016-2609-9",
    availability="private",
    licence="proprietary",
    citation=r"""@article{kainz2017training,
  title = {Training echo state networks for rotation-invariant bone marrow cell classification},
  author = {Kainz, Philipp and Burgsteiner, Harald and Asslaber, Martin and Ahammer, Helmut},
  journal = {Neural Computing and Applications},
  volume = {28},
  number = {6},
  pages = {1277--1292},
  year = {2017},
  doi = {10.1007/s00521-016-2609-9}
}""",
    notes=(
        "The paper is open access but no public download of the images was found, and the pool authors "
        "list it among the datasets provided through Cytomine collaborators; treated as private until a "
        "release is found. The URL is the describing paper. Class names are not published."
    ),
    manual=(
        "Private data: ask the authors (ULiège, Cytomine team) and the data holders (Kainz et al., Medical "
        "University of Graz) for access. Put each task in its own folder under `--raw DIR`: `DIR/BoneMarrow/` or "
        "`DIR/ulg_bonemarrow/` (also accepted under `DIR/private/` or `DIR/bone_marrow/`). Use the authors' "
        "image-folder export, `[train|val|test/]<class>/<group>_<name>.png` with one class folder per class "
        "(names not published; see the deviations) and the slide or patient id before the first `_`, or a "
        "Cytomine Python client crop dump (pattern `{term}/{image}_{id}.png`) with a `terms.json` of term id to "
        "name, an optional `images.csv` (image id, group, optional split) and, when term names differ from the "
        "class names, a `classes.json`. Groups equal images for this task, so each file may be named `<image "
        "id>_<anything>`. Then run `dpbench build --pool mormont2020 --raw DIR`; shards of private data are "
        "marked non-redistributable."
    ),
    deviations=(
        (
            "Without the authors' train/val/test folders (or a split column in images.csv) dpbench's grouped "
            "splitter assigns the same images to splits, which gives a split different from the paper's; with "
            "them the split is reproduced exactly."
        ),
        (
            "A Cytomine crop dump made now may differ from the authors' crops (zoom level, crop margins, "
            "annotations edited since 2018): the paper does not give its dump parameters."
        ),
        (
            "The class names are not published: labels follow the sorted class-folder or term names (as the "
            "authors' ImageFolder-based loader sorts them), so they match the paper's class indices only with the "
            "authors' own folder names."
        ),
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="BoneMarrow",
        abbreviation="BoMa",
        source=SOURCE,
        origin="CLF",
        organ="bone marrow",
        stain="H&E",
        n_classes=8,
        metric="accuracy",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=522, groups=522),
            val=SplitCount(images=130, groups=130),
            test=SplitCount(images=639, groups=639),
        ),
        role="evaluate",
        preprocessing=(
            "Original cell images and labels kept. Published as a slide split, but the group counts "
            "equal the image counts, so it is in effect an image-level split."
        ),
        inconsistencies=(
            Inconsistency(
                field="n_classes",
                seen=("9 (Table I)", "8 (supplementary split table)"),
                chosen="8",
                why="8 makes the pool total 81 classes",
            ),
            Inconsistency(
                field="split_unit",
                seen=("slide (split table)", "groups = images (522/130/639)"),
                chosen="slide",
                why="kept as published; no slide ids are known, so the split is image-level in practice",
            ),
        ),
    ),
)
