"""One array file of images to score, read a chunk at a time: ``.npy``, ``.npz``, IDX (raw or ``.gz``)
(PNG/JPEG files and folders: :mod:`.image_files`). Each :class:`Source` knows from its header how many images it
holds, checks itself before its first chunk is used (so that a bad file is skipped whole, never after
part of it was scored) and reads ``read(start, stop)`` without ever holding more than that chunk.

Checks: array shape against the model's (C, H, W) in any of the layouts :func:`layout` accepts;
uint8 only with ``uint8=True``; floats finite and in [0, 1]; IDX magic number and exact size;
pickled (object) arrays refused, never loaded. Errors are :class:`InputError` naming the file.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np

CHECK_CHUNK = 1 << 16  # images per step of a check pass


class InputError(ValueError):
    """A file to score cannot be read or holds the wrong kind of images."""


def describe(shape) -> str:
    c, h, w = shape
    return f"{c} channel{'s' if c > 1 else ''}, {h}x{w}"


def layout(found: tuple, shape) -> str:
    """How images of array shape ``found`` map onto a model's (C, H, W): ``"nchw"`` as they are,
    ``"nhwc"`` channels last (as ART users pass numpy), ``"nhw"`` one channel without its axis;
    anything else is a ValueError naming both shapes. Shared by file inputs and the detector API."""
    c, h, w = shape
    found = tuple(found)
    if len(found) == 4 and found[1:] == (c, h, w):
        return "nchw"
    if len(found) == 4 and found[1:] == (h, w, c):
        return "nhwc"
    if len(found) == 3 and c == 1 and found[1:] == (h, w):
        return "nhw"
    grey = f", (N, {h}, {w})" if c == 1 else ""
    raise ValueError(f"images must have shape (N, {c}, {h}, {w}) or (N, {h}, {w}, {c}){grey} for this model "
                     f"({describe(shape)}), got {found}")


class Source:
    """The images of one path: ``n`` of them (from its header), read ``read(start, stop)``."""

    n = 0
    uniform = True  # every image is read once check() passed (a folder's files may still fail one by one)

    def __init__(self, path: Path, shape, uint8: bool):
        self.path, self.shape, self.uint8 = path, shape, uint8
        self.skipped: list[str] = []  # files of a folder that could not be read, one sentence each

    def check(self) -> None:
        """Raise InputError when the file cannot be scored whole (default: nothing to check)."""

    def read(self, start: int, stop: int) -> tuple[list[str], list[int], np.ndarray]:
        """(sources, indices, float32 (k, C, H, W) in [0, 1]) of images start..stop-1; a folder may
        return fewer (its unreadable files are reported through ``skipped``)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release any open file."""


class ArraySource(Source):
    """An array file (npy, npz member, IDX) read as a stream: a header, then N fixed-size rows."""

    def __init__(self, path, shape, uint8, dtype: np.dtype, dims: tuple, offset: int):
        super().__init__(path, shape, uint8)
        try:
            self.kind = layout(dims, shape)
        except ValueError as e:
            raise InputError(f"{path}: {e}") from None
        if dtype == np.uint8 and not uint8:
            raise InputError(f"{path}: 8-bit (uint8) images; pass --uint8 to read them as pixel / 255, or save "
                             "floats in [0, 1]")
        if dtype != np.uint8 and not np.issubdtype(dtype, np.floating):
            raise InputError(f"{path}: images must be float in [0, 1] (or uint8 with --uint8), found dtype {dtype}")
        if dims[0] == 0:
            raise InputError(f"{path}: holds no images")
        self.dtype, self.dims, self.offset, self.n = dtype, tuple(dims), offset, int(dims[0])
        self.row = int(np.prod(dims[1:])) * dtype.itemsize
        self._stream, self._at = None, 0

    # streams: a seekable file, or a sequential one (zip member, gzip) reopened to go back
    def _open(self):
        return open(self.path, "rb")

    def _seekable(self) -> bool:
        return True

    def _rows(self, start: int, stop: int) -> np.ndarray:
        if self._stream is None or (not self._seekable() and start < self._at):
            if self._stream is not None:
                self._stream.close()
            self._stream, self._at = self._open(), 0
            if not self._seekable():
                self._skip(self.offset)
        if self._seekable():
            self._stream.seek(self.offset + start * self.row)
        else:
            self._skip((start - self._at) * self.row)
        want = (stop - start) * self.row
        buf = self._stream.read(want)
        self._at = stop
        if len(buf) != want:
            raise InputError(f"{self.path}: truncated data: the header promises {self.n} images, the file ends "
                             f"before image {start + len(buf) // self.row}")
        return np.frombuffer(buf, dtype=self.dtype).reshape((stop - start, *self.dims[1:]))

    def _skip(self, nbytes: int) -> None:
        while nbytes > 0:
            got = len(self._stream.read(min(nbytes, 1 << 24)))
            if not got:
                raise InputError(f"{self.path}: truncated data")
            nbytes -= got

    def check(self) -> None:
        """Floats must be finite and in [0, 1] (a pass over the file, a chunk at a time); a compressed
        file must hold exactly its N images (its size is known only by reading it)."""
        if self.dtype == np.uint8 and self._seekable():
            return self._check_size()
        for start in range(0, self.n, CHECK_CHUNK):
            rows = self._rows(start, min(self.n, start + CHECK_CHUNK))
            if self.dtype != np.uint8:
                if not np.isfinite(rows).all():
                    raise InputError(f"{self.path}: images contain NaN or infinite values")
                lo, hi = float(rows.min()), float(rows.max())
                if lo < 0.0 or hi > 1.0:
                    raise InputError(f"{self.path}: pixel values lie in [{lo:.4g}, {hi:.4g}], not [0, 1]; divide "
                                     "8-bit images by 255 or pass uint8 arrays with --uint8")
        if self._seekable():
            self._check_size()
        elif self._stream.read(1):
            raise InputError(f"{self.path}: unexpected bytes after the {self.n} images the header promises")

    def _check_size(self) -> None:
        size = self.path.stat().st_size
        expected = self.offset + self.n * self.row
        if size < expected:
            raise InputError(f"{self.path}: truncated data: the header promises {self.n} images "
                             f"({expected} bytes), the file has {size}")
        if size > expected and self.exact_size:
            raise InputError(f"{self.path}: {size - expected} unexpected bytes after the data")

    exact_size = True

    def read(self, start, stop):
        rows = self._rows(start, stop)
        images = rows.astype(np.float32) / 255.0 if self.dtype == np.uint8 else rows.astype(np.float32)
        if self.kind == "nhwc":
            images = images.transpose(0, 3, 1, 2)
        elif self.kind == "nhw":
            images = images[:, None]
        return [str(self.path)] * (stop - start), list(range(start, stop)), np.ascontiguousarray(images)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if getattr(self, "_zip", None) is not None:
            self._zip.close()
            self._zip = None


def _npy_header(f, path: Path) -> tuple[np.dtype, tuple, bool]:
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(f)
        reader = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}.get(version)
        if reader is None:
            raise InputError(f"{path}: numpy file format {version} is not supported; save the array with np.save")
        shape, fortran, dtype = reader(f)
    except ValueError as e:
        if isinstance(e, InputError):
            raise
        raise InputError(f"{path}: not a readable numpy file ({e})") from None
    if dtype.hasobject:
        raise InputError(f"{path}: holds a pickled (object) array, which is refused: save numeric images")
    if fortran and len(shape) > 1:
        raise InputError(f"{path}: a Fortran-ordered array; save it in C order (np.ascontiguousarray)")
    return dtype, shape, f.tell()


class NpySource(ArraySource):
    exact_size = False  # numpy itself ignores bytes after the array

    def __init__(self, path, shape, uint8):
        with open(path, "rb") as f:
            dtype, dims, offset = _npy_header(f, path)
        super().__init__(path, shape, uint8, dtype, dims, offset)


class NpzSource(ArraySource):
    """One array of an ``.npz`` (the only one, or the one named ``x`` or ``images``), streamed from
    its zip member (compressed or not)."""

    def __init__(self, path, shape, uint8):
        try:
            with zipfile.ZipFile(path) as z:
                keys = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
                key = keys[0] if len(keys) == 1 else next((k for k in ("x", "images") if k in keys), None)
                if key is None:
                    raise InputError(f"{path}: holds arrays {', '.join(keys) or '(none)'}; name the images 'x' or 'images'")
                self.member = key + ".npy"
                with z.open(self.member) as f:
                    dtype, dims, offset = _npy_header(f, path)
        except (OSError, zipfile.BadZipFile, EOFError) as e:
            raise InputError(f"{path}: not a readable numpy file ({type(e).__name__}: {e})") from None
        super().__init__(path, shape, uint8, dtype, dims, offset)

    def _open(self):
        self._zip = zipfile.ZipFile(self.path)
        return self._zip.open(self.member)

    def _seekable(self) -> bool:
        return False


class IdxSource(ArraySource):
    """An IDX image file (MNIST's format, 8-bit grey, optionally gzipped), divided by 255."""

    def __init__(self, path, shape, uint8):
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rb") as f:
                head = f.read(4)
                if len(head) < 4 or head[0] != 0 or head[1] != 0:
                    raise InputError(f"{path}: bad magic number {head.hex() or '(empty file)'}; not an IDX file")
                if head[2] != 0x08:
                    raise InputError(f"{path}: unsupported IDX element type 0x{head[2]:02x} (only unsigned bytes, 0x08)")
                if head[3] != 3:
                    raise InputError(f"{path}: an IDX file of {head[3]} dimension(s), not images (3)")
                raw = f.read(12)
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise InputError(f"{path}: cannot read or decompress the file ({e})") from None
        if len(raw) < 12:
            raise InputError(f"{path}: truncated header")
        dims = tuple(int.from_bytes(raw[4 * i: 4 * i + 4], "big") for i in range(3))
        super().__init__(path, shape, True, np.dtype(np.uint8), dims, 16)
        self.gz = path.suffix == ".gz"

    def _open(self):
        return gzip.open(self.path, "rb") if self.gz else open(self.path, "rb")

    def _seekable(self) -> bool:
        return not self.gz

    def check(self) -> None:
        try:
            super().check()
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise InputError(f"{self.path}: cannot read or decompress the file ({e})") from None
