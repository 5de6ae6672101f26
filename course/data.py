"""The course's three datasets, online or from an offline mirror.

Introduced in ``01_images``. Each loader returns exactly what
``keras.datasets.<name>.load_data()`` returns::

    (x_train, y_train), (x_test, y_test) = course.data.mnist()

Sources are tried in this order, and one line says which one served the data:

1. The offline mirror folder named by the environment variable
   ``COURSE_DATA_DIR`` (the layout of the course's ``shared/datasets``:
   ``mnist.npz``, ``fashion-mnist/*.gz``, ``cifar10-jpeg.tar.gz``). Every file
   is checked against its SHA-256 before use.
2. Debian's package ``dataset-fashion-mnist`` (Fashion-MNIST only).
3. ``keras.datasets``, which downloads on first use (Colab, online machines).

A mirror file that is present but damaged stops with an error rather than
falling through: a later source could serve different bytes, and a broken
mirror should be repaired, not hidden.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import importlib.util
import io
import os
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

Arrays = tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]

DATA_DIR_VARIABLE = "COURSE_DATA_DIR"
CACHE_DIR_VARIABLE = "COURSE_CACHE_DIR"
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

# SHA-256 of the mirror's files (shared/datasets/SHA256SUMS). Fashion-MNIST's
# files are byte-identical to the originals, so the same sums check Debian's copy.
MIRROR_SHA256 = {
    "mnist.npz": "06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",
    "fashion-mnist/train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "fashion-mnist/train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "fashion-mnist/t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "fashion-mnist/t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
    "cifar10-jpeg.tar.gz": "45b041e867f5a40f79bfde38d3dd1fd511103d50068c1afecf6445e25234d4db",
}

# The JPEG mirror is stored by class; a fixed shuffle restores a mixed order so
# that any slice (e.g. the last 10,000 as validation) holds every class.
CIFAR10_SHUFFLE_SEED = 20091

_FASHION_FILES = (
    "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
)


class DatasetError(RuntimeError):
    """A dataset could not be loaded; the message says what was tried and what to do."""


class DatasetNotFoundError(DatasetError):
    """No source could provide the dataset."""


class CorruptDatasetError(DatasetError):
    """A dataset file exists but is damaged (wrong checksum or unreadable)."""


def mnist() -> Arrays:
    """MNIST digits: x (N, 28, 28) uint8, y (N,) uint8; 60,000 train, 10,000 test."""
    return load_data("mnist")


def fashion_mnist() -> Arrays:
    """Fashion-MNIST: x (N, 28, 28) uint8, y (N,) uint8; names in FASHION_MNIST_CLASSES."""
    return load_data("fashion_mnist")


def cifar10() -> Arrays:
    """CIFAR-10: x (N, 32, 32, 3) uint8, y (N, 1) uint8; names in CIFAR10_CLASSES."""
    return load_data("cifar10")


def sample_photo(name: str = "china.jpg") -> Path:
    """The JPEG file of one of scikit-learn's two sample photographs (``china.jpg``, ``flower.jpg``: 640 x 427,
    RGB), the file ``sklearn.datasets.load_sample_image(name)`` decodes.

    Introduced in ``01_images``. It is found without importing scikit-learn, which takes a
    second of every kernel's start (of every graded submission too) for one file."""
    spec = importlib.util.find_spec("sklearn")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "datasets" / "images" / name
        if path.is_file():
            return path
    if not folders:
        raise DatasetNotFoundError(f"No sample photo {name!r}: it ships with scikit-learn (`pip install scikit-learn`), "
                                   "as china.jpg and flower.jpg.")
    raise DatasetNotFoundError(f"No sample photo {name!r} in scikit-learn's datasets/images: use china.jpg or flower.jpg.")


def load_data(name: str) -> Arrays:
    """Load dataset ``name`` ("mnist", "fashion_mnist" or "cifar10") from the first source that has it."""
    if name not in _SOURCES:
        raise ValueError(f"Unknown dataset {name!r}; choose one of {sorted(_SOURCES)}.")
    tried: list[str] = []
    for source in _SOURCES[name]:
        result = source(tried)
        if result is not None:
            arrays, where = result
            print(f"{name}: loaded from {where}")
            return arrays
    raise DatasetNotFoundError(
        f"Could not load {name!r}. Tried:\n"
        + "".join(f"  - {line}\n" for line in tried)
        + "What to do: connect to the internet (Keras downloads it on first use), or set "
        f"{DATA_DIR_VARIABLE} to a folder holding the course's offline copies "
        "(mnist.npz, fashion-mnist/, cifar10-jpeg.tar.gz), e.g. "
        f"`export {DATA_DIR_VARIABLE}=../shared/datasets`."
    )


# --- sources -----------------------------------------------------------------
# Each returns (arrays, description) or None after appending what it tried.

def _mirror_dir(tried: list[str]) -> Path | None:
    value = os.environ.get(DATA_DIR_VARIABLE)
    if not value:
        tried.append(f"offline mirror: {DATA_DIR_VARIABLE} is not set")
        return None
    folder = Path(value).expanduser()
    if not folder.is_dir():
        raise DatasetNotFoundError(
            f"{DATA_DIR_VARIABLE}={value} is not a folder. Point it at the folder holding "
            "the course's offline copies, or unset it to download with Keras."
        )
    return folder


