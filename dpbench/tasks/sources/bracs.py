"""BRACS (Brancati et al. 2022): 4,539 breast H&E regions of interest in seven lesion classes."""

from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="bracs",
    title="BRACS: BReAst Carcinoma Subtyping (region-of-interest set, BRACS_RoI)",
    url="https://www.bracs.icar.cnr.it/",
    availability="registration",
    licence="CC-BY-NC-4.0",
    citation=r"""@article{brancati2022bracs,
  title = {{BRACS}: A Dataset for {BReAst} Carcinoma Subtyping in {H\&E} Histology Images},
  author = {Brancati, Nadia and Anniciello, Anna Maria and Pati, Pushpak and Riccio, Daniel
            and Scognamiglio, Giosu{\`e} and Jaume, Guillaume and De Pietro, Giuseppe and Di Bonito, Maurizio
            and Foncubierta, Antonio and Botti, Gerardo and Gabrani, Maria and Feroce, Florinda
            and Frucci, Maria},
  journal = {Database},
  volume = {2022},
  pages = {baac093},
  year = {2022},
  doi = {10.1093/database/baac093}
}""",
    notes=(
        "ICAR-CNR / IRCCS Fondazione Pascale (Naples). 547 WSIs from 189 patients, Aperio AT2 at 0.25 um/px "
        "(40x); the RoI set holds 4,539 PNG regions of variable size in official, patient-wise train/val/test "
        "folders. CC BY-NC 4.0 (non-commercial). Registration on the download page may be required."
    ),
    size="52 GB (RoI set)",
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Bracs",
        abbreviation="BRACS",
        source=SOURCE,
        origin="CLF",
        organ="breast",
        stain="H&E",
        n_classes=7,
        classes=("N", "PB", "UDH", "FEA", "ADH", "DCIS", "IC"),
        metric="accuracy",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=3657, groups=None),
            val=SplitCount(images=312, groups=None),
            test=SplitCount(images=570, groups=None),
        ),
        role="extra",
        um_per_px=0.25,
        preprocessing=(
            "Each region of interest is kept whole at its native, variable size (0.25 um/px). The official "
            "train/val/test folders are kept (all pinned; BRACS made them patient-disjoint). Groups are the "
            "slide id in the file name (BRACS_<slide>_<class>_<n>.png)."
        ),
    ),
)
