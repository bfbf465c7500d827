"""BoneMarrow (Kainz et al. 2017): H&E bone-marrow cell images at granulopoietic and erythropoietic stages."""

from dpbench.tasks import private_sources as private
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
    manual=private.manual(
        "bone_marrow",
        "Kainz et al., Medical University of Graz",
        [("BoneMarrow", "ulg_bonemarrow")],
        None,
        note="Groups equal images for this task, so each file may be named `<image id>_<anything>`.",
    ),
    deviations=(private.split_deviation("images"), private.CROP_DUMP_DEVIATION, private.UNPUBLISHED_CLASSES_DEVIATION),
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
