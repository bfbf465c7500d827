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
