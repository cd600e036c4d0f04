"""Data sets by name -> raw image and label arrays (no split, no scaling beyond [0, 1]).

The embedded default is scikit-learn's handwritten digits (1,797 8x8 images), so every space runs
without a network. MNIST and Fashion-MNIST are read offline from IDX files or Keras' cache (`find_named`),
never downloaded. Every source is first described without reading its pixels (`describe_arrays`), so
that a data set too large for the machine, or an `.npz` whose header lies, is refused before it is read;
what is read is then checked (`check_arrays`), so that unusable data fails here, with the file named,
rather than in every trial.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np

from search.errors import DataError, reported_as
from search.spec.consistency import IDX_TRAIN_FILES, KNOWN_SHAPES, OFFICIAL_TEST_SETS
from search.spec.schema import Dataset

KERAS_DATASETS = ("cifar10", "cifar100")  # still loaded (downloaded once) by keras.datasets
IDX_SETS = ("mnist", "fashion_mnist")  # read offline: dataset.path, Keras' cache, Debian's package
# Where Debian's `dataset-fashion-mnist` package puts the four IDX files (gzipped)
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
# (images, labels) file names of each part, each file plain or with `.gz`
IDX_FILES = {"train": IDX_TRAIN_FILES, "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
# The IDX type code (third byte of the magic number) -> its big-endian dtype
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# Deflate expands data at most about 1032-fold: a gzip member claiming more is forged
GZIP_MAX_RATIO = 1032
READ_CHUNK = 1 << 20  # bytes per read: a gzip stream's readinto would otherwise copy the whole request
# How Keras names them in its cache folder (keras/src/datasets/mnist.py, fashion_mnist.py)
KERAS_CACHE_NAMES = {"mnist": "mnist.npz", "fashion_mnist": "fashion-mnist"}
# What Keras' image_dataset_from_directory reads, in its order (the folder loader keeps its results)
IMAGE_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


@dataclass(frozen=True)
class ArrayInfo:
    """What a source holds, known before its pixels are read. `height`/`width` are the stored size
    (a folder's images are resized as they are decoded: there, the input size)."""

    images: int
    height: int
    width: int
    channels: int
    source: str  # the file or set the messages name

    @property
    def raw_bytes(self) -> int:
        """The images as the loaders return them: float32 at their stored size."""
        return self.images * self.height * self.width * self.channels * 4


def describe_input(spec: Dataset) -> tuple[tuple[int, int, int], int]:
    """(input shape, number of classes) without reading the pixels: from the table of named sets, an
    `.npz`'s headers and labels, a folder's class folders, the IDX headers and labels of MNIST or
    Fashion-MNIST where they are found (else the table: the data is looked for again when it is loaded)."""
    if spec.name in IDX_SETS and (source := find_named(spec)) is not None:
        info = _describe_named(source, "train")
        _, y, _, labels = _read_named(source, "train", images=False)
        return (spec.input_size, spec.input_size, info.channels), _check_labels(y, f"dataset.path: {labels}")
    if spec.name in KNOWN_SHAPES:
        *_, channels, classes = KNOWN_SHAPES[spec.name]
        return (spec.input_size, spec.input_size, channels), classes
    info = describe_arrays(spec)
    if spec.name == "npz":
        path = Path(spec.path)
        try:
            with reported_as(DataError, f"read dataset.path {path}"), np.load(path, allow_pickle=False) as arrays:
                y = arrays["y"].reshape(-1)
        except (ValueError, EOFError, zipfile.BadZipFile) as error:  # labels cut short or failing their CRC
            raise DataError(f"dataset.path: {path} is not a readable .npz ({error})") from None
        classes = _check_labels(y, f"dataset.path: {path}")
    else:
        classes = len(_index_folder(Path(spec.path))[2])
    return (spec.input_size, spec.input_size, info.channels), classes


def describe_arrays(spec: Dataset) -> ArrayInfo:
    """Size and shape of the data set from what can be read cheaply: a table, the `.npz` headers, the
    folder's file list, the IDX headers. An `.npz` or IDX file whose headers are malformed or claim more
    than the file holds is refused. MNIST and Fashion-MNIST not found on this machine are described by the
    table (`load_arrays` then says where to get them)."""
    if spec.name in IDX_SETS and (source := find_named(spec)) is not None:
        return _describe_named(source, "train")
    if spec.name in KNOWN_SHAPES:
        n, h, w, c, _ = KNOWN_SHAPES[spec.name]
        return ArrayInfo(n, h, w, c, spec.name)
    if spec.name == "npz":
        path = Path(spec.path)
        (n, *shape), _ = _npz_headers(path)
        h, w, c = shape if len(shape) == 3 else (*shape, 1)
        return ArrayInfo(n, h, w, c, str(path))
    if spec.name == "folder":
        files, _, _ = _index_folder(Path(spec.path))
        return ArrayInfo(len(files), spec.input_size, spec.input_size, _folder_channels(files), str(spec.path))
    raise DataError(f"dataset.name: unknown data set {spec.name!r}")


def load_arrays(spec: Dataset, before_decoding: Callable[[ArrayInfo], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The images (float32 in [0, 1] for 8-bit sources) and labels, checked. `before_decoding` is called
    with the source's `ArrayInfo` before its pixels are read (a memory check). MNIST and Fashion-MNIST
    are their training part (60,000 images); `load_test_arrays` gives their test part."""
    source = _found(spec) if spec.name in IDX_SETS else None
    info = describe_arrays(spec) if source is None else _describe_named(source, "train")
    if before_decoding is not None:
        before_decoding(info)
    if source is not None:
        x, y, _, _ = _read_named(source, "train")
    elif spec.name == "digits":
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, y = digits.images.astype("float32") / 16.0, digits.target
    elif spec.name in KERAS_DATASETS:
        x, y = _load_keras_dataset(spec.name, "train")
    elif spec.name == "npz":
        x, y = _load_npz(Path(spec.path))
    else:
        x, y = _load_folder(Path(spec.path), spec.input_size, info.channels)
    check_arrays(x, y, info.source)
    return x, y


def training_labels(spec: Dataset) -> np.ndarray | None:
    """MNIST's or Fashion-MNIST's training labels, from wherever `find_named` finds them (None: nowhere)."""
    source = find_named(spec)
    return None if source is None else _read_named(source, "train", images=False)[1]


def describe_test_arrays(spec: Dataset) -> ArrayInfo:
    """The size of a named set's official test part: MNIST's or Fashion-MNIST's from its headers (the
    table where the files are not on this machine: `load_test_arrays` then says where to get them)."""
    if spec.name in KERAS_DATASETS:
        return ArrayInfo(10_000, *KNOWN_SHAPES[spec.name][1:4], spec.name)
    source = find_named(spec)
    if source is None:
        return ArrayInfo(10_000, *KNOWN_SHAPES[spec.name][1:4], spec.name)
    return _describe_named(source, "test")


def load_test_arrays(spec: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The official test part of a named set (MNIST's and Fashion-MNIST's `t10k-*`, CIFAR's test batch:
    10,000 images each), as `load_arrays` returns the training part: float32 images in [0, 1] and labels, checked."""
    if spec.name not in OFFICIAL_TEST_SETS:
        raise DataError(f"dataset.name: {spec.name!r} has no official test part here; only {', '.join(OFFICIAL_TEST_SETS)} do")
    if spec.name in KERAS_DATASETS:
        x, y = _load_keras_dataset(spec.name, "test")
        check_arrays(x, y, spec.name)
        return x, y
    x, y, images, _ = _read_named(_found(spec), "test")
    check_arrays(x, y, str(images))
    return x, y


def check_arrays(x: np.ndarray, y: np.ndarray, source: str) -> None:
    """Refuse data no trial could learn from: non-numeric or non-finite pixels, labels that are not
    integer class ids, lengths that differ, a single class."""
    where = f"dataset.path: {source}"
    if x.dtype.kind not in "uif":
        raise DataError(f"{where}: x holds {x.dtype} values; images must be numbers (uint8 or float)")
    if x.ndim not in (3, 4) or 0 in x.shape[1:]:
        raise DataError(f"{where}: x has shape {x.shape}; expected (n, h, w) or (n, h, w, c) images")
    if len(x) == 0:
        raise DataError(f"{where}: x holds no images")
    if y.ndim != 1:
        raise DataError(f"{where}: y has shape {y.shape}; expected one label per image, shape (n,)")
    if len(x) != len(y):
        raise DataError(f"{where}: x holds {len(x)} images but y holds {len(y)} labels; they must match one to one")
    if x.dtype.kind == "f":
        finite = np.isfinite(x)
        bad = x.size - int(np.count_nonzero(finite))
        if bad:
            nan = int(np.count_nonzero(np.isnan(x)))
            images = int(np.count_nonzero(~finite.reshape(len(x), -1).all(axis=1)))
            raise DataError(
                f"{where}: x holds {nan:,} NaN and {bad - nan:,} infinite pixel values (in {images:,} of "
                f"{len(x):,} images); replace or drop those images"
            )
    _check_labels(y, where)


def _check_labels(y: np.ndarray, where: str) -> int:
    """Integer class ids (whole-number floats allowed), at least two classes; returns how many."""
    if y.dtype.kind not in "uif":
        raise DataError(f"{where}: y holds {y.dtype} values; labels must be integer class ids")
    if y.dtype.kind == "f":
        fractional = int(np.count_nonzero(~np.isfinite(y) | (y != np.round(y))))
        if fractional:
            raise DataError(f"{where}: y holds {fractional:,} labels that are not whole numbers; labels must be integer class ids")
    classes = np.unique(y)
    if len(classes) < 2:
        raise DataError(f"{where}: every label is {classes[0]}; a classifier needs at least two classes")
    return len(classes)


@dataclass(frozen=True)
class NamedSource:
    """Where MNIST or Fashion-MNIST was found: a folder of IDX files, or Keras' `mnist.npz`."""

    name: str
    kind: Literal["idx", "npz"]
    path: Path
    remedy: str  # what to do about a damaged file there


@dataclass(frozen=True)
class IdxHeader:
    """An IDX file's header, checked against the file's size: `offset` bytes, then `shape` of `dtype`."""

    path: Path
    dtype: np.dtype
    shape: tuple[int, ...]
    offset: int


def keras_cache() -> Path:
    """The folder keras.datasets keeps its downloads in, resolved as Keras resolves it (its backend config
    and `get_file`): $KERAS_HOME, else ~/.keras (/tmp/.keras where home is not writable), and
    /tmp/.keras where that is not writable; then its `datasets` sub-folder."""
    if "KERAS_HOME" in os.environ:
        base = os.environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        base = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    base = os.path.expanduser(base)
    if not _writable(Path(base)):
        base = os.path.join("/tmp", ".keras")
    return Path(base) / "datasets"


def _writable(folder: Path) -> bool:
    """Whether Keras could write into `folder`: it creates a missing one where its parent allows."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return os.access(folder, os.W_OK)


def idx_files(folder: Path, part: str) -> tuple[Path, Path] | None:
    """The (images, labels) IDX files of `part` ("train" or "test") in `folder`, each plain or gzipped
    (plain first); None unless both are there."""
    found = []
    with reported_as(DataError, f"read {folder}"):
        for name in IDX_FILES[part]:
            file = next((f for f in (folder / name, folder / f"{name}.gz") if f.is_file()), None)
            if file is None:
                return None
            found.append(file)
    return found[0], found[1]


def find_named(spec: Dataset) -> NamedSource | None:
    """Where MNIST or Fashion-MNIST can be read without a network, in this order: `dataset.path`, Keras'
    cache, Debian's `dataset-fashion-mnist` package (Fashion-MNIST only). Nothing here downloads."""
    if spec.path is not None:
        return NamedSource(spec.name, "idx", Path(spec.path), "replace it with a good copy")
    cache = keras_cache() / KERAS_CACHE_NAMES[spec.name]
    redownload = (f"delete it (keras.datasets.{spec.name}.load_data() downloads it again on a machine with a "
                  "network) or set dataset.path to a folder of good IDX files")
    if spec.name == "mnist":
        with reported_as(DataError, f"read {cache}"):
            if cache.is_file():
                return NamedSource(spec.name, "npz", cache, redownload)
    elif idx_files(cache, "train") is not None:
        return NamedSource(spec.name, "idx", cache, redownload)
    if spec.name == "fashion_mnist" and idx_files(DEBIAN_FASHION_MNIST, "train") is not None:
        return NamedSource(spec.name, "idx", DEBIAN_FASHION_MNIST, "reinstall it: apt-get install --reinstall dataset-fashion-mnist")
    return None


def _found(spec: Dataset) -> NamedSource:
    source = find_named(spec)
    if source is not None:
        return source
    name = spec.name
    looked = [f"{keras_cache() / KERAS_CACHE_NAMES[name]} (Keras' cache)"]
    how = []
    if name == "fashion_mnist":
        looked.append(f"{DEBIAN_FASHION_MNIST} (Debian's dataset-fashion-mnist)")
        how.append("install it with `apt-get install dataset-fashion-mnist`")
    how.append(f"run `python -c 'import keras; keras.datasets.{name}.load_data()'` once on a machine with a network "
               "(it fills Keras' cache, which can be copied)")
    images, labels = IDX_FILES["train"]
    how.append(f"or set dataset.path to a folder holding {images} and {labels} (each optionally .gz)")
    raise DataError(f"dataset.path: {name} is not on this machine (looked in {' and '.join(looked)}); {', '.join(how)}")


def _part_files(source: NamedSource, part: str) -> tuple[Path, Path]:
    files = idx_files(source.path, part)
    if files is None:
        images, labels = IDX_FILES[part]
        raise DataError(f"dataset.path: {source.path} lacks the {part} files {images} and {labels} (each optionally .gz); "
                        f"add them or {source.remedy}")
    return files


def _describe_named(source: NamedSource, part: str) -> ArrayInfo:
    """The part's size from its headers: IDX headers checked against the files' sizes, or the `.npz`'s."""
    if source.kind == "npz":
        (n, h, w, *channels), _ = _npz_headers(source.path, f"x_{part}", f"y_{part}")
        return ArrayInfo(n, h, w, channels[0] if channels else 1, str(source.path))
    images, _ = _idx_headers(source, part)
    n, h, w = images.shape
    return ArrayInfo(n, h, w, 1, str(images.path))


def _idx_headers(source: NamedSource, part: str) -> tuple[IdxHeader, IdxHeader]:
    image_file, label_file = _part_files(source, part)
    images = idx_header(image_file, 3, source.remedy)
    labels = idx_header(label_file, 1, source.remedy)
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"dataset.path: {labels.path} holds {labels.shape[0]:,} labels but {images.path} holds "
            f"{images.shape[0]:,} images; they must match one to one: {source.remedy}"
        )
    return images, labels


def _read_named(source: NamedSource, part: str, images: bool = True) -> tuple[np.ndarray | None, np.ndarray, Path, Path]:
    """(images as float32, labels, the files they came from) of `part`, headers checked first; the images
    None unless asked for."""
    if source.kind == "npz":
        x_key, y_key = f"x_{part}", f"y_{part}"
        _npz_headers(source.path, x_key, y_key)
        x, y = _load_npz(source.path, x_key, y_key, images)
        return x, y, source.path, source.path
    image_header, label_header = _idx_headers(source, part)
    y = read_idx(label_header, source.remedy)
    x = None
    if images:
        raw = read_idx(image_header, source.remedy)
        x = raw.astype("float32")
        if raw.dtype == np.uint8:
            x /= 255.0
    return x, y, image_header.path, label_header.path


def idx_header(path: Path, ndim: int, remedy: str = "replace it with a good copy") -> IdxHeader:
    """Read and check an IDX header: the magic number (two zero bytes, a type code, `ndim`), the big-endian
    sizes, and that the data they describe is exactly what the file holds (for a `.gz`, what it unpacks
    to, from its trailer), so that a cut or forged file is refused before its data is read."""
    where = f"dataset.path: {path}"
    expected = 0x0800 | ndim
    with reported_as(DataError, f"read {path}"):
        size = path.stat().st_size
        with _open_idx(path) as stream:
            magic = _read_header_bytes(stream, 4, path, remedy)
            if len(magic) < 4:
                raise DataError(f"{where} holds {len(magic)} bytes, less than an IDX header; the file is cut short: {remedy}")
            code, dims = magic[2], magic[3]
            if magic[:2] != b"\0\0" or code not in IDX_DTYPES or dims != ndim:
                kind = "images" if ndim == 3 else "labels"
                raise DataError(
                    f"{where} is not an IDX file of {kind}: its magic number is 0x{magic.hex()}, expected "
                    f"0x{expected:08x} (unsigned bytes in {ndim} dimension{'s' if ndim > 1 else ''}); {remedy}"
                )
            sizes = _read_header_bytes(stream, 4 * ndim, path, remedy)
            if len(sizes) < 4 * ndim:
                raise DataError(f"{where} ends inside its IDX header; the file is cut short: {remedy}")
        stored, what = size, "the file holds"
        if path.suffix == ".gz":
            stored, what = _gzip_size(path, size, remedy), "its gzip trailer says it unpacks to"
    shape = struct.unpack(f">{ndim}I", sizes)
    dtype = np.dtype(IDX_DTYPES[code])
    offset = 4 + 4 * ndim
    claimed = offset + math.prod(shape) * dtype.itemsize
    if path.suffix == ".gz":
        wrong = claimed % 2**32 != stored or claimed > size * GZIP_MAX_RATIO
        state = "cut short, damaged or forged"
    else:
        wrong = claimed != stored
        state = "cut short" if claimed > stored else "longer than its header says (damaged or forged)"
    if wrong:
        described = f"{' x '.join(f'{d:,}' for d in shape)} values of {dtype.name}"
        raise DataError(
            f"{where}: its header describes {described} ({claimed:,} bytes with the header), but {what} "
            f"{stored:,} bytes; the file is {state}: {remedy}"
        )
    return IdxHeader(path, dtype, tuple(shape), offset)


def read_idx(header: IdxHeader, remedy: str = "replace it with a good copy") -> np.ndarray:
    """The data `header` describes, read in chunks into one array (native byte order); a file that ends
    early, holds more, or fails its gzip check is refused."""
    array = np.empty(header.shape, dtype=header.dtype)
    buffer = memoryview(array.reshape(-1).view(np.uint8))
    filled = 0
    with reported_as(DataError, f"read {header.path}"), _open_idx(header.path) as stream:
        try:
            stream.seek(header.offset)
            while filled < len(buffer):
                got = stream.readinto(buffer[filled : filled + READ_CHUNK])
                if not got:
                    break
                filled += got
            extra = stream.read(1)
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:  # a gzip stream cut short or failing its CRC
            raise DataError(f"dataset.path: {header.path} is damaged ({error}); {remedy}") from None
    if filled < len(buffer) or extra:
        state = f"ends after {header.offset + filled:,} bytes" if filled < len(buffer) else "holds more than its header describes"
        raise DataError(f"dataset.path: {header.path} {state}; the file is cut short or damaged: {remedy}")
    return array.astype(array.dtype.newbyteorder("="), copy=False)


def _open_idx(path: Path) -> BinaryIO:
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _read_header_bytes(stream: BinaryIO, n: int, path: Path, remedy: str) -> bytes:
    try:
        return stream.read(n)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:  # not gzip data, or cut inside the header
        raise DataError(f"dataset.path: {path} is not a readable .gz file ({error}); {remedy}") from None


def _gzip_size(path: Path, size: int, remedy: str) -> int:
    """What a gzip file unpacks to, from its trailer (the size modulo 2**32)."""
    if size < 18:
        raise DataError(f"dataset.path: {path} holds {size} bytes, too few for a .gz file; the file is cut short: {remedy}")
    with open(path, "rb") as stream:
        stream.seek(-4, os.SEEK_END)
        return int.from_bytes(stream.read(4), "little")


def _load_keras_dataset(name: str, part: str) -> tuple[np.ndarray, np.ndarray]:
    import keras

    try:
        parts = getattr(keras.datasets, name).load_data()
        x, y = parts[0] if part == "train" else parts[1]
    except Exception as error:  # the download's failure modes are many (DNS, HTTP, truncated file)
        raise DataError(
            f"dataset.name: could not load keras.datasets.{name} ({type(error).__name__}: {error}). It is "
            "downloaded once into ~/.keras/datasets; without a network, save the arrays as x/y in an .npz "
            "and use `name: npz` with `path:`"
        ) from None
    return x.astype("float32") / 255.0, y.reshape(-1)


def _npz_member(archive: zipfile.ZipFile, key: str) -> zipfile.ZipInfo | None:
    names = {info.filename: info for info in archive.infolist()}
    return names.get(f"{key}.npy") or names.get(key)


def _npz_headers(path: Path, x_key: str = "x", y_key: str = "y") -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The shapes of `x` and `y` (or the arrays named `x_key`, `y_key`) as their headers state them,
    checked against dtype and member size, so that a forged header cannot make np.load allocate what the
    file does not hold."""
    with reported_as(DataError, f"read dataset.path {path}"):
        if not zipfile.is_zipfile(path):
            raise DataError(f"dataset.path: {path} is not an .npz archive (expected a zip of x.npy and y.npy, as np.savez writes)")
        try:
            with zipfile.ZipFile(path) as archive:
                members = {key: _npz_member(archive, key) for key in (x_key, y_key)}
                missing = sorted(key for key, member in members.items() if member is None)
                if missing:
                    raise DataError(f"dataset.path: {path} lacks array(s) {missing}; it needs `{x_key}` (images) and `{y_key}` (labels)")
                shapes = {key: _checked_header(archive, member, path, key, key == x_key) for key, member in members.items()}
        except zipfile.BadZipFile as error:
            raise DataError(f"dataset.path: {path} is not a readable .npz ({error})") from None
    x, y = shapes[x_key], shapes[y_key]
    if len(x) not in (3, 4) or 0 in x[1:]:
        raise DataError(f"dataset.path: {path}: {x_key} has shape {x}; expected (n, h, w) or (n, h, w, c) images")
    if len(y) not in (1, 2) or (len(y) == 2 and y[1] != 1):
        raise DataError(f"dataset.path: {path}: {y_key} has shape {y}; expected one label per image, shape (n,)")
    if x[0] != y[0]:
        raise DataError(f"dataset.path: {path}: {x_key} holds {x[0]} images but {y_key} holds {y[0]} labels; they must match one to one")
    if x[0] == 0:
        raise DataError(f"dataset.path: {path}: {x_key} holds no images")
    return x, y


def _checked_header(archive: zipfile.ZipFile, member: zipfile.ZipInfo, path: Path, key: str, images: bool) -> tuple[int, ...]:
    from numpy.lib import format as npy

    with archive.open(member) as stream:
        try:
            version = npy.read_magic(stream)
            if version == (1, 0):
                shape, _, dtype = npy.read_array_header_1_0(stream)
            elif version == (2, 0):
                shape, _, dtype = npy.read_array_header_2_0(stream)
            else:
                raise DataError(f"dataset.path: {path}: {key} is stored in .npy format {version}; save it with np.savez")
        except ValueError as error:  # numpy's message for a malformed magic string or header
            raise DataError(f"dataset.path: {path}: {key} has no valid .npy header ({error})") from None
        header = stream.tell()
    if dtype.hasobject:
        raise DataError(f"dataset.path: {path}: {key} holds Python objects ({dtype}); save numbers, not objects")
    if dtype.kind not in "uif":
        what = "images" if images else "labels"
        raise DataError(f"dataset.path: {path}: {key} holds {dtype} values; {what} must be numbers")
    claimed = math.prod(shape) * dtype.itemsize
    if claimed > member.file_size - header:
        raise DataError(
            f"dataset.path: {path}: {key}'s header claims shape {shape} of {dtype} ({_size(claimed)}), but the "
            f"file holds only {_size(member.file_size - header)} for it; the file is damaged or forged"
        )
    return tuple(shape)


def _load_npz(
    path: Path, x_key: str = "x", y_key: str = "y", images: bool = True
) -> tuple[np.ndarray | None, np.ndarray]:
    """Images (float32; 8-bit ones scaled to [0, 1]) and labels; the images None unless asked for."""
    try:
        with reported_as(DataError, f"read dataset.path {path}"), np.load(path, allow_pickle=False) as arrays:
            x, y = (arrays[x_key] if images else None), arrays[y_key]
    except (ValueError, EOFError, zipfile.BadZipFile) as error:  # a member whose data is cut short or fails its CRC
        raise DataError(f"dataset.path: {path} is not a readable .npz ({error})") from None
    if x is not None and x.dtype == np.uint8:
        x = x.astype("float32") / 255.0
    return (None if x is None else x.astype("float32", copy=False)), y.reshape(-1)


def _index_folder(path: Path) -> tuple[list[Path], list[int], list[str]]:
    """(files, labels, class names) in Keras' order: class folders sorted, each walked recursively with
    its files sorted. A class folder without images is refused: it would silently drop a class."""
    with reported_as(DataError, f"read dataset.path {path}"):
        classes = sorted(entry.name for entry in os.scandir(path) if entry.is_dir() and not entry.name.startswith("."))
        files, labels = [], []
        for label, name in enumerate(classes):
            found = [
                Path(root) / file
                for root, _, names in sorted(os.walk(path / name, onerror=_unreadable), key=lambda walked: walked[0])
                for file in sorted(names)
                if file.lower().endswith(IMAGE_FORMATS)
            ]
            if not found:
                raise DataError(f"dataset.path: {path / name} holds no images ({', '.join(IMAGE_FORMATS)}); remove the class folder or add its images")
            files += found
            labels += [label] * len(found)
    if len(classes) < 2:
        raise DataError(f"dataset.path: {path} must hold one sub-folder per class, at least two (found {len(classes)})")
    return files, labels, classes


def _unreadable(error: OSError) -> None:
    """os.walk skips a folder it cannot list, and its images with it: a class would silently shrink."""
    raise DataError(f"dataset.path: cannot read {error.filename}: {error.strerror}")


def _folder_channels(files: list[Path]) -> int:
    """The channels an image folder is read with: 1 when every image is grayscale (PIL's modes L, LA, 1, I,
    I;16, F), else 3: a folder of colour images, or one mixing grayscale and colour ones (its grayscale
    images then repeated over three channels). Palette images (GIF, palette PNG) count as colour.

    Decided from the images' headers alone (PIL reads no pixels when it opens a file; some 30 us an image),
    and the first colour image ends the look. A file whose header PIL cannot identify is left to the
    decoder, which names it when the folder is loaded."""
    from PIL import Image, UnidentifiedImageError

    for file in files:
        with reported_as(DataError, f"read {file}"), open(file, "rb") as stream:
            try:
                with Image.open(stream) as image:
                    mode = image.mode
            except (UnidentifiedImageError, Image.DecompressionBombError):  # not an image, or too large to tell
                continue
        if Image.getmodebase(mode) != "L":
            return 3
    return 1


def _load_folder(path: Path, size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Decode each file and resize it to `size` as Keras' image_dataset_from_directory does (same ops, same
    results), one file at a time so that a file that is not an image is named. Every file is decoded as
    RGB (the only decoding all formats take: BMP and GIF have no one-channel one); with `channels` 1, every
    image is grayscale, its three channels equal, and the first is kept."""
    import tensorflow as tf

    files, labels, _ = _index_folder(path)
    images = np.empty((len(files), size, size, channels), dtype="float32")
    for i, file in enumerate(files):
        with reported_as(DataError, f"read {file}"):
            raw = file.read_bytes()
        try:
            image = tf.image.decode_image(raw, channels=3, expand_animations=False)
        except tf.errors.InvalidArgumentError as error:  # the decoder's refusal of a corrupt or non-image file
            reason = error.message.split("}}")[-1].split("[Op:")[0].strip()
            raise DataError(f"dataset.path: {file} is not a readable image ({reason}); remove or replace it") from None
        images[i] = tf.image.resize(image[..., :channels], (size, size), method="bilinear").numpy()
    images /= 255.0
    return images, np.array(labels, dtype="int32")


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return f"{n_bytes:,.0f} {unit}" if unit == "bytes" else f"{n_bytes:,.1f} {unit}"
        n_bytes /= 1024
    return ""
