"""Sequential-MNIST data: sources, validation (one-line errors naming the path), split, tasks."""

from __future__ import annotations

import gzip
import hashlib
import struct
import subprocess
import sys

import numpy as np
import pytest

from bench.errors import UserError
from bench.tta import mnist as data

# sha256 of data.permutation(0) as little-endian int64: pins the `permuted` task's pixel order,
# so a NumPy change to the seeded stream shows up here instead of as incomparable results.
PERMUTATION_0_SHA256 = "3aa79b80c498bc4ee33c62762c6895443a58f28229ef2110a17c016a0653f9d5"


@pytest.fixture(scope="module")
def subset() -> data.Mnist:
    return data.load_subset()


def _tiny_arrays(n_train=20, n_test=10, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train).astype(np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test).astype(np.uint8),
    }


def _write_idx(path, array: np.ndarray) -> None:
    magic = 0x00000803 if array.ndim == 3 else 0x00000801
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def _idx_folder(tmp_path, arrays=None):
    arrays = arrays or _tiny_arrays()
    folder = tmp_path / "idx"
    folder.mkdir()
    for key, name in data.IDX_FILES.items():
        _write_idx(folder / name, arrays[key])
    return folder, arrays


# The vendored subset ----------------------------------------------------------------------------

def test_subset_split_is_4000_1000_stratified(subset):
    assert subset.x_train.shape == (4000, 28, 28)
    assert subset.x_test.shape == (1000, 28, 28)
    assert subset.x_train.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(subset.y_train, minlength=10), [400] * 10)
    np.testing.assert_array_equal(np.bincount(subset.y_test, minlength=10), [100] * 10)
    assert subset.source == "subset"
    assert subset.sha256 == data.SUBSET_SHA256


def test_subset_split_is_fixed_and_disjoint(subset):
    again = data.load_subset()
    np.testing.assert_array_equal(again.x_test, subset.x_test)
    with np.load(data.SUBSET_PATH) as npz:
        labels = npz["labels"]
    train_idx, test_idx = data.stratified_split(labels, 1000, data.SPLIT_SEED)
    assert len(np.intersect1d(train_idx, test_idx)) == 0
    assert len(train_idx) + len(test_idx) == 5000
    _, other_test = data.stratified_split(labels, 1000, seed=1)
    assert not np.array_equal(test_idx, other_test)


def test_stratified_split_shares_add_up_for_unbalanced_classes():
    labels = np.array([0] * 7 + [1] * 2 + [2] * 1)
    train_idx, test_idx = data.stratified_split(labels, 5, seed=3)
    assert len(test_idx) == 5
    assert len(train_idx) == 5
    # exact shares 3.5, 1.0, 0.5: floors 3, 1, 0; the one left goes to the first tied remainder
    assert np.bincount(labels[test_idx], minlength=3).tolist() == [4, 1, 0]


