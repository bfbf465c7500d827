"""Gleason grading of prostate TMAs (Arvaniti et al. 2018): 22,752 750x750 patches, benign and Gleason 3/4/5."""

from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="gleason_arvaniti",
    title="Automated Gleason grading of prostate cancer tissue microarrays (Arvaniti et al. 2018)",
    url="https://dataverse.harvard.edu/dataset.xhtml?persistentId=doi:10.7910/DVN/OCYCMP",
    availability="public",
    licence="CC0-1.0",
    citation=r"""@article{arvaniti2018automated,
  title = {Automated Gleason grading of prostate cancer tissue microarrays via deep learning},
  author = {Arvaniti, Eirini and Fricker, Kim S. and Moret, Michael and Rupp, Niels and Hermanns, Thomas
            and Fankhauser, Christian and Wey, Norbert and Wild, Peter J. and R{\"u}schoff, Jan H.
            and Claassen, Manfred},
  journal = {Scientific Reports},
  volume = {8},
  pages = {12054},
  year = {2018},
  doi = {10.1038/s41598-018-30535-1}
}""",
    notes=(
        "Harvard Dataverse doi:10.7910/DVN/OCYCMP, CC0: H&E TMA spot images (3100x3100 px, 40x, about "
        "0.23 um/px) of five arrays (ZT76, ZT111, ZT199, ZT204 discovery cohort, 641 patients; ZT80 test "
        "cohort, 245 patients annotated by two pathologists) with Gleason annotation masks. The 750x750 "
        "patches are made locally with the authors' utils/create_patches.py (GitHub eiriniar/gleason_CNN)."
    ),
    size="about 4 GB",
    manual=(
        "Download the Dataverse files (the ZT*.tar.gz spot-image archives and the Gleason_masks_* archives) and "
        "extract them into one folder as TMA_images/, Gleason_masks_train/ and "
        "Gleason_masks_test/Gleason_masks_test_pathologist{1,2}/. Clone GitHub eiriniar/gleason_CNN, set "
        "`prefix` in main() of utils/create_patches.py to that folder and run `python utils/create_patches.py` "
        "(numpy, pandas, Pillow and SciPy < 1.2, which still has scipy.misc.imread; run it once, on a folder "
        "without earlier patches). It writes train_validation_patches_750/ and test_patches_750/ (earlier "
        "versions: inter_observer/joint_test_patches_750/) into that folder; put the folder, or a link to it, "
        "at <raw>/gleason_arvaniti"
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="GleasonArvaniti",
        abbreviation="Gleason",
        source=SOURCE,
        origin="CLF",
        organ="prostate",
        stain="H&E",
        n_classes=4,
        classes=("benign", "gleason3", "gleason4", "gleason5"),
        metric="accuracy",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=15303, groups=None),
            val=SplitCount(images=2482, groups=None),
            test=SplitCount(images=4967, groups=None),
        ),
        role="extra",
        patch_px=750,
        um_per_px=0.23,
        preprocessing=(
            "The authors' 750x750 patches (half-overlapping, labelled by the single Gleason pattern of their "
            "central third, background-rich patches dropped) are kept whole. The published split is by "
            "array and so patient-disjoint: ZT111, ZT199 and ZT204 train, ZT76 val, ZT80 test (all pinned). "
            "Groups are TMA spots (cores)."
        ),
    ),
)