def _mnist_from_mirror(tried: list[str]) -> tuple[Arrays, str] | None:
    folder = _mirror_dir(tried)
    if folder is None:
        return None
    path = folder / "mnist.npz"
    if not path.is_file():
        tried.append(f"offline mirror: {path} does not exist")
        return None
    _verify(path, "mnist.npz")
    with np.load(path) as f:
        arrays = (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
    return arrays, f"offline mirror {path}"


def _fashion_mnist_from_folder(folder: Path, label: str, tried: list[str]) -> tuple[Arrays, str] | None:
    missing = [n for n in _FASHION_FILES if not (folder / n).is_file()]
    if missing:
        tried.append(f"{label}: {folder} lacks {', '.join(missing)}")
        return None
    for n in _FASHION_FILES:
        _verify(folder / n, f"fashion-mnist/{n}")
    x_train, y_train, x_test, y_test = (_read_idx(folder / n) for n in _FASHION_FILES)
    return ((x_train, y_train), (x_test, y_test)), f"{label} {folder}"


def _fashion_mnist_from_mirror(tried: list[str]) -> tuple[Arrays, str] | None:
    folder = _mirror_dir(tried)
    if folder is None:
        return None
    return _fashion_mnist_from_folder(folder / "fashion-mnist", "offline mirror", tried)


def _fashion_mnist_from_debian(tried: list[str]) -> tuple[Arrays, str] | None:
    return _fashion_mnist_from_folder(DEBIAN_FASHION_MNIST_DIR, "Debian package dataset-fashion-mnist", tried)


def _cifar10_from_mirror(tried: list[str]) -> tuple[Arrays, str] | None:
    folder = _mirror_dir(tried)
    if folder is None:
        return None
    archive = folder / "cifar10-jpeg.tar.gz"
    if not archive.is_file():
        tried.append(f"offline mirror: {archive} does not exist")
        return None
    digest = _verify(archive, "cifar10-jpeg.tar.gz")
    cache = cache_dir() / f"cifar10-jpeg-{digest[:16]}.npz"
    if cache.is_file():
        try:
            with np.load(cache) as f:
                arrays = (f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])
            return arrays, f"offline mirror {archive} (decoded cache {cache})"
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            with contextlib.suppress(OSError):  # a damaged cache is rebuilt from the verified archive
                cache.unlink()
    arrays = _decode_cifar10_jpeg(archive)
    try:
        _atomic_save_npz(cache, arrays)
    except OSError:  # a read-only cache (the grading sandbox): decode again next time
        return arrays, f"offline mirror {archive} (JPEG copy, decoded; cache {cache} not writable)"
    return arrays, f"offline mirror {archive} (JPEG copy, decoded once into {cache})"


def _from_keras(name: str) -> Callable[[list[str]], tuple[Arrays, str] | None]:
    def source(tried: list[str]) -> tuple[Arrays, str] | None:
        import keras  # imported here: TensorFlow takes seconds to import

        try:
            arrays = getattr(keras.datasets, name).load_data()
        except Exception as error:  # Keras raises a bare Exception when offline
            tried.append(f"keras.datasets.{name}.load_data(): {error}")
            return None
        return arrays, f"keras.datasets.{name} (downloaded or cached by Keras)"

    return source


_SOURCES: dict[str, tuple[Callable[[list[str]], tuple[Arrays, str] | None], ...]] = {
    "mnist": (_mnist_from_mirror, _from_keras("mnist")),
    "fashion_mnist": (_fashion_mnist_from_mirror, _fashion_mnist_from_debian, _from_keras("fashion_mnist")),
    "cifar10": (_cifar10_from_mirror, _from_keras("cifar10")),
}


# --- file formats ---------------------------------------------------------------

def cache_dir() -> Path:
    """Where decoded arrays are kept: ``$COURSE_CACHE_DIR`` or ``~/.cache/cnn-course``."""
    return Path(os.environ.get(CACHE_DIR_VARIABLE) or Path.home() / ".cache" / "cnn-course").expanduser()


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _verify(path: Path, key: str) -> str:
    actual = sha256_of(path)
    expected = MIRROR_SHA256[key]
    if actual != expected:
        raise CorruptDatasetError(
            f"{path} is damaged or not the expected file: SHA-256 {actual}, expected {expected}. "
            "Copy it again from the course's shared datasets (check with `sha256sum -c SHA256SUMS`), "
            f"or remove it to fall back to the next source."
        )
    return actual


def _read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST/Fashion-MNIST format) into a uint8 array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise CorruptDatasetError(f"{path} is not an unsigned-byte IDX file.")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise CorruptDatasetError(f"{path} holds {len(data) - offset} bytes of data, its header says {shape}.")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def _decode_cifar10_jpeg(archive: Path) -> Arrays:
    """Decode ``{train,test}/<class>/NNNN.jpg`` into Keras' CIFAR-10 arrays, shuffled reproducibly."""
    from PIL import Image

    images: dict[str, list[np.ndarray]] = {"train": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "test": []}
    with tarfile.open(archive) as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 3 or parts[0] not in images:
                continue
            split, class_name, _ = parts
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as image:
                images[split].append(np.asarray(image.convert("RGB"), dtype=np.uint8))
            labels[split].append(CIFAR10_CLASSES.index(class_name))
    rng = np.random.default_rng(CIFAR10_SHUFFLE_SEED)
    out = []
    for split in ("train", "test"):
        x = np.stack(images[split])
        y = np.asarray(labels[split], dtype=np.uint8).reshape(-1, 1)
        order = rng.permutation(len(x))
        out.append((x[order], y[order]))
    return out[0], out[1]


def _atomic_save_npz(path: Path, arrays: Arrays) -> None:
    """Write the cache through a temporary file, so an interrupted write leaves no half file."""
    (x_train, y_train), (x_test, y_test) = arrays
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
