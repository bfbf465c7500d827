"""Janowczyk tutorial use case 7: H&E images of three malignant lymphoma subtypes (from IICBU 2008)."""

from dpbench.tasks.citations import JANOWCZYK2016_JPI
from dpbench.tasks.models import Inconsistency, RawFile, Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="janowczyk_lymphoma",
    title="Janowczyk & Madabhushi deep-learning tutorial, use case 7: lymphoma subtype classification",
    url="http://andrewjanowczyk.com/wp-static/lymphoma.tar.gz",
    availability="public",
    licence="unknown",
    citation=JANOWCZYK2016_JPI,
    notes=(
        "Direct download from the tutorial author's site; folders CLL/, FL/ and MCL/ hold 374 images. "
        "The images come from the IICBU 2008 benchmark (Shamir et al.), announced as a free download but "
        "without a licence, so patches are not re-hosted. No patient ids are published; the image names carry "
        "the case (specimen accession, e.g. sj-03-2810 in CLL/sj-03-2810_001.tif: 30 name prefixes, 29 "
        "accessions)."
    ),
    downloads=(
        RawFile(name="lymphoma.tar.gz", urls=("https://andrewjanowczyk.com/wp-static/lymphoma.tar.gz",
                                              "http://andrewjanowczyk.com/wp-static/lymphoma.tar.gz")),
    ),
    deviations=(
        "The 3x2 grid of 384 px tiles is centred in each 1388x1040 image (the paper does not say where it "
        "sat); the unused margins are split evenly between opposite borders.",
        "Split by case (the specimen accession in the image names, 29 cases), not by the paper's 374 'patients', "
        "which are the images: an image-level split puts every case in several splits.",
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Janowczyk7",
        abbreviation="J7",
        source=SOURCE,
        origin="CLF",
        organ="lymph node",
        stain="H&E",
        n_classes=3,
        classes=("CLL", "FL", "MCL"),
        metric="accuracy",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=1350, groups=225),
            val=SplitCount(images=456, groups=76),
            test=SplitCount(images=438, groups=73),
        ),
        role="pretrain",
        patch_px=384,
        preprocessing=(
            "Each 1388x1040 image is tiled into non-overlapping 384x384 patches (6 per image, 2,244 in "
            "all) that keep the image's subtype label. Published as a patient split whose 374 groups are the "
            "source images; dpbench groups by case (the accession the names carry, 29 cases)."
        ),
        inconsistencies=(
            Inconsistency(
                field="split_unit",
                seen=("patient (split table)", "374 groups = number of source images (no patient ids)"),
                chosen="patient",
                why="kept as published; the group counts fit an image-level split, but the names carry the case, "
                    "so dpbench splits by case (29 groups) to keep each patient in one split",
            ),
            Inconsistency(
                field="organ",
                seen=("breast (Table I, 'breast, lymphoma')", "lymphoma biopsies (IICBU 2008 source)"),
                chosen="lymph node",
                why="the source images are lymphoma sections; 'breast' looks copied from the other rows",
            ),
        ),
    ),
)
