"""Tests of ``defi1 data digits|split|download`` (in-process through defi1.cli.main)."""

import numpy as np
import pytest

from defi1.cli import main
from tests.classification.conftest import write_tree


def test_data_digits_writes_the_tree(tmp_path, capsys):
    assert main(["data", "digits", str(tmp_path / "digits"), "--max-per-class", "2", "--scale", "1"]) == 0
    assert "wrote 20 digit images in 10 class folders" in capsys.readouterr().out
    assert len(list((tmp_path / "digits").rglob("*.png"))) == 20


def test_data_split_writes_stratified_folders_and_reports_skips(tmp_path, capsys):
    source = write_tree(tmp_path / "source")
    (source / "0" / "readme.txt").write_text("not an image")
    assert main(["data", "split", str(source), str(tmp_path / "split")]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "readme.txt" in out
    assert "train: 14, val: 4, test: 6" in out
    assert "no image found in two splits" in out
    for part, count in (("train", 14), ("val", 4), ("test", 6)):
        files = list((tmp_path / "split" / part).rglob("*.png"))
        assert len(files) == count
        assert sorted({path.parent.name for path in files}) == ["0", "1", "2"]
    # the same output folder again: refused, nothing overwritten
    assert main(["data", "split", str(source), str(tmp_path / "split")]) == 1
    assert "not empty" in capsys.readouterr().err


def test_data_split_class_with_too_few_images(tmp_path, capsys):
    source = write_tree(tmp_path / "source", per_class=8)
    for path in sorted((source / "2").glob("*.png"))[2:]:
        path.unlink()
    assert main(["data", "split", str(source), str(tmp_path / "split")]) == 1
    assert "class '2' has 2 item(s)" in capsys.readouterr().err
    assert not (tmp_path / "split").exists()


def test_data_split_missing_source(tmp_path, capsys):
    assert main(["data", "split", str(tmp_path / "missing"), str(tmp_path / "out")]) == 1
    assert "missing: no such folder" in capsys.readouterr().err


def test_data_split_dispatches_detection_datasets(tmp_path, monkeypatch, capsys):
    import defi1.detection.splits as splits

    calls = []

    def fake_split(source_dir, out_dir, **options):
        calls.append((source_dir, out_dir, options))
        return tmp_path / "out" / "data.yaml"

    monkeypatch.setattr(splits, "split_detection_dataset", fake_split)
    (tmp_path / "det" / "images").mkdir(parents=True)
    (tmp_path / "det" / "labels").mkdir()
    assert main(["data", "split", str(tmp_path / "det"), str(tmp_path / "out"), "--seed", "3"]) == 0
    assert calls == [(tmp_path / "det", str(tmp_path / "out"), {"val_size": 0.2, "test_size": 0.25, "seed": 3})]
    assert "data.yaml" in capsys.readouterr().out


def test_data_download_offline_error(tmp_path, monkeypatch, capsys):
    from defi1.classification import datasets

    def offline():
        raise OSError("network is unreachable")

    monkeypatch.setattr(datasets, "_keras_loader", lambda name: offline)
    assert main(["data", "download", "mnist", str(tmp_path / "mnist")]) == 1
    assert "internet connection" in capsys.readouterr().err


def test_data_download_writes_images(tmp_path, monkeypatch, capsys):
    from defi1.classification import datasets

    images = np.zeros((2, 28, 28), dtype=np.uint8)
    monkeypatch.setattr(datasets, "_keras_loader",
                        lambda name: lambda: ((images, np.array([4, 7])), (images[:1], np.array([7]))))
    assert main(["data", "download", "mnist", str(tmp_path / "mnist")]) == 0
    assert sorted(p.relative_to(tmp_path / "mnist").as_posix() for p in (tmp_path / "mnist").rglob("*.png")) == [
        "test/7/mnist_00000.png", "train/4/mnist_00000.png", "train/7/mnist_00001.png"]


@pytest.mark.smoke
def test_smoke_help(capsys):
    for command in (["data", "digits"], ["data", "split"], ["data", "download"]):
        with pytest.raises(SystemExit, match="^0$") as exit_info:
            main([*command, "--help"])
        assert exit_info.value.code == 0
    assert "stratified" in capsys.readouterr().out
