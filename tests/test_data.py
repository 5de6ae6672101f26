"""course.data: every source, every error path, and the real datasets."""

from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from course import data

# --- small fixed inputs -------------------------------------------------------

def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


TINY_X_TRAIN = np.arange(3 * 28 * 28, dtype=np.uint8).reshape(3, 28, 28)
TINY_Y_TRAIN = np.array([5, 0, 4], dtype=np.uint8)
TINY_X_TEST = np.full((2, 28, 28), 7, dtype=np.uint8)
TINY_Y_TEST = np.array([1, 9], dtype=np.uint8)
# One colour per class, far apart, so labels can be checked after JPEG and shuffling.
CLASS_COLOURS = {"airplane": (250, 10, 10), "frog": (10, 250, 10), "truck": (10, 10, 250)}


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A tiny offline mirror, with MIRROR_SHA256 pointed at its files."""
    folder = tmp_path / "mirror"
    (folder / "fashion-mnist").mkdir(parents=True)
    np.savez(folder / "mnist.npz", x_train=TINY_X_TRAIN, y_train=TINY_Y_TRAIN, x_test=TINY_X_TEST, y_test=TINY_Y_TEST)
    for name, array in zip(data._FASHION_FILES, (TINY_X_TRAIN, TINY_Y_TRAIN, TINY_X_TEST, TINY_Y_TEST)):
        (folder / "fashion-mnist" / name).write_bytes(gzip.compress(_idx_bytes(array)))
    with tarfile.open(folder / "cifar10-jpeg.tar.gz", "w:gz") as tar:
        for split, per_class in (("train", 4), ("test", 2)):
            for class_name, colour in CLASS_COLOURS.items():
                for index in range(per_class):
                    buffer = io.BytesIO()
                    Image.new("RGB", (32, 32), colour).save(buffer, format="JPEG", quality=75)
                    member = tarfile.TarInfo(f"{split}/{class_name}/{index:04d}.jpg")
                    member.size = buffer.tell()
                    buffer.seek(0)
                    tar.addfile(member, buffer)
    sums = {key: data.sha256_of(folder / key) for key in data.MIRROR_SHA256}
    monkeypatch.setattr(data, "MIRROR_SHA256", sums)
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(folder))
    monkeypatch.setenv(data.CACHE_DIR_VARIABLE, str(tmp_path / "cache"))
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian-package")
    return folder


@pytest.fixture
def offline(monkeypatch):
    """Keras' downloads fail as they do without a network; returns the names Keras was asked for."""
    asked: list[str] = []
    for name in ("mnist", "fashion_mnist", "cifar10"):
        def fail(name=name):
            asked.append(name)
            raise Exception(f"URL fetch failure on https://example.invalid/{name}: no network")
        monkeypatch.setattr(getattr(keras.datasets, name), "load_data", fail)
    return asked


def _assert_tiny(arrays):
    (x_train, y_train), (x_test, y_test) = arrays
    np.testing.assert_array_equal(x_train, TINY_X_TRAIN)
    np.testing.assert_array_equal(y_train, TINY_Y_TRAIN)
    np.testing.assert_array_equal(x_test, TINY_X_TEST)
    np.testing.assert_array_equal(y_test, TINY_Y_TEST)


# --- sources --------------------------------------------------------------------

def test_sample_photo_is_the_file_scikit_learn_decodes_found_without_importing_it():
    import subprocess
    import sys

    from sklearn.datasets import load_sample_image

    for name in ("china.jpg", "flower.jpg"):
        with Image.open(data.sample_photo(name)) as photo:
            assert photo.size == (640, 427) and photo.mode == "RGB"
            assert np.array_equal(np.asarray(photo), load_sample_image(name))
    found = subprocess.run([sys.executable, "-c", "import sys; from course import data; data.sample_photo(); "
                            "print(sorted(m for m in sys.modules if m.startswith('sklearn')))"],
                           capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]"
    with pytest.raises(data.DatasetNotFoundError, match="china.jpg or flower.jpg"):
        data.sample_photo("lena.png")


def test_unknown_dataset_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown dataset 'imagenet'.*cifar10.*fashion_mnist.*mnist"):
        data.load_data("imagenet")