def test_subset_checksum_mismatch_names_the_path(tmp_path):
    copy = tmp_path / "mnist_5k.npz"
    raw = bytearray(data.SUBSET_PATH.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    copy.write_bytes(bytes(raw))
    with pytest.raises(UserError, match=r"mnist_5k\.npz: sha256 .* does not match"):
        data.load_subset(copy)


def test_subset_missing_file(tmp_path):
    with pytest.raises(UserError, match="missing"):
        data.load_subset(tmp_path / "gone.npz")


# --data PATH: npz files --------------------------------------------------------------------------

def test_keras_style_npz_loads_and_records_source(tmp_path):
    path = tmp_path / "mnist.npz"
    arrays = _tiny_arrays()
    np.savez(path, **arrays)
    mnist = data.load_mnist(path)
    assert mnist.source == "file"
    assert mnist.describe()["n_train"] == 20
    assert mnist.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    np.testing.assert_array_equal(mnist.y_test, arrays["y_test"])


def test_missing_data_path_is_one_line_error(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(UserError, match=r"nope\.npz: no such file") as err:
        data.load_mnist(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("payload", [b"", b"this is not a zip file", b"PK\x03\x04garbage"],
                         ids=["empty", "text", "broken-zip"])
def test_corrupt_npz_is_one_line_error(tmp_path, payload):
    path = tmp_path / "mnist.npz"
    path.write_bytes(payload)
    with pytest.raises(UserError, match=r"mnist\.npz: not a readable \.npz") as err:
        data.load_mnist(path)
    assert "\n" not in str(err.value)


def test_truncated_npz_is_one_line_error(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez_compressed(path, **_tiny_arrays(200, 100))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(UserError, match=r"mnist\.npz: not a readable \.npz"):
        data.load_mnist(path)


def test_npy_instead_of_npz_is_one_line_error(tmp_path):
    path = tmp_path / "images.npy"
    np.save(path, _tiny_arrays()["x_train"])
    with pytest.raises(UserError, match=r"images\.npy: a single \.npy array, expected an \.npz"):
        data.load_mnist(path)


@pytest.mark.parametrize(("change", "message"), [
    ("drop-y_test", r"missing array\(s\) y_test"),
    ("float-images", r"x_train has dtype float32, expected uint8"),
    ("wrong-shape", r"x_test has shape \(10, 28, 27\)"),
    ("label-10", r"y_train has labels in 0\.\.10, expected 0-9"),
    ("label-negative", r"y_test has labels in -1\.\."),
    ("label-count", r"y_train has shape \(19,\), expected \(20,\)"),
    ("float-labels", r"y_test has dtype float64"),
    ("no-images", r"x_train has shape \(0, 28, 28\)"),
])
def test_invalid_npz_content_names_path_and_problem(tmp_path, change, message):
    arrays = _tiny_arrays()
    if change == "drop-y_test":
        del arrays["y_test"]
    elif change == "float-images":
        arrays["x_train"] = arrays["x_train"].astype(np.float32)
    elif change == "wrong-shape":
        arrays["x_test"] = arrays["x_test"][:, :, :27]
    elif change == "label-10":
        arrays["y_train"][3] = 10
    elif change == "label-negative":
        arrays["y_test"] = arrays["y_test"].astype(np.int64)
        arrays["y_test"][0] = -1
    elif change == "label-count":
        arrays["y_train"] = arrays["y_train"][:19]
    elif change == "float-labels":
        arrays["y_test"] = arrays["y_test"].astype(np.float64)
    elif change == "no-images":
        arrays["x_train"] = arrays["x_train"][:0]
        arrays["y_train"] = arrays["y_train"][:0]
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(UserError, match=rf"bad\.npz: {message}"):
        data.load_mnist(path)


def test_word_subset_picks_the_vendored_subset():
    assert data.load_mnist("subset").source == "subset"


# --data FOLDER: IDX files ------------------------------------------------------------------------

def test_idx_folder_loads(tmp_path):
    folder, arrays = _idx_folder(tmp_path)
    mnist = data.load_mnist(folder)
    assert mnist.source == "idx"
    np.testing.assert_array_equal(mnist.x_train, arrays["x_train"])
    np.testing.assert_array_equal(mnist.y_test, arrays["y_test"])


def test_idx_folder_missing_file(tmp_path):
    folder, _ = _idx_folder(tmp_path)
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match=r"idx: missing t10k-labels-idx1-ubyte\.gz"):
        data.load_mnist(folder)


def test_idx_bad_magic(tmp_path):
    folder, arrays = _idx_folder(tmp_path)
    _write_idx(folder / "train-labels-idx1-ubyte.gz", arrays["x_train"])  # images as labels
    with pytest.raises(UserError, match=r"train-labels-idx1-ubyte\.gz: IDX magic"):
        data.load_mnist(folder)


def test_idx_truncated_payload(tmp_path):
    folder, _ = _idx_folder(tmp_path)
    path = folder / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte\.gz: IDX header says"):
        data.load_mnist(folder)


def test_idx_not_gzip(tmp_path):
    folder, _ = _idx_folder(tmp_path)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"plain text")
    with pytest.raises(UserError, match=r"t10k-images-idx3-ubyte\.gz: not a readable gzip"):
        data.load_mnist(folder)


def test_idx_label_count_mismatch(tmp_path):
    arrays = _tiny_arrays()
    arrays["y_test"] = arrays["y_test"][:9]
    folder, _ = _idx_folder(tmp_path, arrays)
    with pytest.raises(UserError, match=r"9 labels for 10 images"):
        data.load_mnist(folder)


# Source order: cache, download, subset -----------------------------------------------------------

def test_no_cache_falls_back_to_subset(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "download", lambda *a, **k: pytest.fail("must not download"))
    mnist = data.load_mnist(cache_path=tmp_path / "datasets" / "mnist.npz")
    assert mnist.source == "subset"


def test_cache_with_wrong_checksum_is_refused(tmp_path):
    cache = tmp_path / "datasets" / "mnist.npz"
    cache.parent.mkdir()
    np.savez(cache, **_tiny_arrays())  # valid structure, but not Keras's file
    with pytest.raises(UserError, match=r"datasets/mnist\.npz: sha256 .* does not match"):
        data.load_mnist(cache_path=cache)


def test_cache_with_right_checksum_is_used(tmp_path, monkeypatch):
    cache = tmp_path / "datasets" / "mnist.npz"
    cache.parent.mkdir()
    np.savez(cache, **_tiny_arrays())
    monkeypatch.setattr(data, "KERAS_MNIST_SHA256", data.sha256_of(cache))
    assert data.load_mnist(cache_path=cache).source == "keras-cache"


def test_download_only_when_asked(tmp_path, monkeypatch):
    calls = []

    def fake_download(cache_dir=None):
        calls.append(cache_dir)
        return "downloaded"

    monkeypatch.setattr(data, "download", fake_download)
    cache = tmp_path / "datasets" / "mnist.npz"
    assert data.load_mnist(cache_path=cache).source == "subset"
    assert calls == []
    assert data.load_mnist(cache_path=cache, download_ok=True) == "downloaded"
    cache.parent.mkdir()
    cache.write_bytes(b"partial download")
    assert data.load_mnist(cache_path=cache, download_ok=True) == "downloaded"
    assert calls == [tmp_path, tmp_path]


def test_data_path_wins_over_cache(tmp_path):
    path = tmp_path / "mine.npz"
    np.savez(path, **_tiny_arrays())
    cache = tmp_path / "datasets" / "mnist.npz"
    cache.parent.mkdir()
    cache.write_bytes(b"corrupt cache that must not be read")
    assert data.load_mnist(path, cache_path=cache).source == "file"


def test_keras_cache_path_honours_keras_home(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert data.keras_cache_path() == tmp_path / "datasets" / "mnist.npz"


# Tasks ------------------------------------------------------------------------------------------

def test_task_shapes_and_scaling(subset):
    row = data.task_data(subset, "row")
    assert row.x_train.shape == (4000, 28, 28)
    assert (row.seq_len, row.input_size) == (28, 28)
    assert row.x_train.dtype == np.float32
    assert row.y_train.dtype == np.int32
    assert row.x_train.min() >= 0.0
    assert row.x_train.max() == 1.0
    assert row.permutation is None
    assert row.permutation_seed is None
    pixel = data.task_data(subset, "pixel")
    assert pixel.x_test.shape == (1000, 784, 1)
    assert (pixel.seq_len, pixel.input_size) == (784, 1)
    np.testing.assert_array_equal(pixel.x_test[:, :, 0], row.x_test.reshape(1000, 784))


def test_permuted_task_uses_the_fixed_permutation(subset):
    pixel = data.task_data(subset, "pixel")
    permuted = data.task_data(subset, "permuted")
    perm = data.permutation(data.PERMUTATION_SEED)
    assert sorted(perm.tolist()) == list(range(784))
    assert not np.array_equal(perm, np.arange(784))
    np.testing.assert_array_equal(permuted.x_train[:, :, 0], pixel.x_train[:, perm, 0])
    np.testing.assert_array_equal(permuted.permutation, perm)
    assert permuted.permutation_seed == data.PERMUTATION_SEED
    assert permuted.permutation_sha256 == PERMUTATION_0_SHA256
    assert not np.array_equal(data.permutation(1), perm)


def test_unknown_task(subset):
    with pytest.raises(UserError, match="unknown task 'column'; valid: row, pixel, permuted"):
        data.task_data(subset, "column")


def test_data_module_does_not_import_tensorflow(tmp_path):
    path = tmp_path / "mnist.npz"
    np.savez(path, **_tiny_arrays())
    code = (f"import sys, bench.tta.mnist as d; d.load_mnist({str(path)!r}); d.load_subset(); "
            "d.task_data(d.load_subset(), 'permuted'); "
            "sys.exit('tensorflow' in sys.modules or 'keras' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
