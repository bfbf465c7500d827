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
        "No patient ids are published; the tile names carry the slide (CRC-Prim-HE-01 to -10), and dpbench "
        "splits by slide, one slide taken as one of the paper's ten patients. dpbench's grouped splitter "
        "chooses the slides (the paper's 6/4 patient split was not published), so the split sizes differ a "
        "little from the paper's 3,349/1,651.",
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
        "ids; each tile name carries its slide and source image (e.g. "
        "01_TUMOR/A26A_CRC-Prim-HE-05_008.tif_Row_151_Col_1.tif: slide CRC-Prim-HE-05, image 008, tile at row "
        "151, column 1)."
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
            "reports a 6/4 patient split; the release names no patients but every tile name carries its slide "
            "(ten slides), so dpbench groups by slide, one slide per patient."
        ),
    ),
)
