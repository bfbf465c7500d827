"""PatchCamelyon (Veeling et al. 2018): 327,680 96x96 lymph-node patches from Camelyon16, tumour vs not."""

from dpbench.tasks.models import RawFile, Source, SplitCount, SplitSizes, Task

_ZENODO = "https://zenodo.org/records/2546921/files/"
#: File → md5, as published in the table of the dataset's own README (GitHub basveeling/pcam, README.md).
_MD5 = {
    "camelyonpatch_level_2_split_train_x.h5.gz": "1571f514728f59376b705fc836ff4b63",
    "camelyonpatch_level_2_split_train_y.h5.gz": "35c2d7259d906cfc8143347bb8e05be7",
    "camelyonpatch_level_2_split_valid_x.h5.gz": "d8c2d60d490dbd479f8199bdfa0cf6ec",
    "camelyonpatch_level_2_split_valid_y.h5.gz": "60a7035772fbdb7f34eb86d4420cf66a",
    "camelyonpatch_level_2_split_test_x.h5.gz": "d5b63470df7cfa627aeec8b9dc0c066e",
    "camelyonpatch_level_2_split_test_y.h5.gz": "2b85f58b927af9964a4c15b8f7e8f179",
    "camelyonpatch_level_2_split_train_meta.csv": "5a3dd671e465cfd74b5b822125e65b0a",
    "camelyonpatch_level_2_split_valid_meta.csv": "3455fd69135b66734e1008f3af684566",
    "camelyonpatch_level_2_split_test_meta.csv": "67589e00a4a37ec317f2d1932c7502ca",
}

SOURCE = Source(
    id="patch_camelyon",
    title="PatchCamelyon (PCam): 96x96 patches of the Camelyon16 lymph-node sections",
    url="https://zenodo.org/records/2546921",
    availability="public",
    licence="CC0-1.0",
    citation=r"""@inproceedings{veeling2018rotation,
  title = {Rotation Equivariant {CNNs} for Digital Pathology},
  author = {Veeling, Bastiaan S. and Linmans, Jasper and Winkens, Jim and Cohen, Taco and Welling, Max},
  booktitle = {Medical Image Computing and Computer Assisted Intervention -- MICCAI 2018},
  series = {Lecture Notes in Computer Science},
  volume = {11071},
  pages = {210--218},
  publisher = {Springer},
  year = {2018},
  doi = {10.1007/978-3-030-00934-2_24}
}""",
    notes=(
        "Zenodo record doi:10.5281/zenodo.2546921 (GitHub basveeling/pcam), CC0. Six gzipped HDF5 files "
        "(x: N x 96 x 96 x 3 uint8, y: N x 1 x 1 x 1) per official split, plus metadata CSVs naming each "
        "patch's source slide. The md5 of the nine downloads (the .h5.gz files as downloaded and the CSVs) are "
        "pinned from the dataset's own README (GitHub basveeling/pcam, README.md, download table). Published "
        "md5 of the DEcompressed .h5 files (kaiko-ai/eva): train_x 01844da899645b4d6f84946d417ba453, train_y "
        "0781386bf6c2fb62d58ff18891466aca, valid_x 81cf9680f1724c40673f10dc88e909b1, valid_y "
        "94d8aacc249253159ce2a2e78a86e658, test_x 2614b2e6717d6356be141d9d6dbfcb7e, test_y "
        "11ed647efe9fe457a4eb45df1dba19ba."
    ),
    size="about 7.5 GB (gzipped)",
    downloads=tuple(RawFile(name=n, urls=(_ZENODO + n,), md5=md5, extract=False) for n, md5 in _MD5.items()),
)

TASKS: tuple[Task, ...] = (
    Task(
        name="PatchCamelyon",
        abbreviation="PCam",
        source=SOURCE,
        origin="CLF",
        organ="lymph node",
        stain="H&E",
        n_classes=2,
        classes=("no_tumour", "tumour"),
        metric="roc_auc",
        split_unit="slide",
        sizes=SplitSizes(
            train=SplitCount(images=262144, groups=None),
            val=SplitCount(images=32768, groups=None),
            test=SplitCount(images=32768, groups=None),
        ),
        role="extra",
        patch_px=96,
        um_per_px=0.972,
        preprocessing=(
            "The official train/valid/test HDF5 splits are kept as published (all pinned). A patch is "
            "'tumour' when its central 32x32 px holds tumour, as labelled in y. Patches are grouped by their "
            "source slide from the metadata CSV when present, else each patch is its own group. Patches are "
            "96x96 at level 2 of the Camelyon16 slides (about 0.97 um/px, 4x the 0.243 um/px scan)."
        ),
    ),
)
