"""Reading an untrusted submission, a student's folder or zip file, within limits.

A submission is input from a whole class: it may be malformed or hostile. :class:`Submission files
<SubmissionFiles>` lists its files and reads them without trusting it:

* zip entries whose name is absolute (``/etc/x``, ``C:\\x``) or climbs out with ``..`` are refused, and so are
  symbolic links (zip entries marked as links in ``external_attr``, links in a folder): never followed;
* the number of entries and the total uncompressed size (from the zip's headers) are bounded: a zip bomb is reported
  and nothing of it is read; every read is also counted while it streams, so a header that lies cannot make a read
  exceed its limit;
* files are read in chunks up to a limit per kind of file (results, notebooks, models), never whole;
* nothing is ever written except by :meth:`SubmissionFiles.extract`, into a work folder, under the entry's checked
  relative name, without following links.

Refused entries are listed in :attr:`SubmissionFiles.refused`; a submission refused as a whole raises
:class:`UnsafeSubmissionError`. Names use ``/`` separators, relative to the submission's root.
"""

from __future__ import annotations

import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from defi1.fingerprint import TooLargeError, sha256_stream

MIB = 1 << 20
GIB = 1 << 30
_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class SubmissionLimits:
    """Bounds on what is read from one submission (bytes are uncompressed sizes)."""

    max_entries: int = 20_000            # files (and folders) in a submission
    max_total_bytes: int = 4 * GIB       # everything in a submission together
    max_results_bytes: int = 4 * MIB     # one results/<part>.json
    max_notebook_bytes: int = 64 * MIB   # one .ipynb (outputs may hold images)
    max_model_bytes: int = 1 * GIB       # one model file (.keras, darknet .weights); YOLOv3 is 248 MB
    max_cfg_bytes: int = 1 * MIB         # one darknet .cfg
    max_models: int = 50                 # model files hashed per submission


class UnsafeSubmissionError(ValueError):
    """A submission refused as a whole (zip bomb, too many entries); nothing of it is read."""


@dataclass(frozen=True)
class SubmissionEntry:
    """One regular file of a submission: ``name`` relative to its root (``/`` separators), ``size`` in bytes (as
    declared by the zip header, for a zip)."""

    name: str
    size: int


def format_bytes(count: int) -> str:
    """``1536`` -> ``"1.5 KB"``: sizes in messages (powers of 1024)."""
    value = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def unsafe_name_reason(name: str) -> str | None:
    """Why an archive entry name may not be extracted (absolute, drive letter, ``..``), or ``None`` when it is safe.
    Backslashes count as separators (zips made on Windows)."""
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        return "absolute path"
    if ".." in PurePosixPath(normalised).parts:
        return "'..' leaves the submission folder"
    if "\x00" in normalised:
        return "NUL character in the name"
    return None


