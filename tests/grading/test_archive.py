"""Tests of defi1.grading.archive: untrusted zip files and folders are listed and read within limits."""

import os
import stat
import zipfile

import pytest

from defi1.fingerprint import TooLargeError
from defi1.grading.archive import (SubmissionFiles, SubmissionLimits, UnsafeSubmissionError, format_bytes,
                                   unsafe_name_reason, zip_entry_count)
from tests.grading.builders import files_outside, write_zip_bomb

pytestmark = pytest.mark.backend_agnostic  # files only


@pytest.mark.parametrize("name, reason", [
    ("results/x.json", None),
    ("../escape.txt", "'..' leaves the submission folder"),
    ("a/../../escape.txt", "'..' leaves the submission folder"),
    ("..\\..\\windows.txt", "'..' leaves the submission folder"),
    ("/etc/cron.d/x", "absolute path"),
    ("C:\\Users\\x.txt", "absolute path"),
    ("c:/x.txt", "absolute path"),
])
def test_unsafe_names(name, reason):
    assert unsafe_name_reason(name) == reason


def test_format_bytes():
    assert [format_bytes(count) for count in (512, 1536, 4 << 20, 3 << 30)] == ["512 bytes", "1.5 KB", "4.0 MB",
                                                                                "3.0 GB"]


def test_traversal_absolute_and_symlink_entries_are_refused_and_never_written(tmp_path):
    path = tmp_path / "mallory.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("project/results/classification.json", "{}")
        archive.writestr("../../escaped.txt", "outside")
        archive.writestr("/tmp/absolute.txt", "absolute")
        link = zipfile.ZipInfo("project/notes.txt")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")  # a symbolic link to /etc/passwd
    work = tmp_path / "work"
    before = files_outside(tmp_path)
    with SubmissionFiles(path) as files:
        assert [entry.name for entry in files.entries] == ["project/results/classification.json"]
        assert files.refused == ["../../escaped.txt: '..' leaves the submission folder",
                                 "/tmp/absolute.txt: absolute path", "project/notes.txt: symbolic link, not followed"]
        written = files.extract(files.entries[0], work, limit=1000)
    assert written == work / "project" / "results" / "classification.json" and written.read_text() == "{}"
    assert files_outside(tmp_path) - before == {str(written)}  # nothing else, anywhere


def test_a_symlink_in_a_folder_submission_is_not_followed(tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"private": true}')
    folder = tmp_path / "oscar"
    (folder / "results").mkdir(parents=True)
    (folder / "results" / "classification.json").symlink_to(secret)
    (folder / "linked_folder").symlink_to(tmp_path)
    (folder / "notes.txt").write_text("hello")
    with SubmissionFiles(folder) as files:
        assert [entry.name for entry in files.entries] == ["notes.txt"]
        assert files.refused == ["linked_folder: symbolic link, not followed",
                                 "results/classification.json: symbolic link, not followed"]


def test_a_zip_bomb_is_refused_before_anything_is_read(tmp_path):
    bomb = write_zip_bomb(tmp_path / "bomb.zip")  # 2 entries declaring 3 GB each, 458 bytes on disk
    assert bomb.stat().st_size < 1000
    with pytest.raises(UnsafeSubmissionError, match=r"bomb.zip: zip bomb\? 5.6 GB uncompressed from \d+ bytes, "
                                                    r"more than the 4.0 GB a submission may hold: not extracted"):
        SubmissionFiles(bomb)
    # a real one: 40 MB of zeros compress to 40 KB; with a 10 MB limit it is refused the same way
    real = tmp_path / "real.zip"
    with zipfile.ZipFile(real, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.bin", b"\0" * (40 << 20))
    with pytest.raises(UnsafeSubmissionError, match="zip bomb"):
        SubmissionFiles(real, SubmissionLimits(max_total_bytes=10 << 20))
    with pytest.raises(UnsafeSubmissionError, match=r"real.zip: \d\d.\d KB, more than the 10.0 KB a submission"):
        SubmissionFiles(real, SubmissionLimits(max_total_bytes=10 << 10))  # the zip file itself is too large


def test_entry_count_is_bounded(tmp_path):
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for index in range(30):
            archive.writestr(f"f{index}.txt", "x")
    assert zip_entry_count(path) == 30  # read from the end record, before zipfile parses the directory
    with pytest.raises(UnsafeSubmissionError, match="many.zip: 30 entries, more than 20: not extracted"):
        SubmissionFiles(path, SubmissionLimits(max_entries=20))
    with zipfile.ZipFile(tmp_path / "zip64.zip", "w", allowZip64=True) as archive:
        for index in range(70_000):  # more than 65535 entries: the count lives in the ZIP64 end record
            archive.writestr(f"{index}", b"")
    assert zip_entry_count(tmp_path / "zip64.zip") == 70_000
    with pytest.raises(UnsafeSubmissionError, match="70000 entries, more than 20000"):
        SubmissionFiles(tmp_path / "zip64.zip")
    (tmp_path / "plain.txt").write_bytes(b"not a zip")
    assert zip_entry_count(tmp_path / "plain.txt") is None
    folder = tmp_path / "many"
    folder.mkdir()
    for index in range(30):
        (folder / f"f{index}.txt").write_text("x")
    with pytest.raises(UnsafeSubmissionError, match="more than 20 files"):
        SubmissionFiles(folder, SubmissionLimits(max_entries=20))


def test_reads_are_bounded_by_the_header_and_while_streaming(tmp_path):
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.txt", b"a" * 5000)
        archive.writestr("small.txt", b"b" * 10)
    with SubmissionFiles(path) as files:
        big, small = files.entries
        with pytest.raises(TooLargeError, match="4.9 KB, more than the 1000 bytes allowed"):
            files.read(big, 1000)
        assert files.read(small, 1000) == b"b" * 10
    # the central directory now claims big.txt holds 100 bytes: the read stops there and the CRC check fails
    data = bytearray(path.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central + 24:central + 28] = (100).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with SubmissionFiles(path) as files:
        big = files.entries[0]
        assert big.size == 100
        with pytest.raises(zipfile.BadZipFile, match="Bad CRC-32"):
            files.read(big, 1000)


def test_extraction_is_counted_and_leaves_no_partial_file(tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "model.keras").write_bytes(b"m" * 3000)
    with SubmissionFiles(folder) as files:
        (entry,) = files.entries
        assert files.local_path(entry, tmp_path / "work", limit=5000) == folder / "model.keras"  # used in place
        with pytest.raises(TooLargeError, match="more than the .* allowed"):
            files.extract(entry, tmp_path / "work", limit=2000)
    assert not os.path.exists(tmp_path / "work" / "model.keras")