def test_mnist_from_mirror(mirror, offline, capsys):
    _assert_tiny(data.mnist())
    assert f"mnist: loaded from offline mirror {mirror / 'mnist.npz'}" in capsys.readouterr().out
    assert offline == []


def test_fashion_mnist_from_mirror_reads_idx_files(mirror, offline, capsys):
    _assert_tiny(data.fashion_mnist())
    assert "fashion_mnist: loaded from offline mirror" in capsys.readouterr().out


def test_fashion_mnist_from_debian_package_when_no_mirror(mirror, offline, monkeypatch, capsys):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", mirror / "fashion-mnist")
    monkeypatch.delenv(data.DATA_DIR_VARIABLE)
    _assert_tiny(data.fashion_mnist())
    assert "Debian package dataset-fashion-mnist" in capsys.readouterr().out


def test_cifar10_from_mirror_decodes_jpegs_shuffled_with_matching_labels(mirror, offline):
    (x_train, y_train), (x_test, y_test) = data.cifar10()
    assert x_train.shape == (12, 32, 32, 3) and x_train.dtype == np.uint8
    assert y_train.shape == (12, 1) and y_train.dtype == np.uint8
    assert x_test.shape == (6, 32, 32, 3) and y_test.shape == (6, 1)
    for x, y in ((x_train, y_train), (x_test, y_test)):
        for image, label in zip(x, y[:, 0]):
            colour = CLASS_COLOURS[data.CIFAR10_CLASSES[label]]
            assert np.abs(image.mean(axis=(0, 1)) - colour).max() < 8
    assert sorted(y_train[:, 0].tolist()) == [0] * 4 + [6] * 4 + [9] * 4
    assert y_train[:, 0].tolist() != sorted(y_train[:, 0].tolist()), "the class-ordered archive must be shuffled"


def test_cifar10_second_load_comes_from_the_cache(mirror, offline, monkeypatch, capsys):
    first = data.cifar10()
    monkeypatch.setattr(data, "_decode_cifar10_jpeg", lambda archive: pytest.fail("decoded twice"))
    second = data.cifar10()
    assert "decoded cache" in capsys.readouterr().out
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])


def test_cifar10_damaged_cache_is_rebuilt(mirror, offline):
    expected = data.cifar10()
    (cache,) = (Path(os.environ[data.CACHE_DIR_VARIABLE])).glob("*.npz")
    cache.write_bytes(cache.read_bytes()[:100])
    np.testing.assert_array_equal(data.cifar10()[0][0], expected[0][0])
    with np.load(cache) as f:
        assert f["x_train"].shape == (12, 32, 32, 3)


def test_interrupted_cache_write_leaves_no_file(mirror, offline, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        data.cifar10()
    cache = Path(os.environ[data.CACHE_DIR_VARIABLE])
    assert list(cache.iterdir()) == []


def test_keras_download_when_no_mirror(monkeypatch, capsys):
    monkeypatch.delenv(data.DATA_DIR_VARIABLE, raising=False)
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: ((TINY_X_TRAIN, TINY_Y_TRAIN), (TINY_X_TEST, TINY_Y_TEST)))
    _assert_tiny(data.mnist())
    assert "mnist: loaded from keras.datasets.mnist" in capsys.readouterr().out


def test_missing_mirror_file_falls_through_to_keras(mirror, monkeypatch, capsys):
    (mirror / "mnist.npz").unlink()
    monkeypatch.setattr(keras.datasets.mnist, "load_data", lambda: ((TINY_X_TRAIN, TINY_Y_TRAIN), (TINY_X_TEST, TINY_Y_TEST)))
    _assert_tiny(data.mnist())
    assert "keras.datasets.mnist" in capsys.readouterr().out


# --- errors ---------------------------------------------------------------------------

def test_no_network_and_no_mirror_says_what_was_tried_and_what_to_do(offline, monkeypatch, tmp_path):
    monkeypatch.delenv(data.DATA_DIR_VARIABLE, raising=False)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "absent")
    with pytest.raises(data.DatasetNotFoundError) as error:
        data.fashion_mnist()
    message = str(error.value)
    assert "COURSE_DATA_DIR is not set" in message
    assert f"{tmp_path / 'absent'} lacks train-images-idx3-ubyte.gz" in message
    assert "URL fetch failure" in message
    assert "What to do: connect to the internet" in message and "export COURSE_DATA_DIR=" in message