class SubmissionFiles:
    """The files of one submission (a folder or a zip file), checked as the module docstring says.

    Use as a context manager (a zip stays open while it is read). Raises :class:`UnsafeSubmissionError` for a
    submission refused whole, ``zipfile.BadZipFile`` / ``OSError`` for one that cannot be read at all.

    Attributes:
        entries: the regular files that may be read, sorted by name.
        refused: ``"name: reason"`` for each entry left out (unsafe name, symbolic link).
    """

    def __init__(self, path, limits: SubmissionLimits | None = None):
        self.path = Path(path)
        self.limits = limits or SubmissionLimits()
        self.refused: list[str] = []
        self._archive = None
        self._members: dict[str, object] = {}
        if self.path.is_dir():
            self.entries = self._scan_folder()
        else:
            self._check_zip_size()
            self._archive = zipfile.ZipFile(self.path)
            try:
                self.entries = self._scan_zip()
            except BaseException:
                self.close()
                raise

    # ------------------------------------------------------------------------------------------------ listing

    def _check_zip_size(self):
        """Refuse, before Python parses the central directory, a zip larger than a submission may be or one whose
        end record announces too many entries."""
        size = self.path.stat().st_size
        if size > self.limits.max_total_bytes:
            raise UnsafeSubmissionError(f"{self.path}: {format_bytes(size)}, more than the "
                                        f"{format_bytes(self.limits.max_total_bytes)} a submission may hold")
        count = zip_entry_count(self.path)
        if count is not None and count > self.limits.max_entries:
            raise UnsafeSubmissionError(f"{self.path}: {count} entries, more than {self.limits.max_entries}: "
                                        "not extracted")

    def _scan_zip(self) -> list[SubmissionEntry]:
        infos = self._archive.infolist()
        if len(infos) > self.limits.max_entries:
            raise UnsafeSubmissionError(f"{self.path}: {len(infos)} entries, more than {self.limits.max_entries}: "
                                        "not extracted")
        declared = sum(info.file_size for info in infos)
        if declared > self.limits.max_total_bytes:
            raise UnsafeSubmissionError(
                f"{self.path}: zip bomb? {format_bytes(declared)} uncompressed from "
                f"{format_bytes(self.path.stat().st_size)}, more than the {format_bytes(self.limits.max_total_bytes)} "
                "a submission may hold: not extracted")
        entries = []
        for info in infos:
            name = info.filename
            if name.startswith("__MACOSX/"):
                continue
            reason = unsafe_name_reason(name)
            if reason is None and stat.S_ISLNK(info.external_attr >> 16):
                reason = "symbolic link, not followed"
            if reason is not None:
                self.refused.append(f"{name}: {reason}")
                continue
            if info.is_dir():
                continue
            name = PurePosixPath(name.replace("\\", "/")).as_posix()
            if name in self._members:
                self.refused.append(f"{name}: appears twice in the zip")
                continue
            self._members[name] = info
            entries.append(SubmissionEntry(name, int(info.file_size)))
        return sorted(entries, key=lambda entry: entry.name)

    def _scan_folder(self) -> list[SubmissionEntry]:
        entries, count, total = [], 0, 0
        for folder, subfolders, files in os.walk(self.path, followlinks=False):
            relative_folder = Path(folder).relative_to(self.path)
            kept = []
            for name in sorted(subfolders):
                if os.path.islink(os.path.join(folder, name)):
                    self.refused.append(f"{(relative_folder / name).as_posix()}: symbolic link, not followed")
                elif not name.startswith("."):
                    kept.append(name)
            subfolders[:] = kept
            for name in sorted(files):
                count += 1
                if count > self.limits.max_entries:
                    raise UnsafeSubmissionError(f"{self.path}: more than {self.limits.max_entries} files")
                relative = (relative_folder / name).as_posix()
                status = os.lstat(os.path.join(folder, name))
                if stat.S_ISLNK(status.st_mode):
                    self.refused.append(f"{relative}: symbolic link, not followed")
                    continue
                if not stat.S_ISREG(status.st_mode):
                    continue
                total += status.st_size
                if total > self.limits.max_total_bytes:
                    limit = format_bytes(self.limits.max_total_bytes)
                    raise UnsafeSubmissionError(f"{self.path}: more than the {limit} a submission may hold")
                entries.append(SubmissionEntry(relative, int(status.st_size)))
                self._members[relative] = Path(folder) / name
        return sorted(entries, key=lambda entry: entry.name)

    # ------------------------------------------------------------------------------------------------ reading

    def _open(self, entry: SubmissionEntry):
        member = self._members[entry.name]
        if self._archive is not None:
            return self._archive.open(member)
        descriptor = os.open(member, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return os.fdopen(descriptor, "rb")

    def read(self, entry: SubmissionEntry, limit: int) -> bytes:
        """The bytes of ``entry``; :class:`~defi1.fingerprint.TooLargeError` when it declares or holds more than
        ``limit`` bytes (checked before reading, and counted while streaming)."""
        if entry.size > limit:
            raise TooLargeError(f"{format_bytes(entry.size)}, more than the {format_bytes(limit)} allowed")
        chunks, total = [], 0
        with self._open(entry) as stream:
            for block in iter(lambda: stream.read(_CHUNK_BYTES), b""):
                total += len(block)
                if total > limit:
                    raise TooLargeError(f"more than the {format_bytes(limit)} allowed")
                chunks.append(block)
        return b"".join(chunks)

    def sha256(self, entry: SubmissionEntry, limit: int) -> str:
        """SHA-256 (hex) of ``entry``, streamed; ``TooLargeError`` beyond ``limit`` bytes."""
        if entry.size > limit:
            raise TooLargeError(f"{format_bytes(entry.size)}, more than the {format_bytes(limit)} allowed")
        with self._open(entry) as stream:
            return sha256_stream(stream, limit=limit)

    def local_path(self, entry: SubmissionEntry, work_dir, limit: int) -> Path:
        """A path on disk holding ``entry``'s bytes: the file itself in a folder submission; for a zip, a copy
        extracted into ``work_dir`` (see :meth:`extract`)."""
        if self._archive is None:
            return Path(self._members[entry.name])
        return self.extract(entry, work_dir, limit)

    def extract(self, entry: SubmissionEntry, work_dir, limit: int) -> Path:
        """Write ``entry`` to ``work_dir/<entry name>`` and return that path. The name was checked when listing; the
        target is checked again to lie inside ``work_dir``, opened without following links, and the bytes written
        are counted against ``limit`` (``TooLargeError``; the partial file is removed)."""
        if entry.size > limit:
            raise TooLargeError(f"{format_bytes(entry.size)}, more than the {format_bytes(limit)} allowed")
        root = os.path.realpath(work_dir)
        target = os.path.join(root, *PurePosixPath(entry.name).parts)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.commonpath([root, os.path.realpath(os.path.dirname(target))]) != root:
            raise UnsafeSubmissionError(f"{entry.name}: would be written outside {work_dir}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        total = 0
        try:
            with self._open(entry) as source, os.fdopen(os.open(target, flags, 0o600), "wb") as destination:
                for block in iter(lambda: source.read(_CHUNK_BYTES), b""):
                    total += len(block)
                    if total > limit:
                        raise TooLargeError(f"more than the {format_bytes(limit)} allowed")
                    destination.write(block)
        except BaseException:
            if os.path.lexists(target):
                os.unlink(target)
            raise
        return Path(target)

    # ---------------------------------------------------------------------------------------------- lifecycle

    def close(self):
        if self._archive is not None:
            self._archive.close()
            self._archive = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()



def zip_entry_count(path) -> int | None:
    """The number of entries a zip file's end-of-central-directory record announces (ZIP64 included), read from its
    last 64 KB without parsing the directory; ``None`` when no end record is found (not a zip)."""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        start = max(0, size - (65535 + 22))
        handle.seek(start)
        tail = handle.read()
        position = tail.rfind(b"PK\x05\x06")
        if position < 0 or len(tail) < position + 22:
            return None
        count = int.from_bytes(tail[position + 10:position + 12], "little")
        if count != 0xFFFF:
            return count
        locator = tail.rfind(b"PK\x06\x07", 0, position)  # ZIP64: the locator points at the ZIP64 end record
        if locator < 0:
            return None
        record_offset = int.from_bytes(tail[locator + 8:locator + 16], "little")
        if record_offset + 40 > size:
            return None
        handle.seek(record_offset)
        record = handle.read(40)
        if record[:4] != b"PK\x06\x06":
            return None
        return int.from_bytes(record[32:40], "little")
