"""Sequential MNIST for time-to-accuracy: find, validate and split the data; shape it per task.

Sources, in order of preference (the chosen one is recorded with every result):
  (a) `--data PATH`: a Keras-style mnist.npz (x_train, y_train, x_test, y_test) or a folder with
      the four MNIST `*-ubyte.gz` IDX files; the word `subset` picks (d) explicitly;
  (b) the Keras cache, `$KERAS_HOME/datasets/mnist.npz` (default `~/.keras`), checksum-verified;
  (c) with `--download`: `keras.utils.get_file` with Keras's known sha256 (needs the internet);
  (d) offline: the vendored 5,000-image subset `bench/data/mnist_5k.npz`, split 4,000 train /
      1,000 held out, stratified by class with a fixed seed.
Every file is checked (shape, dtype, label range, checksum where one is known); a problem is a
one-line UserError naming the path. No TensorFlow here (Keras is imported only to download).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.errors import UserError

TASKS = ("row", "pixel", "permuted")
IMAGE_SIDE = 28
NUM_CLASSES = 10

SUBSET_PATH = Path(__file__).resolve().parent.parent / "data" / "mnist_5k.npz"
SUBSET_SHA256 = "246e0c30eeea57c8d0037d3f38c8e00651ec204cc61b8022563e9aeeb9d756f4"
SUBSET_SIZE = 5000
SUBSET_HELDOUT = 1000
SPLIT_SEED = 0  # the stratified 4,000 / 1,000 split of the subset
PERMUTATION_SEED = 0  # the pixel order of the `permuted` task

KERAS_MNIST_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
KERAS_MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
_IDX_MAGIC = {3: 0x00000803, 1: 0x00000801}  # images (3 dims), labels (1 dim), unsigned bytes

# Source labels recorded in results (`settings.data_source`).
SOURCE_SUBSET = "subset"
SOURCE_FILE = "file"
SOURCE_IDX = "idx"
SOURCE_CACHE = "keras-cache"
SOURCE_DOWNLOAD = "download"


@dataclass(frozen=True)
class Mnist:
    """Validated MNIST images (uint8 [N, 28, 28]), labels (int64 [N]) and their source."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str
    path: str
    sha256: str | None

    def describe(self) -> dict:
        """What results record about the data: source, path, checksum and split sizes."""
        counts = np.bincount(self.y_test) if len(self.y_test) else np.zeros(1, int)
        return {"data_source": self.source, "data_path": self.path, "data_sha256": self.sha256,
                "n_train": len(self.y_train), "n_heldout": len(self.y_test),
                # what a model that always guesses the commonest class scores (chance level)
                "heldout_classes": int(np.count_nonzero(counts)),
                "heldout_majority": round(float(counts.max()) / max(len(self.y_test), 1), 4)}


