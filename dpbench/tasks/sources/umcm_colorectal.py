"""UMCM Colorectal (Kather et al. 2016): 5,000 colorectal-cancer H&E tiles in eight tissue classes."""

from dpbench.tasks.models import RawFile, Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="umcm_colorectal",
    title="Collection of textures in colorectal cancer histology (Kather et al. 2016)",
    url="https://zenodo.org/records/53169",
    availability="public",
    licence="CC-BY-4.0",
    size="about 246 MB (tiles zip)",
    downloads=(
        RawFile(name="Kather_texture_2016_image_tiles_5000.zip",
                urls=("https://zenodo.org/record/53169/files/Kather_texture_2016_image_tiles_5000.zip",)),
    ),
    deviations=(
        "No patient ids are published, so the split is by tile (image level) instead of the paper's 6/4 "
        "patients; tiles of one patient can fall in train and test, which flatters every encoder alike.",
        "The paper has no validation set for this task; dpbench keeps it so (train/test only).",
    ),
    citation=r"""@article{kather2016multi,
  title = {Multi-class texture analysis in colorectal cancer histology},
  author = {Kather, Jakob Nikolas and Weis, Cleo-Aron and Bianconi, Francesco and Melchers, Susanne M
            and Schad, Lothar R and Gaiser, Timo and Marx, Alexander and Z{\"o}llner, Frank Gerrit},
  journal = {Scientific Reports},
  volume = {6},
  pages = {27988},
  year = {2016},
  doi = {10.1038/srep27988}
}""",
    notes=(
        "Zenodo record (doi:10.5281/zenodo.53169), direct download of "
        "Kather_texture_2016_image_tiles_5000.zip; attribution required. The release carries no patient "
        "or slide ids."
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="UmcmColorectal",
        abbreviation="UMCM",
        source=SOURCE,
        origin="CLF",
        organ="colorectal",
        stain="H&E",
        n_classes=8,
        classes=("TUMOR", "STROMA", "COMPLEX", "LYMPHO", "DEBRIS", "MUCOSA", "ADIPOSE", "EMPTY"),
        metric="accuracy",
        split_unit="patient",
        sizes=SplitSizes(
            train=SplitCount(images=3349, groups=6),
            val=SplitCount(images=0, groups=0),
            test=SplitCount(images=1651, groups=4),
        ),
        role="pretrain",
        patch_px=150,
        um_per_px=0.495,
        preprocessing=(
            "The original 150x150 tiles (625 per class) are kept; the paper has no validation set. It "
            "reports a 6/4 patient split, but no patient ids are public, so that grouping cannot be rebuilt "
            "and a dpbench split of this task falls back to images."
        ),
    ),
)
