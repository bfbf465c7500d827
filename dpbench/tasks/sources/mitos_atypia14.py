"""MITOS-ATYPIA-14: breast-cancer H&E frames from two scanners, annotated with mitoses and non-mitoses."""

from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="mitos_atypia14",
    title="MITOS-ATYPIA-14 grand challenge (mitosis detection and nuclear atypia scoring)",
    url="https://mitos-atypia-14.grand-challenge.org/",
    availability="registration",
    licence="unknown",
    citation=r"""@techreport{roux2014mitos,
  title = {{MITOS} \& {ATYPIA}},
  author = {Roux, Ludovic and Racoceanu, Daniel and Capron, Fr{\'e}d{\'e}rique and Calvo, Jessica
            and Attieh, Elham and Le Naour, Gilles and Gloaguen, Anne},
  institution = {Image Pervasive Access Lab (IPAL), Agency for Science, Technology and Research,
                 Institute for Infocomm Research},
  address = {Singapore},
  year = {2014}
}""",
    notes=(
        "Data are obtained through the grand-challenge site after signing up (originally IPAL/CNRS with "
        "registration); no licence text was found, so derived patches are not re-hosted. The same slides "
        "were scanned on two scanners (Aperio 'A..' and Hamamatsu 'H..' prefixes): group them together."
    ),
    manual=(
        "Sign up on https://mitos-atypia-14.grand-challenge.org/ and download the training data set. Extract "
        "it under `<raw>/mitos_atypia14/` so that it holds `Training Aperio/A03/A03/frames/x40/*.tiff` with "
        "`.../A03/A03/mitosis/<frame>_mitosis.csv` and `<frame>_not_mitosis.csv` (and the same under "
        "`Training Hamamatsu/H03/...`)."
    ),
    deviations=(
        "Groups join the Aperio (A..) and Hamamatsu (H..) scans of the same slide, so 11 slide groups are split "
        "instead of the paper's 22 (13/4/5): the paper's counts treat the two scans as separate slides, which "
        "can put one tissue section in both training and test.",
        "The paper gives no overlap for the annotation-free tiles: dpbench tiles each x40 frame with a 64 px "
        "overlap plus a last row/column flush with the edge, so 'no_annotation' counts differ from the paper's.",
        "The paper states 10 shifted patches per mitosis; dpbench also takes 10 per not-mitosis point and keeps "
        "every listed point whatever its confidence value.",
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="MitosAtypia14",
        abbreviation="MA14",
        source=SOURCE,
        origin="DET",
        organ="breast",
        stain="H&E",
        n_classes=3,
        classes=("no_annotation", "non_mitosis", "mitosis"),
        metric="accuracy",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=40364, groups=13),
            val=SplitCount(images=12799, groups=4),
            test=SplitCount(images=11710, groups=5),
        ),
        role="pretrain",
        patch_px=323,
        preprocessing=(
            "323x323 patches at x40: 10 randomly shifted patches around each mitosis (class 'mitosis') and "
            "around each annotated non-mitosis (class 'non_mitosis'); annotation-free tiles taken "
            "exhaustively with overlap form 'no_annotation'."
        ),
    ),
)