@dataclass(frozen=True)
class TaskData:
    """One task's float32 inputs [N, T, I] in 0..1, int32 labels, and its permutation if any."""

    task: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    permutation_seed: int | None
    permutation: np.ndarray | None

    @property
    def permutation_sha256(self) -> str | None:
        """sha256 of the permutation (int64 bytes): proves two runs used the same pixel order."""
        if self.permutation is None:
            return None
        return hashlib.sha256(self.permutation.astype("<i8").tobytes()).hexdigest()

    @property
    def seq_len(self) -> int:
        """Time steps per sequence (28 for row, 784 for pixel/permuted)."""
        return self.x_train.shape[1]

    @property
    def input_size(self) -> int:
        """Features per time step (28 for row, 1 for pixel/permuted)."""
        return self.x_train.shape[2]


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def keras_cache_path() -> Path:
    """Where Keras caches mnist.npz: `$KERAS_HOME/datasets/mnist.npz` (default `~/.keras`)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets" / "mnist.npz"


# Validation -------------------------------------------------------------------------------

def _check_images(path: str, name: str, x: np.ndarray) -> None:
    if x.dtype != np.uint8:
        raise UserError(f"{path}: {name} has dtype {x.dtype}, expected uint8 pixels 0-255")
    if x.ndim != 3 or x.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or x.shape[0] == 0:
        raise UserError(f"{path}: {name} has shape {x.shape}, expected (N, 28, 28) with N > 0")


def _check_labels(path: str, name: str, y: np.ndarray, n: int) -> np.ndarray:
    if not np.issubdtype(y.dtype, np.integer):
        raise UserError(f"{path}: {name} has dtype {y.dtype}, expected integer labels 0-9")
    if y.ndim != 1 or y.shape[0] != n:
        raise UserError(f"{path}: {name} has shape {y.shape}, expected ({n},) to match images")
    if y.size and (y.min() < 0 or y.max() >= NUM_CLASSES):
        raise UserError(f"{path}: {name} has labels in {y.min()}..{y.max()}, expected 0-9")
    return y.astype(np.int64)


def _read_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read the named arrays of an npz fully (so a corrupt member fails here, one line)."""
    try:
        # Open the file here: np.load leaks its own handle when the zip directory is corrupt.
        with open(path, "rb") as fh:
            loaded = np.load(fh, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                raise UserError(f"{path}: a single .npy array, expected an .npz archive with "
                                f"{', '.join(keys)}")
            with loaded as npz:
                missing = [k for k in keys if k not in npz.files]
                if missing:
                    raise UserError(f"{path}: missing array(s) {', '.join(missing)} "
                                    f"(has: {', '.join(npz.files) or 'none'}; expected "
                                    f"{', '.join(keys)})")
                return {k: npz[k] for k in keys}
    except UserError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise UserError(f"{path}: not a readable .npz file ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else 'corrupt'})") from None


def _arrays_to_mnist(path: Path, arrays: dict[str, np.ndarray], source: str,
                     sha256: str | None) -> Mnist:
    _check_images(str(path), "x_train", arrays["x_train"])
    _check_images(str(path), "x_test", arrays["x_test"])
    y_train = _check_labels(str(path), "y_train", arrays["y_train"], len(arrays["x_train"]))
    y_test = _check_labels(str(path), "y_test", arrays["y_test"], len(arrays["x_test"]))
    return Mnist(arrays["x_train"], y_train, arrays["x_test"], y_test, source, str(path), sha256)


def load_keras_npz(path: str | os.PathLike, *, source: str = SOURCE_FILE,
                   expected_sha256: str | None = None) -> Mnist:
    """Load and validate a Keras-style mnist.npz; check its sha256 when one is expected."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    digest = sha256_of(path)
    if expected_sha256 is not None and digest != expected_sha256:
        raise UserError(f"{path}: sha256 {digest[:12]}… does not match the known "
                        f"{expected_sha256[:12]}… (corrupt or partial file; delete it)")
    return _arrays_to_mnist(path, _read_npz(path, NPZ_KEYS), source, digest)


def _read_idx(path: Path, dims: int) -> np.ndarray:
    """Read one gzipped IDX file of unsigned bytes with `dims` dimensions."""
    try:
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as exc:
        raise UserError(f"{path}: not a readable gzip file ({exc})") from None
    header = 4 + 4 * dims
    if len(raw) < header:
        raise UserError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != _IDX_MAGIC[dims]:
        raise UserError(f"{path}: IDX magic {magic:#010x}, expected {_IDX_MAGIC[dims]:#010x} "
                        f"({'images' if dims == 3 else 'labels'} of unsigned bytes)")
    shape = struct.unpack(f">{dims}I", raw[4:header])
    size = int(np.prod(shape))
    if len(raw) - header != size:
        raise UserError(f"{path}: IDX header says {shape} = {size} bytes of data, "
                        f"file has {len(raw) - header}")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_idx_folder(folder: str | os.PathLike) -> Mnist:
    """Load and validate the four MNIST `*-ubyte.gz` IDX files of a folder."""
    folder = Path(folder)
    missing = [name for name in IDX_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise UserError(f"{folder}: missing {', '.join(missing)} (a data folder needs the four "
                        "MNIST *-ubyte.gz files)")
    arrays = {key: _read_idx(folder / name, 3 if key.startswith("x") else 1)
              for key, name in IDX_FILES.items()}
    for key in ("y_train", "y_test"):
        x_key = "x" + key[1:]
        if len(arrays[key]) != len(arrays[x_key]):
            raise UserError(f"{folder / IDX_FILES[key]}: {len(arrays[key])} labels for "
                            f"{len(arrays[x_key])} images in {IDX_FILES[x_key]}")
    digest = hashlib.sha256()
    for name in IDX_FILES.values():
        digest.update(sha256_of(folder / name).encode())
    return _arrays_to_mnist(folder, arrays, SOURCE_IDX, digest.hexdigest())


def stratified_split(labels: np.ndarray, n_heldout: int, seed: int = SPLIT_SEED
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, held-out) indices; each class gives its share of `n_heldout`, seeded."""
    labels = np.asarray(labels)
    if not 0 < n_heldout < len(labels):
        raise ValueError(f"n_heldout={n_heldout} must be in 1..{len(labels) - 1}")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    # Largest-remainder apportionment so the shares add up to exactly n_heldout.
    exact = np.array([np.sum(labels == c) for c in classes]) * n_heldout / len(labels)
    shares = np.floor(exact).astype(int)
    extra = n_heldout - shares.sum()
    shares[np.argsort(-(exact - shares), kind="stable")[:extra]] += 1
    heldout = []
    for cls, share in zip(classes, shares, strict=True):
        members = np.flatnonzero(labels == cls)
        heldout.append(rng.permutation(members)[:share])
    test_idx = np.sort(np.concatenate(heldout))
    train_idx = np.setdiff1d(np.arange(len(labels)), test_idx)
    return train_idx, test_idx


def load_subset(path: str | os.PathLike = SUBSET_PATH, *, check_sha256: bool = True) -> Mnist:
    """The vendored 5,000-image subset, checksum-verified, split 4,000 / 1,000 stratified."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: vendored MNIST subset missing (reinstall rnnbench)")
    digest = sha256_of(path)
    if check_sha256 and digest != SUBSET_SHA256:
        raise UserError(f"{path}: sha256 {digest[:12]}… does not match the vendored subset's "
                        f"{SUBSET_SHA256[:12]}… (corrupt file; reinstall rnnbench)")
    arrays = _read_npz(path, ("images", "labels"))
    images, labels = arrays["images"], arrays["labels"]
    _check_images(str(path), "images", images)
    labels = _check_labels(str(path), "labels", labels, len(images))
    if len(images) != SUBSET_SIZE:
        raise UserError(f"{path}: {len(images)} images, expected {SUBSET_SIZE}")
    train_idx, test_idx = stratified_split(labels, SUBSET_HELDOUT, SPLIT_SEED)
    return Mnist(images[train_idx], labels[train_idx], images[test_idx], labels[test_idx],
                 SOURCE_SUBSET, str(path), digest)


def download(cache_dir: str | os.PathLike | None = None) -> Mnist:
    """Fetch mnist.npz through keras.utils.get_file with its known sha256 (needs the internet)."""
    from keras.utils import get_file  # imports TensorFlow: only here, only on --download

    try:
        path = get_file("mnist.npz", origin=KERAS_MNIST_ORIGIN, file_hash=KERAS_MNIST_SHA256,
                        cache_dir=None if cache_dir is None else str(cache_dir))
    except Exception as exc:  # network errors come in many types; the user needs one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{KERAS_MNIST_ORIGIN}: download failed ({first})") from None
    return load_keras_npz(path, source=SOURCE_DOWNLOAD, expected_sha256=KERAS_MNIST_SHA256)


def load_mnist(data: str | os.PathLike | None = None, *, download_ok: bool = False,
               cache_path: str | os.PathLike | None = None) -> Mnist:
    """Find MNIST in the order --data, Keras cache, --download, vendored subset; validate it."""
    if data is not None:
        if str(data) == SOURCE_SUBSET:
            return load_subset()
        path = Path(data).expanduser()
        if path.is_dir():
            return load_idx_folder(path)
        if not path.exists():
            raise UserError(f"{path}: no such file or folder (--data takes a Keras-style "
                            "mnist.npz, a folder of *-ubyte.gz files, or the word 'subset')")
        return load_keras_npz(path, source=SOURCE_FILE)
    cache = Path(cache_path) if cache_path is not None else keras_cache_path()
    if cache.is_file():
        try:
            return load_keras_npz(cache, source=SOURCE_CACHE, expected_sha256=KERAS_MNIST_SHA256)
        except UserError:
            if not download_ok:
                raise
            # A damaged cache with --download: get_file sees the hash mismatch and re-fetches.
    if download_ok:
        return download(cache.parent.parent if cache_path is not None else None)
    return load_subset()


# Tasks --------------------------------------------------------------------------------------

def permutation(seed: int = PERMUTATION_SEED) -> np.ndarray:
    """The fixed pixel order of the `permuted` task: a seeded permutation of 0..783."""
    return np.random.default_rng(seed).permutation(IMAGE_SIDE * IMAGE_SIDE)


def _shape(images: np.ndarray, task: str, perm: np.ndarray | None) -> np.ndarray:
    x = images.astype(np.float32) / np.float32(255.0)
    if task == "row":
        return x  # [N, 28 steps, 28 features]
    x = x.reshape(len(x), IMAGE_SIDE * IMAGE_SIDE)
    if perm is not None:
        x = x[:, perm]
    return np.ascontiguousarray(x[:, :, None])  # [N, 784 steps, 1 feature]


def check_task(task: str) -> str:
    """Return `task` if known, else raise a UserError listing the tasks."""
    if task not in TASKS:
        raise UserError(f"unknown task {task!r}; valid: {', '.join(TASKS)}")
    return task


def task_data(mnist: Mnist, task: str, permutation_seed: int = PERMUTATION_SEED) -> TaskData:
    """Shape validated MNIST for `task`: row [N,28,28], pixel/permuted [N,784,1], float32 0..1."""
    check_task(task)
    perm = permutation(permutation_seed) if task == "permuted" else None
    return TaskData(
        task=task,
        x_train=_shape(mnist.x_train, task, perm),
        y_train=mnist.y_train.astype(np.int32),
        x_test=_shape(mnist.x_test, task, perm),
        y_test=mnist.y_test.astype(np.int32),
        permutation_seed=permutation_seed if perm is not None else None,
        permutation=perm,
    )
