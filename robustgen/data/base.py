"""What every dataset module shares: the error type, the dataset record and where files are looked for."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch


def check_pixels(x: torch.Tensor) -> None:
    """Refuse images that are not finite pixels in [0, 1]: a ValueError naming what was found (the
    detector API and the attacks both take user tensors through here)."""
    if not torch.isfinite(x).all():
        raise ValueError("images contain NaN or infinite values")
    lo, hi = float(x.min()), float(x.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"images must lie in [0, 1], found values in [{lo:.4g}, {hi:.4g}]; "
                         "the model normalises internally, so pass raw pixels / 255")


class DataError(ValueError):
    """A dataset file is missing, malformed or does not match its checksum."""


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's shape and classes. ``channels`` x ``height`` x ``width`` is the shape of one image."""

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    channels: int = 1
    height: int = 28
    width: int = 28

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.height, self.width)


def default_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The data folder: ``data_dir``, else $ROBUSTGEN_DATA, else ./data."""
    return Path(data_dir or os.environ.get("ROBUSTGEN_DATA") or "data").expanduser()


def find_file(name: str, folders: list[Path]) -> Path | None:
    """The first ``folder/name`` or ``folder/name.gz`` that exists."""
    for folder in folders:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


def check_md5(path: Path, data: bytes, md5: str | None) -> None:
    """Raise :class:`DataError` naming ``path`` when ``data`` does not hash to ``md5`` (None: no check)."""
    if md5 is None:
        return
    got = hashlib.md5(data).hexdigest()
    if got != md5:
        raise DataError(f"{path}: MD5 mismatch (got {got}, expected {md5}); the file is corrupt or "
                        "not the official release — replace it with the original")


def read_checked(path: Path, md5: str | None = None) -> bytes:
    """The bytes of ``path``, checked against ``md5``; a :class:`DataError` naming the file otherwise."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e})") from None
    check_md5(path, data, md5)
    return data


def missing_files_error(what: str, missing: list[str], folders: list[Path], download_error: Exception | None,
                        extra_hint: str = "") -> DataError:
    """The one error for a named dataset whose files are nowhere: where we looked and the ways to get them."""
    where = ", ".join(str(f) for f in folders)
    how = (f" The download failed too: {download_error}." if download_error else
           " Pass --download (download=True) to fetch them where a network exists,")
    return DataError(f"{what} files not found: {', '.join(missing)}. Looked in: {where}.{how}{extra_hint} or put "
                     "the official files in one of those folders (set --data-dir or ROBUSTGEN_DATA).")


def try_download(fn) -> Exception | None:
    """Run a torchvision download; return the exception instead of raising (reported with the missing files)."""
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any failure is reported with the missing files
        return e
    return None
