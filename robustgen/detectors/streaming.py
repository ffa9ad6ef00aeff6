"""Score image files with a fitted detector as a stream: read, scored and written a chunk at a time,
so that memory stays bounded whatever the number of inputs, and every chunk's rows are on disk
(flushed) before the next is read. Beside the CSV, ``<out>.sha256`` records after each chunk how
many of its bytes are complete and their SHA-256. ``resume=True`` continues an interrupted CSV after
its last recorded row, refuses one whose recorded bytes changed since, and never scores an input twice.

    summary = detect_files(det, ["images.npy", "pngs/"], "scores.csv")
    summary.n, summary.flagged

One row per image: ``source, index, prediction, confidence, score, threshold, flagged`` (floats to 6
significant digits).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ..data.inputs import iter_batches, open_inputs

COLUMNS = ["source", "index", "prediction", "confidence", "score", "threshold", "flagged"]
CHUNK = 4096  # images read, scored and written at a time


@dataclass
class DetectSummary:
    out: Path
    n: int = 0  # rows in the CSV at the end (resumed ones included)
    flagged: int = 0  # of them, flagged
    resumed: int = 0  # rows that were already there
    errors: list[str] = field(default_factory=list)  # inputs that could not be read, one sentence each
    total: int = 0  # images the inputs' headers announce (an upper bound where a folder's file fails)


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def sidecar(out: Path) -> Path:
    """``scores.csv.sha256``: how many bytes of the CSV are complete, and their SHA-256."""
    return out.with_name(out.name + ".sha256")


def _kept_bytes(path: Path) -> tuple[int, "hashlib._Hash"]:
    """How many bytes of an interrupted CSV to keep, and their SHA-256 state, read a block at a time:
    what its sidecar vouches for (refused if those bytes changed), or, with no sidecar (a CSV written
    before robustgen kept one), every complete line."""
    side, hasher = sidecar(path), hashlib.sha256()
    if side.is_file():
        try:
            size, digest = side.read_text().split()
            size = int(size)
        except ValueError:
            raise ValueError(f"{side}: damaged; {path} cannot be resumed") from None
        with path.open("rb") as f:
            left = size
            while left > 0 and (block := f.read(min(left, 1 << 20))):
                hasher.update(block)
                left -= len(block)
        if left > 0 or hasher.hexdigest() != digest:
            raise ValueError(f"{path}: SHA-256 of its first {size} bytes does not match {side.name}; it was changed "
                             "after robustgen wrote it, and cannot be resumed")
        return size, hasher
    end = 0
    with path.open("rb") as f:
        for line in f:
            if line.endswith(b"\n"):
                hasher.update(line)
                end += len(line)
    return end, hasher


def completed_rows(path: Path, threshold: float) -> tuple[int, int, tuple[str, str] | None, "hashlib._Hash"]:
    """(rows, flagged rows, (source, index) of the last row, SHA-256 state of the kept bytes) of an
    interrupted CSV, read as a stream (memory does not grow with its length). The CSV is cut back to
    what its sidecar records as complete (rows written after the last record, or a row torn by the
    interruption, are scored again), and refused when those bytes changed since, or when it was
    written with another threshold."""
    end, hasher = _kept_bytes(path)
    if path.stat().st_size > end:
        with path.open("rb+") as f:
            f.truncate(end)
    n = flagged = 0
    last = None
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        if next(reader, None) != COLUMNS:
            raise ValueError(f"{path} is not a CSV of robustgen detect (its header is not {','.join(COLUMNS)}); "
                             "nothing to resume")
        for row in reader:
            if len(row) != len(COLUMNS):
                raise ValueError(f"{path}: row {n + 1} does not have the {len(COLUMNS)} columns of robustgen detect; it "
                                 "cannot be resumed")
            n += 1
            flagged += row[6] == "True"
            last = row
    if last is not None and last[5] != _fmt(threshold):
        raise ValueError(f"{path} was written with threshold {last[5]}, this detector's is {_fmt(threshold)}; resume "
                         "with the same detector (save it with det.save and pass --detector)")
    return n, flagged, (last[0], last[1]) if last else None, hasher


def _csv_bytes(rows) -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(rows)
    return text.getvalue().encode("utf-8")


def detect_files(detector, paths: list[str | os.PathLike], out: str | os.PathLike, *, uint8: bool = False,
                 chunk: int = CHUNK, resume: bool = False, on_error: Callable[[str], None] | None = None,
                 on_progress: Callable[[int], None] | None = None, on_total: Callable[[int], None] | None = None
                 ) -> DetectSummary:
    """Score every image of ``paths`` with a fitted ``detector`` into the CSV ``out``.

    ``out`` must not exist, unless ``resume``: then the rows already in it are kept and scoring starts
    after the last one (checked to be the same input as in the interrupted run). Unreadable inputs are
    skipped and named through ``on_error`` (and in the summary); ``on_total(n)`` gets the number of
    images the headers announce, ``on_progress(k)`` each chunk's count (resumed rows first)."""
    if detector.threshold is None:
        raise RuntimeError("the detector has no threshold yet: call fit(x_clean, fpr=...) first")
    if not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 1:
        raise ValueError(f"chunk must be a whole number of at least 1, got {chunk!r}")
    out = Path(out)
    summary = DetectSummary(out)

    def error(message: str) -> None:
        summary.errors.append(message)
        if on_error:
            on_error(message)

    sources, errors = open_inputs(paths, uint8=uint8, shape=detector.model.input_shape)
    for message in errors:
        error(message)
    summary.total = sum(s.n for s in sources)
    if on_total:
        on_total(summary.total)
    last, hasher = None, hashlib.sha256()
    if out.exists():
        if not resume:
            raise FileExistsError(f"{out} already exists; choose a new output file, or resume it")
        summary.resumed, summary.flagged, last, hasher = completed_rows(out, detector.threshold)
    elif not out.parent.is_dir():
        raise ValueError(f"the folder of the output file ({out.parent}) does not exist")
    elif sidecar(out).exists():
        raise FileExistsError(f"{sidecar(out)} already exists (left from another CSV?); move it away")
    summary.n = summary.resumed
    if on_progress and summary.resumed:
        on_progress(summary.resumed)
    # skip one image fewer than was done, to check that the input before the new ones is the last row's
    skip = max(summary.resumed - 1, 0)
    with out.open("ab") as f:

        def write(data: bytes) -> None:  # the rows, then the sidecar that vouches for them
            f.write(data)
            f.flush()  # a crash loses at most the chunk being scored
            hasher.update(data)
            tmp = sidecar(out).with_name(sidecar(out).name + ".tmp")
            tmp.write_text(f"{f.tell()} {hasher.hexdigest()}\n")
            os.replace(tmp, sidecar(out))

        if f.tell() == 0:
            write(_csv_bytes([COLUMNS]))
        for batch in iter_batches(sources, chunk=chunk, skip=skip, on_error=error):
            names, indices, images = batch.sources, batch.indices, batch.images
            if last is not None:
                if (names[0], str(indices[0])) != last:
                    raise ValueError(f"{out} ends at input {last[0]} #{last[1]}, but the inputs given have "
                                     f"{names[0]} #{indices[0]} there; resume with the same --input as the interrupted run")
                names, indices, images, last = names[1:], indices[1:], images[1:], None
                if not len(names):
                    continue
            report, flagged = detector.detect(images)
            write(_csv_bytes([s, i, int(p), _fmt(c), _fmt(v), _fmt(detector.threshold), bool(g)] for s, i, p, c, v, g
                             in zip(names, indices, report["predictions"], report["confidences"], report["scores"],
                                    flagged)))
            summary.n += len(names)
            summary.flagged += int(flagged.sum())
            if on_progress:
                on_progress(len(names))
    if last is not None:
        raise ValueError(f"{out} holds {summary.resumed} rows, more than the inputs given yield; resume with the same "
                         "--input as the interrupted run")
    return summary