def test_missing_mirror_file_and_no_network_names_the_file(mirror, offline):
    (mirror / "cifar10-jpeg.tar.gz").unlink()
    with pytest.raises(data.DatasetNotFoundError, match=r"cifar10-jpeg\.tar\.gz does not exist"):
        data.cifar10()


def test_mirror_variable_pointing_nowhere_is_an_error(offline, monkeypatch, tmp_path):
    monkeypatch.setenv(data.DATA_DIR_VARIABLE, str(tmp_path / "typo"))
    with pytest.raises(data.DatasetNotFoundError, match="is not a folder"):
        data.mnist()
    assert offline == []


@pytest.mark.parametrize("name, key", [
    ("mnist", "mnist.npz"),
    ("fashion_mnist", "fashion-mnist/t10k-labels-idx1-ubyte.gz"),
    ("cifar10", "cifar10-jpeg.tar.gz"),
])
def test_truncated_mirror_file_is_an_error_not_a_fallback(mirror, offline, name, key):
    path = mirror / key
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(data.CorruptDatasetError, match=r"damaged or not the expected file.*sha256sum -c SHA256SUMS"):
        data.load_data(name)
    assert offline == [], "a damaged mirror must not fall back to another source"
    assert not Path(os.environ[data.CACHE_DIR_VARIABLE]).exists(), "nothing may be cached from a damaged file"


def test_idx_file_whose_header_disagrees_with_its_data_is_rejected(tmp_path):
    path = tmp_path / "bad-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(_idx_bytes(TINY_Y_TRAIN)[:-1]))
    with pytest.raises(data.CorruptDatasetError, match=r"holds 2 bytes of data, its header says \(3,\)"):
        data._read_idx(path)


def test_checksums_match_the_shared_sha256sums_file():
    sums = Path(__file__).parents[1] / ".." / "shared" / "datasets" / "SHA256SUMS"
    if not sums.is_file():
        pytest.skip("shared/datasets/SHA256SUMS is not beside this checkout")
    listed = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
    assert listed == data.MIRROR_SHA256


# --- the real datasets (the offline mirror) ----------------------------------------

@pytest.fixture(scope="module")
def real_mirror(tmp_path_factory):
    folder = os.environ.get(data.DATA_DIR_VARIABLE)
    if not folder:
        if os.environ.get("CI"):
            pytest.fail("CI must set COURSE_DATA_DIR (see .ci/run): the real-data tests may not be skipped there")
        pytest.skip("COURSE_DATA_DIR is not set: no offline copy of the real datasets")
    return Path(folder)


def test_real_mnist(real_mirror):
    (x_train, y_train), (x_test, y_test) = data.mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert y_train.shape == (60000,) and y_test.shape == (10000,)
    assert {x_train.dtype, y_train.dtype, x_test.dtype, y_test.dtype} == {np.dtype(np.uint8)}
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert set(np.unique(y_train)) == set(range(10)) and x_train.max() == 255


def test_real_fashion_mnist(real_mirror):
    (x_train, y_train), (x_test, y_test) = data.fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_test.dtype == np.uint8
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
    assert len(data.FASHION_MNIST_CLASSES) == 10


def test_real_cifar10(real_mirror, tmp_path_factory, monkeypatch):
    monkeypatch.setenv(data.CACHE_DIR_VARIABLE, str(tmp_path_factory.mktemp("cifar-cache")))
    (x_train, y_train), (x_test, y_test) = data.cifar10()
    assert x_train.shape == (50000, 32, 32, 3) and x_test.shape == (10000, 32, 32, 3)
    assert y_train.shape == (50000, 1) and y_test.shape == (10000, 1)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.uint8
    assert np.bincount(y_train[:, 0]).tolist() == [5000] * 10
    assert np.bincount(y_test[:, 0]).tolist() == [1000] * 10
    # The README's channel means for the JPEG copy: 125.3 / 122.9 / 113.9.
    np.testing.assert_allclose(x_train.mean(axis=(0, 1, 2)), [125.3, 122.9, 113.9], atol=0.06)
    # Shuffled: the last 10,000 (a typical validation slice) hold every class.
    assert np.bincount(y_train[-10000:, 0], minlength=10).min() > 900
