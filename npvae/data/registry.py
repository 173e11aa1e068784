"""Which data sets exist and which files they are made of.

Constants of the data conventions (docs/12-data.md), the errors of
:mod:`npvae.data`, and :data:`REGISTRY`: the expected SHA-256, size and public
mirrors of every data file (the published SHA-256 checksums).

Dataset folders: ``mnist``, ``fashion-mnist``, ``binarized_mnist``, ``frey``
(:data:`DATASET_FOLDERS`). The data set names that :func:`load_dataset
<npvae.data.load_dataset>` accepts, their aliases and default binarisations are
here too, so that file resolution and loading agree on them.
"""

from __future__ import annotations

from typing import NamedTuple

BINARIZATIONS = ("none", "static", "dynamic")

#: Seed of the single dynamic binarisation of a test set (docs/12-data.md).
TEST_BINARIZATION_SEED = 0
#: Seed of the single dynamic binarisation of a validation set.
VALID_BINARIZATION_SEED = 1
#: Seed of the fixed train/test split of data sets without an official one.
TEST_SPLIT_SEED = 0
#: Test examples held out from Frey faces (1965 rows -> 1765 train, 200 test).
FREY_TEST_SIZE = 200
#: Test examples held out from scikit-learn digits (1797 -> 1500 train, 297 test).
DIGITS_TEST_SIZE = 297
#: Seed and sizes (train, test) of the generated "synthetic" data set.
SYNTHETIC_SEED = 0
SYNTHETIC_SIZES = (2000, 500)
SYNTHETIC_SIDE = 16

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

class ChecksumError(ValueError):
    """A file's SHA-256 (or size) differs from the registry.

    Attributes ``path``, ``expected`` and ``actual`` hold the file and the two
    hex digests.
    """

    def __init__(self, path, expected: str, actual: str, detail: str = ""):
        self.path, self.expected, self.actual = str(path), expected, actual
        super().__init__(
            f"checksum mismatch for {path}: expected SHA-256 {expected}, got "
            f"{actual}{detail}. The file is corrupt, truncated or a different "
            "file; delete or replace it (it is not retried automatically)."
        )


class DataFormatError(ValueError):
    """A data file does not have the layout its parser expects."""


class DataNotFoundError(FileNotFoundError):
    """A data file is in none of the searched places and could not be downloaded."""


class DownloadError(OSError):
    """Every mirror of a file failed (network error, HTTP error, timeout)."""


# ---------------------------------------------------------------------------
# Registry (the published SHA-256 checksums and sizes)
# ---------------------------------------------------------------------------

class FileSpec(NamedTuple):
    """Expected SHA-256 (hex), size in bytes and download URLs of one file."""

    sha256: str
    size: int
    urls: tuple[str, ...] = ()


_MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
_FASHION_MIRRORS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
_LAROCHELLE_MIRRORS = (
    "http://www.cs.toronto.edu/~larocheh/public/datasets/binarized_mnist/",
)


def _urls(mirrors: tuple[str, ...], filename: str) -> tuple[str, ...]:
    return tuple(mirror + filename for mirror in mirrors)


def _idx_files(mirrors, table) -> dict[str, FileSpec]:
    return {name: FileSpec(sha, size, _urls(mirrors, name)) for name, sha, size in table}


#: Folder of each data set inside a data root (``<root>/<folder>/<file>``).
DATASET_FOLDERS = {
    "mnist": "mnist",
    "fashion_mnist": "fashion-mnist",
    "binarized_mnist": "binarized_mnist",
    "frey": "frey",
}

#: ``REGISTRY[dataset][filename] -> FileSpec``. Binarized MNIST has two forms:
#: packed ``.npz`` files (no public mirror) and the original ``.amat`` text
#: files (downloadable); either is accepted.
#: Frey faces have no public ``.npz`` mirror.
REGISTRY: dict[str, dict[str, FileSpec]] = {
    "mnist": _idx_files(_MNIST_MIRRORS, [
        ("train-images-idx3-ubyte.gz",
         "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        ("train-labels-idx1-ubyte.gz",
         "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        ("t10k-images-idx3-ubyte.gz",
         "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        ("t10k-labels-idx1-ubyte.gz",
         "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    ]),
    "fashion_mnist": _idx_files(_FASHION_MIRRORS, [
        ("train-images-idx3-ubyte.gz",
         "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
        ("train-labels-idx1-ubyte.gz",
         "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
        ("t10k-images-idx3-ubyte.gz",
         "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
        ("t10k-labels-idx1-ubyte.gz",
         "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
    ]),
    "binarized_mnist": {
        "binarized_mnist_train.npz": FileSpec(
            "23f56d87e1986a52ff30d482e0c3e11fddb2cb63eabf2222e0b11c9159dc451d", 1678416),
        "binarized_mnist_valid.npz": FileSpec(
            "83cf372fdd44271e33f77e470fe6a8e15a7d03b7d4379d54f01bef505e1ee64f", 336484),
        "binarized_mnist_test.npz": FileSpec(
            "108c4b5cfb025335ced77fd5d264ac1b90fbb05bb9947e93bc6b9e11857c0c0e", 321925),
        **_idx_files(_LAROCHELLE_MIRRORS, [
            ("binarized_mnist_train.amat",
             "ad693b29f94c14277b095f5238ddefbbdaaae0939789dd2f4f0205278cee3e4d", 78400000),
            ("binarized_mnist_valid.amat",
             "1de3d397c40fe8eeb33dafd4099a1f665ec01e96d9be234aaeeac8a34930e2e2", 15680000),
            ("binarized_mnist_test.amat",
             "e6687bfea3f820c174f33b7865140b2a2dd2930ef786f35d45795fc193b5ab2c", 15680000),
        ]),
    },
    "frey": {
        "frey_faces.npz": FileSpec(
            "f77467ecfe9f1cb16110170ded97a59f6cf12ebf7dae23c78542285cba5b87aa", 997077),
    },
}


# ---------------------------------------------------------------------------
# Data set names
# ---------------------------------------------------------------------------

_DEFAULT_BINARIZATION = {
    "mnist": "dynamic",
    "fashion_mnist": "dynamic",
    "binarized_mnist": "static",
    "frey": "none",
    "digits": "dynamic",
    "synthetic": "none",
}
_ALIASES = {"fashion": "fashion_mnist", "binarised_mnist": "binarized_mnist",
            "frey_faces": "frey", "freyfaces": "frey"}


def available_datasets() -> tuple[str, ...]:
    """Names accepted by :func:`~npvae.data.load_dataset`."""
    return tuple(_DEFAULT_BINARIZATION)


def _canonical_name(name: str) -> str:
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _DEFAULT_BINARIZATION:
        raise ValueError(f"unknown data set {name!r}; known data sets: "
                         f"{', '.join(available_datasets())}")
    return key
