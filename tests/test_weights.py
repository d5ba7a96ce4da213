"""defi1.weights: the registry of darknet's released files and the verified download (offline: get_file is
replaced by a local copy)."""

import shutil
from pathlib import Path

import pytest

from defi1.weights import DARKNET_WEIGHTS, DownloadError, download_darknet_weights, file_digest


def test_the_released_tiny_weights_have_the_registered_size_and_checksum(released_tiny_weights):
    released = DARKNET_WEIGHTS["yolov3-tiny"]
    assert released_tiny_weights.stat().st_size == released.size == 35_434_956
    assert file_digest(released_tiny_weights, released.algorithm) == released.digest


def test_file_digest_of_a_known_content(tmp_path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert file_digest(path, "md5") == "900150983cd24fb0d6963f7d28e17f72"  # RFC 1321's test vector
    assert file_digest(path, "sha512").startswith("ddaf35a193617aba")  # FIPS 180-2's test vector


def _fake_get_file(content: bytes, calls: list):
    def get_file(fname, origin, cache_subdir, cache_dir):
        calls.append((fname, origin, cache_subdir))
        folder = Path(cache_dir) / cache_subdir
        folder.mkdir(parents=True, exist_ok=True)
        (folder / fname).write_bytes(content)
        return str(folder / fname)
    return get_file


def test_download_checks_the_checksum_and_deletes_a_wrong_file(tmp_path, monkeypatch):
    import keras

    calls = []
    monkeypatch.setattr(keras.utils, "get_file", _fake_get_file(b"a truncated download", calls))
    with pytest.raises(DownloadError, match=r"md5 [0-9a-f]{32} is not that of darknet's released "
                                            r"yolov3-tiny.weights \(3bcd6b390912c18924b46b26a9e7ff53\)"):
        download_darknet_weights("yolov3-tiny", cache_dir=tmp_path)
    assert calls == [("yolov3-tiny.weights", "https://pjreddie.com/media/files/yolov3-tiny.weights", "models")]
    assert not (tmp_path / "models" / "yolov3-tiny.weights").exists()


def test_download_returns_the_verified_file(tmp_path, monkeypatch, released_tiny_weights):
    import keras

    monkeypatch.setattr(keras.utils, "get_file", _fake_get_file(released_tiny_weights.read_bytes(), []))
    path = download_darknet_weights("yolov3-tiny", cache_dir=tmp_path)
    assert path == tmp_path / "models" / "yolov3-tiny.weights" and path.stat().st_size == 35_434_956


def test_offline_download_is_a_clear_error(tmp_path, monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://pjreddie.com/media/files/yolov3.weights: None -- [Errno -3] "
                        "Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(DownloadError, match=r"cannot download https://pjreddie.com/media/files/yolov3.weights "
                                            r"\(Exception: URL fetch failure .*\); offline, train from scratch"):
        download_darknet_weights("yolov3", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown darknet weights 'yolov4': expected one of yolov3-tiny, yolov3, "
                                         "darknet53"):
        download_darknet_weights("yolov4")


def test_every_registered_file_names_an_https_url_and_a_full_digest():
    lengths = {"md5": 32, "sha256": 64, "sha512": 128}
    for name, released in DARKNET_WEIGHTS.items():
        assert released.url.startswith("https://") and released.url.endswith("/" + released.file_name), name
        assert len(released.digest) == lengths[released.algorithm], name
        int(released.digest, 16)
