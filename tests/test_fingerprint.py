"""Tests of defi1.fingerprint: file hashes and dataset fingerprints."""

import hashlib
import io

import pytest

from defi1.fingerprint import TooLargeError, fingerprint_entries, sha256_file, sha256_stream

pytestmark = pytest.mark.backend_agnostic


def test_sha256_of_a_file_is_the_standard_digest(tmp_path):
    path = tmp_path / "abc.bin"
    path.write_bytes(b"abc")
    # FIPS 180-2's example: SHA-256("abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 20_000)  # several 1 MiB chunks
    assert sha256_file(big) == hashlib.sha256(big.read_bytes()).hexdigest()


def test_stream_limit():
    assert sha256_stream(io.BytesIO(b"x" * 10), limit=10) == hashlib.sha256(b"x" * 10).hexdigest()
    with pytest.raises(TooLargeError, match="more than 9 bytes"):
        sha256_stream(io.BytesIO(b"x" * 10), limit=9)


def test_fingerprint_layout_and_order():
    expected = hashlib.sha256()
    for part in (b"a.jpg", b"0 0.5 0.5 0.1 0.1\n", b"b.jpg", b""):  # sorted by name, each length-prefixed
        expected.update(len(part).to_bytes(8, "big") + part)
    entries = [("b.jpg", b""), ("a.jpg", "0 0.5 0.5 0.1 0.1\n")]
    assert fingerprint_entries(entries) == expected.hexdigest()
    assert fingerprint_entries(reversed(entries)) == expected.hexdigest()
    # moving bytes between a name and its content changes the fingerprint
    assert fingerprint_entries([("ab", b"c")]) != fingerprint_entries([("a", b"bc")])
