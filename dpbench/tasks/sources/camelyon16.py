"""Camelyon16: sentinel lymph-node whole-slide images with breast-cancer metastasis outlines."""

from dpbench.tasks.models import Inconsistency, Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="camelyon16",
    title="CAMELYON16 challenge: lymph node metastases in women with breast cancer",
    url="https://camelyon17.grand-challenge.org/Data/",
    availability="public",
    licence="CC0-1.0",
    citation=r"""@article{bejnordi2017diagnostic,
  title = {Diagnostic Assessment of Deep Learning Algorithms for Detection of Lymph Node Metastases
           in Women With Breast Cancer},
  author = {Ehteshami Bejnordi, Babak and Veta, Mitko and van Diest, Paul Johannes
            and van Ginneken, Bram and Karssemeijer, Nico and Litjens, Geert
            and van der Laak, Jeroen A W M and others},
  journal = {JAMA},
  volume = {318},
  number = {22},
  pages = {2199--2210},
  year = {2017},
  doi = {10.1001/jama.2017.14585}
}""",
    notes=(
        "No registration; the data page (shared with CAMELYON17) lists mirrors (GigaScience DB, AWS "
        "Open Data, Google Drive, Baidu) and publishes checksums.md5. About 700 GB of pyramidal TIFF. "
        "The test set contains one duplicated slide."
    ),
    size="about 700 GB",
    manual=(
        "Too large to fetch automatically: from a mirror listed on https://camelyon17.grand-challenge.org/Data/ "
        "(GigaScience DB, AWS Open Data, Google Drive, Baidu) download CAMELYON16/training (normal/, tumor/ and "
        "lesion_annotations.zip, which may stay zipped) and, only to use the official test set, "
        "CAMELYON16/testing (images/, reference.csv, lesion_annotations.zip); check them against the published "
        "checksums.md5"
    ),
    deviations=(
        "Background removal is unspecified in the paper: dpbench drops tiles with under 25 % tissue (HSV "
        "saturation above Otsu's threshold, at least 20/255, on a 1/32 thumbnail), keeping any tile that is "
        "at least 10 % tumour.",
        "Tumour area is measured on the outlines rasterised at 1/32 of level 0 (24x24 mask pixels per tile), "
        "not at full resolution; tiles whose coarse tumour fraction lies between 0 and 50 % are measured "
        "again on the tile alone at 1/4 scale (192x192 mask pixels).",
        "Only the 270 official training slides are converted (the paper's 271 slides are split 221/26/24 by "
        "slide); the official test slides can be added, pinned to the test split, with official_test=True.",
        "The 1,000-tiles-per-class-per-slide subsample is drawn with a generator seeded by task, slide and "
        "class names; the paper's draw is not published.",
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="Camelyon16",
        abbreviation="C16",
        source=SOURCE,
        origin="SEG",
        organ="lymph node",
        stain="H&E",
        n_classes=2,
        classes=("normal", "tumor"),
        metric="roc_auc",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=237753, groups=221),
            val=SplitCount(images=27950, groups=26),
            test=SplitCount(images=26523, groups=24),
        ),
        role="pretrain",
        patch_px=384,
        preprocessing=(
            "Non-overlapping 768x768 tiles downscaled to 384x384, background tiles removed; 'tumor' when "
            "at least 10 % of the tile is annotated tumour; at most 1,000 patches per class per slide."
        ),
        inconsistencies=(
            Inconsistency(
                field="sizes.images",
                seen=("2922216 (thesis main dataset table)", "292226 (JBHI Table I, supplementary splits)"),
                chosen="292226",
                why="it equals the sum of the three splits and makes the pool total 882,800",
            ),
        ),
    ),
)
