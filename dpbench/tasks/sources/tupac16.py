"""TUPAC16 auxiliary mitosis set: breast-cancer H&E high-power fields with mitosis centre annotations."""

from dpbench.tasks.models import Inconsistency, Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="tupac16",
    title="TUPAC16 tumour proliferation challenge, auxiliary mitosis detection dataset",
    url="https://tupac.grand-challenge.org/Dataset/",
    availability="registration",
    licence="unknown",
    citation=r"""@article{veta2019predicting,
  title = {Predicting breast tumor proliferation from whole-slide images: the {TUPAC16} challenge},
  author = {Veta, Mitko and Heng, Yujing J and Stathonikos, Nikolas and Bejnordi, Babak Ehteshami
            and Beca, Francisco and Wollmann, Thomas and Rohr, Karl and Shah, Manan A and Wang, Dayong
            and Rousson, Mikael and others},
  journal = {Medical Image Analysis},
  volume = {54},
  pages = {111--121},
  year = {2019},
  doi = {10.1016/j.media.2019.02.012}
}""",
    notes=(
        "Obtained through the grand-challenge site after signing up; no licence text was found, so "
        "patches are not re-hosted. The auxiliary set holds 656 HPF images from 73 cases, with "
        "ground-truth CSVs in (row, column) order. Alternative labels exist (Bertram et al. 2020)."
    ),
    manual=(
        "Sign up on https://tupac.grand-challenge.org/ and download the auxiliary mitosis data set (image parts "
        "1-3 and the mitosis ground truth). Extract them side by side under `<raw>/tupac16/` so that it holds "
        "`mitoses_train_image_data_part_{1,2,3}/<case>/<hpf>.tif` and `mitoses_ground_truth/<case>/<hpf>.csv`."
    ),
    deviations=(
        "Split by case (73 patients) rather than by HPF image: the paper's 656 groups are HPFs, which lets one "
        "patient's fields straddle training and test.",
        "The paper gives no overlap for the mitosis-free tiles: dpbench uses 50 px (stride 200) plus a last "
        "row/column flush with the edge, so 'no_mitosis' counts may differ from the paper's.",
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Tupac16Mitosis",
        abbreviation="TUPAC",
        source=SOURCE,
        origin="DET",
        organ="breast",
        stain="H&E",
        n_classes=2,
        classes=("no_mitosis", "mitosis"),
        metric="roc_auc",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=62874, groups=526),
            val=SplitCount(images=7827, groups=74),
            test=SplitCount(images=7152, groups=56),
        ),
        role="pretrain",
        patch_px=250,
        preprocessing=(
            "250x250 patches: 10 randomly shifted patches around each annotated mitosis ('mitosis'); "
            "mitosis-free tiles taken exhaustively with overlap ('no_mitosis'). dpbench groups by case."
        ),
        inconsistencies=(
            Inconsistency(
                field="sizes.groups",
                seen=("split unit 'patient' (73 cases in the source)", "656 groups = number of HPF images"),
                chosen="656 (as published)",
                why="the published counts are HPF images, not patients; a rebuilt split should group by case",
            ),
        ),
    ),
)
