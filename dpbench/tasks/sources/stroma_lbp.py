"""Stroma LBP (Linder et al. 2012): colorectal-cancer TMA images labelled tumour epithelium or stroma."""

from dpbench.tasks.models import Source, SplitCount, SplitSizes, Task

SOURCE = Source(
    id="stroma_lbp",
    title="Epistroma: tumour epithelium and stroma in colorectal-cancer tissue microarrays",
    url="http://fimm.webmicroscope.net",
    availability="public",
    licence="unknown",
    citation=r"""@article{linder2012identification,
  title = {Identification of tumor epithelium and stroma in tissue microarrays using texture analysis},
  author = {Linder, Nina and Konsti, Juho and Turkki, Riku and Rahtu, Esa and Lundin, Mikael
            and Nordling, Stig and Haglund, Caj and Ahonen, Timo and Pietik{\"a}inen, Matti
            and Lundin, Johan},
  journal = {Diagnostic Pathology},
  volume = {7},
  pages = {22},
  year = {2012},
  doi = {10.1186/1746-1596-7-22}
}""",
    notes=(
        "Released by the authors on the FIMM WebMicroscope server; the exact download path was not "
        "confirmed and the host may be gone, so a mirror may be needed. No licence is stated: patches are "
        "not re-hosted. Images are 293 to 1088 px a side, from TMAs of 643 patients; no patient ids."
    ),
    manual=(
        "Obtain the Epistroma image set (Linder et al. 2012) from the FIMM WebMicroscope site "
        "(http://fimm.webmicroscope.net) or from the authors, then place every image under a folder named "
        "after its class: <raw>/stroma_lbp/[<any folders>/]epithelium/<image> and .../stroma/<image> "
        "(tif, png, bmp or jpg). This layout is dpbench's assumption: the release format could not be "
        "inspected."
    ),
    deviations=(
        "The raw layout (class folders epithelium/ and stroma/) is dpbench's assumption, not a documented "
        "release format.",
        "Split by image with dpbench's grouped split; the paper's 2,313 samples from 1,376 images and its "
        "sets cannot be rebuilt from the public subset.",
    ),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="StromaLBP",
        abbreviation="SLBP",
        source=SOURCE,
        origin="CLF",
        organ="colorectal",
        stain="IHC",
        n_classes=2,
        classes=("stroma", "epithelium"),
        metric="roc_auc",
        split_unit="image",
        sizes=SplitSizes(
            train=SplitCount(images=947, groups=492),
            val=SplitCount(images=407, groups=228),
            test=SplitCount(images=959, groups=656),
        ),
        role="pretrain",
        preprocessing=(
            "Original images and labels kept, split by source image. The paper's 2,313 samples from 1,376 "
            "source images are not explained by its rules; the groups suggest Linder's 720-image test set "
            "was re-split into train/val and the 656-image public set used as test."
        ),
    ),
)
