"""A deterministic Lambda deployment package built from installed distributions.

Same inputs, same bytes: entries sorted, every timestamp 1980-01-01, fixed
permissions, stored (not deflated, so the bytes do not depend on the zlib of the
machine that plans). The engine compares archives by content hash, so an `up`
redeploys the function only when the code or a packaged dependency changed.

Plain functions, no Pulumi: tests build archives and compare them.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata as metadata
import io
import os
import zipfile
from dataclasses import dataclass
from typing import Iterable, Mapping

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_FILE_MODE = 0o100644 << 16  # regular file, rw-r--r--
_SKIPPED_SUFFIXES = (".pyc", ".pyo")
_NATIVE_SUFFIXES = (".so", ".pyd", ".dylib")


class ArchiveError(Exception):
    """A distribution cannot go into a pure-Python Lambda package."""


@dataclass(frozen=True)
class BuiltArchive:
    data: bytes
    sha256_b64: str  # what Lambda reports as CodeSha256 (and `source_code_hash` takes)
    sha256_hex: str
    distributions: tuple[str, ...]  # "name==version", sorted


def dependency_closure(roots: Iterable[str]) -> list[metadata.Distribution]:
    """The installed distributions `roots` need at run time (no extras), sorted by name.

    Environment markers are evaluated for this interpreter, which runs the same
    major Python as the function's runtime (see rds_bootstrap.LAMBDA_RUNTIME)."""
    seen: dict[str, metadata.Distribution] = {}
    pending = list(roots)
    while pending:
        name = canonicalize_name(pending.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise ArchiveError(f"{name} is not installed; run `make setup` (it is in requirements.txt)") from None
        seen[name] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                pending.append(req.name)
    return [seen[n] for n in sorted(seen)]


def _distribution_files(dist: metadata.Distribution) -> dict[str, bytes]:
    """Importable files of `dist` (its packages and modules), by archive path."""
    out: dict[str, bytes] = {}
    for path in dist.files or []:
        posix = str(path).replace(os.sep, "/")
        top = posix.split("/", 1)[0]
        # METADATA stays: packages read their own version with importlib.metadata (scramp does).
        if top.endswith(".dist-info") and posix == f"{top}/METADATA":
            with open(dist.locate_file(path), "rb") as handle:
                out[posix] = handle.read()
            continue
        if posix.startswith("..") or top.endswith((".dist-info", ".egg-info", ".data")) or top == "__pycache__":
            continue
        if "/__pycache__/" in posix or posix.endswith(_SKIPPED_SUFFIXES):
            continue
        if posix.endswith(_NATIVE_SUFFIXES):
            raise ArchiveError(f"{dist.metadata['Name']} ships native code ({posix}); the bootstrap function "
                               f"takes pure-Python distributions only")
        with open(dist.locate_file(path), "rb") as handle:
            out[posix] = handle.read()
    if not [p for p in out if ".dist-info/" not in p]:
        raise ArchiveError(f"{dist.metadata['Name']} has no importable files recorded (RECORD missing?)")
    return out


def build_archive(files: Mapping[str, bytes], distributions: Iterable[str]) -> BuiltArchive:
    """A zip of `files` (archive path -> content) plus the closure of `distributions`."""
    entries: dict[str, bytes] = {}
    names = []
    for dist in dependency_closure(distributions):
        names.append(f"{canonicalize_name(dist.metadata['Name'])}=={dist.version}")
        for path, content in _distribution_files(dist).items():
            if entries.setdefault(path, content) != content:
                raise ArchiveError(f"{path} is shipped by two distributions with different content")
    for path, content in files.items():
        if path in entries:
            raise ArchiveError(f"{path} would overwrite a file of an installed distribution")
        entries[path] = content
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in sorted(entries):
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.external_attr = _FILE_MODE
            info.create_system = 3  # unix, whatever the planning machine is
            archive.writestr(info, entries[path])
    data = buffer.getvalue()
    digest = hashlib.sha256(data)
    return BuiltArchive(
        data=data,
        sha256_b64=base64.b64encode(digest.digest()).decode(),
        sha256_hex=digest.hexdigest(),
        distributions=tuple(sorted(names)),
    )


def write_archive(archive: BuiltArchive, directory: str, stem: str) -> str:
    """Write `archive` once under a content-addressed name; return its path."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{stem}-{archive.sha256_hex[:16]}.zip")
    if not os.path.exists(path):
        partial = f"{path}.{os.getpid()}.tmp"
        with open(partial, "wb") as handle:
            handle.write(archive.data)
        os.replace(partial, path)  # atomic: parallel plans never see half a file
    return path
