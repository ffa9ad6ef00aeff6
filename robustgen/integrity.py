"""Files that prove what they hold: a SHA-256 sealed into every file robustgen writes and reads back,
and the digests of weights and data that every report records.

A ``torch.save`` file is a zip archive whose end-of-central-directory record may carry a comment.
:func:`seal` puts ``robustgen-sha256:<64 hex digits>`` there, the SHA-256 of every byte before the
comment, so the file stays an ordinary torch file (``torch.load`` reads it as before) and
:func:`verify` refuses it when any byte has changed: in the archive (digest mismatch), in the
comment-length field (hashed with the archive), or in the comment itself (no seal, or a wrong digest).

Files written before robustgen sealed them (an archive whose comment is empty) load as before; a file
with any other ending is refused, so a damaged seal cannot pass for an old file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

MAGIC = b"robustgen-sha256:"
_SEAL_LEN = len(MAGIC) + 64  # the comment: magic + hex digest
_EOCD = b"PK\x05\x06"  # zip end-of-central-directory signature; the record is 22 bytes plus its comment


class IntegrityError(RuntimeError):
    """A file's content does not match the SHA-256 sealed into it (or its seal is damaged)."""


def seal(data: bytes) -> bytes:
    """``data`` (a torch.save archive with an empty zip comment) with its SHA-256 as the comment."""
    if len(data) < 22 or data[-22:-18] != _EOCD or data[-2:] != b"\x00\x00":
        raise ValueError("seal() takes a zip archive with an empty comment, as torch.save writes")
    head = data[:-2] + _SEAL_LEN.to_bytes(2, "little")
    return head + MAGIC + hashlib.sha256(head).hexdigest().encode()


def verify(data: bytes, name: str | os.PathLike) -> str:
    """Check a file's bytes; return "sealed" or "legacy" (unsealed, written before sealing existed).
    Raises IntegrityError naming ``name`` when the content or the seal is damaged."""
    tail = data[-_SEAL_LEN:]
    if len(data) > _SEAL_LEN + 22 and tail.startswith(MAGIC):
        head = data[:-_SEAL_LEN]
        if head[-22:-18] != _EOCD or int.from_bytes(head[-2:], "little") != _SEAL_LEN:
            raise IntegrityError(f"{name}: the file's structure is damaged (its checksum seal is not where it belongs); "
                                 "it is refused")
        if hashlib.sha256(head).hexdigest().encode() != tail[len(MAGIC):]:
            raise IntegrityError(f"{name}: SHA-256 does not match the one sealed into the file; it was changed or "
                                 "damaged after robustgen wrote it, and is refused")
        return "sealed"
    if len(data) >= 22 and data[-22:-18] == _EOCD and data[-2:] == b"\x00\x00":
        return "legacy"
    raise IntegrityError(f"{name}: no valid checksum seal (the file is damaged, truncated or not written by "
                         "robustgen); it is refused")


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_tensors(*tensors: torch.Tensor) -> str:
    """SHA-256 of tensors' dtypes, shapes and bytes (in order): the digest of the data a report drew."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def sha256_state(module: torch.nn.Module) -> str:
    """SHA-256 of a module's state dict as float32 (names sorted, each name, shape and bytes): the
    digest of the weights a report evaluated, the same whether they came from a float16 shipped file,
    a checkpoint or memory."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu()
        t = t.float() if t.is_floating_point() else t
        h.update(f"{name}{tuple(t.shape)}".encode())
        h.update(np.ascontiguousarray(t.numpy()).tobytes())
    return h.hexdigest()


def read_sealed(path: str | os.PathLike) -> tuple[bytes, str]:
    """The bytes of a robustgen file, verified: (data, "sealed" | "legacy")."""
    data = Path(path).read_bytes()
    return data, verify(data, path)


CHECKSUMS = "checksums.sha256"  # a report folder's files and their SHA-256, in sha256sum's format


def write_checksums(folder: str | os.PathLike, names: list[str]) -> Path:
    """Record the SHA-256 of the files ``names`` of ``folder`` (a report's own, written last)."""
    folder = Path(folder)
    lines = [f"{sha256_file(folder / n)}  {n}" for n in sorted(names) if (folder / n).is_file()]
    path = folder / CHECKSUMS
    path.write_text("\n".join(lines) + "\n")
    return path


def verify_checksums(folder: str | os.PathLike) -> bool:
    """Check the files a report folder's checksums list (``sha256sum -c`` does the same); True when it
    has a list, False for a folder written before robustgen kept one. IntegrityError names a file that
    is missing or changed."""
    folder = Path(folder)
    path = folder / CHECKSUMS
    if not path.is_file():
        return False
    for line in path.read_text().splitlines():
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or "/" in name:
            raise IntegrityError(f"{path}: damaged line {line!r}; the report cannot be trusted")
        target = folder / name
        if not target.is_file():
            raise IntegrityError(f"{target}: listed in {CHECKSUMS} but missing; the report is incomplete")
        if sha256_file(target) != digest:
            raise IntegrityError(f"{target}: SHA-256 does not match {CHECKSUMS}; it was changed after robustgen "
                                 "wrote the report, and is refused")
    return True
