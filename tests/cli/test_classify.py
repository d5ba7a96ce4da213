"""Tests of ``defi1 classify train|evaluate|predict`` (in-process through defi1.cli.main, tiny data)."""

import json
import re
import shutil

import pytest

from defi1.cli import main
from tests.classification.conftest import write_tree

TRAIN = ["--model", "dropout_mlp", "--image-size", "8", "--grayscale", "--epochs", "15", "--learning-rate", "0.01",
         "--batch-size", "8", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A dropout MLP trained on 3 digit classes (10 images each) through the CLI; returns (data, run, stdout)."""
    import contextlib
    import io

    root = tmp_path_factory.mktemp("classify")
    data = write_tree(root / "data", per_class=12)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["classify", "train", str(data), str(root / "run"), *TRAIN])
    assert code == 0
    return data, root / "run", out.getvalue()


def printed_accuracies(text):
    return {name: float(value) for name, value in re.findall(r"^(Train|Valid|Test)\s+accuracy = ([0-9.]+)$", text,
                                                              flags=re.MULTILINE)}


def test_train_writes_the_run_and_prints_accuracies_side_by_side(trained):
    _data, run, out = trained
    accuracies = printed_accuracies(out)
    assert set(accuracies) == {"Train", "Valid", "Test"}
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert accuracies["Test"] == pytest.approx(metrics["test_accuracy"], abs=1e-4)
    assert accuracies["Valid"] == pytest.approx(metrics["val_accuracy"], abs=1e-4)
    assert metrics["test_accuracy"] >= 0.75  # 0, 1 and 2 are easy to tell apart
    assert sum(map(sum, metrics["confusion_matrix"])) == 9  # 25 % of 36 images
    for name in ("model.keras", "train/best.keras", "train/last.keras", "train/history.csv",
                 "evaluation/confusion_matrix.png", "evaluation/learning_curves.png",
                 "evaluation/classification_report.txt"):
        assert (run / name).is_file(), name


def test_a_second_train_into_the_same_folder_goes_to_a_numbered_one(trained, tmp_path, capsys):
    """A student who runs the same command twice keeps the first run (before: refused, "holds a previous run")."""
    from defi1.fingerprint import sha256_file

    data, _run, _out = trained
    first = tmp_path / "run"
    shutil.copytree(_run, first)
    before = {path: sha256_file(path) for path in first.rglob("*") if path.is_file()}
    assert main(["classify", "train", str(data), str(first), *TRAIN, "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    second = tmp_path / "run2"
    assert f"model: {second / 'model.keras'}" in out
    assert f"evaluation: {second / 'evaluation'}" in out
    assert (second / "model.keras").is_file() and (second / "evaluation" / "metrics.json").is_file()
    assert {path: sha256_file(path) for path in first.rglob("*") if path.is_file()} == before


def test_evaluate_reproduces_the_training_metrics(trained, tmp_path, capsys):
    data, run, _ = trained
    assert main(["classify", "evaluate", str(run / "model.keras"), str(data), "--out", str(tmp_path / "eval")]) == 0
    out = capsys.readouterr().out
    whole = printed_accuracies(out)["Test"]  # a plain class folder is evaluated whole, as "test"
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    expected = (metrics["train_accuracy"] * 21 + metrics["val_accuracy"] * 6 + metrics["test_accuracy"] * 9) / 36
    assert whole == pytest.approx(expected, abs=1e-4)
    assert "precision" in out and (tmp_path / "eval" / "confusion_matrix.png").is_file()


def test_evaluate_on_a_split_folder_matches_training(trained, tmp_path, capsys):
    data, run, _ = trained
    assert main(["data", "split", str(data), str(tmp_path / "split")]) == 0
    capsys.readouterr()
    assert main(["classify", "evaluate", str(run / "model.keras"), str(tmp_path / "split")]) == 0
    printed = printed_accuracies(capsys.readouterr().out)
    metrics = json.loads((run / "evaluation" / "metrics.json").read_text())
    assert printed["Train"] == pytest.approx(metrics["train_accuracy"], abs=1e-4)
    assert printed["Test"] == pytest.approx(metrics["test_accuracy"], abs=1e-4)


def test_evaluate_refuses_data_with_other_classes(trained, tmp_path, capsys):
    _data, run, _ = trained
    other = write_tree(tmp_path / "other", classes=(3, 4, 5, 6), per_class=2)
    assert main(["classify", "evaluate", str(run / "model.keras"), str(other)]) == 1
    assert "predicts 3 classes but" in capsys.readouterr().err
    shutil.rmtree(other / "6")
    assert main(["classify", "evaluate", str(run / "model.keras"), str(other)]) == 1
    assert "do not match the model's 3 classes" in capsys.readouterr().err


def test_predict_folder_skips_and_reports_unreadable_files(trained, tmp_path, capsys):
    data, run, _ = trained
    folder = tmp_path / "to_classify"
    shutil.copytree(data / "1", folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("hello")
    assert main(["classify", "predict", str(run / "model.keras"), str(folder), "--out", str(tmp_path / "p.csv")]) == 0
    out = capsys.readouterr().out
    assert "12 image(s) classified, 2 skipped" in out
    assert "broken.jpg" in out and "notes.txt" in out
    rows = (tmp_path / "p.csv").read_text().splitlines()
    assert rows[0] == "path,class,probability" and len(rows) == 13
    predicted = [row.split(",")[1] for row in rows[1:]]
    assert predicted.count("1") >= 9  # training images of class 1


def test_predict_single_unreadable_image_is_an_error_naming_it(trained, tmp_path, capsys):
    _data, run, _ = trained
    (tmp_path / "broken.png").write_bytes(b"nothing")
    assert main(["classify", "predict", str(run / "model.keras"), str(tmp_path / "broken.png")]) == 1
    assert "broken.png: cannot decode image" in capsys.readouterr().err
    assert main(["classify", "predict", str(run / "model.keras"), str(tmp_path / "missing.png")]) == 1
    assert "missing.png: no such image file" in capsys.readouterr().err


def test_train_errors_missing_data_and_unwritable_output(tmp_path, capsys):
    assert main(["classify", "train", str(tmp_path / "missing"), str(tmp_path / "runs" / "run"), *TRAIN]) == 1
    assert "missing: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # issue 12: a failed run leaves no empty output folder
    data = write_tree(tmp_path / "data", per_class=4)
    (tmp_path / "file").write_text("x")
    assert main(["classify", "train", str(data), str(tmp_path / "file" / "run"), *TRAIN]) == 1
    assert "cannot create the output folder" in capsys.readouterr().err


@pytest.mark.smoke
def test_smoke_help(capsys):
    for command in ("train", "evaluate", "predict"):
        with pytest.raises(SystemExit, match="^0$") as exit_info:
            main(["classify", command, "--help"])
        assert exit_info.value.code == 0
    assert "--resume" in capsys.readouterr().out


def test_a_decompression_bomb_is_skipped_by_train_and_predict(trained, tmp_path, capsys):
    # Issue 12: a header declaring 60000 x 60000 pixels crashed both with PIL's DecompressionBombError.
    from tests.conftest import write_decompression_bomb

    data = write_tree(tmp_path / "data", per_class=8)
    write_decompression_bomb(data / "1" / "huge.png")
    assert main(["classify", "train", str(data), str(tmp_path / "run"), "--model", "dropout_mlp", "--image-size", "8",
                 "--grayscale", "--epochs", "1", "--batch-size", "8", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"skipped \S*huge\.png: image too large to read", out)
    _data, run, _ = trained
    assert main(["classify", "predict", str(run / "model.keras"), str(data / "1"), "--out", str(tmp_path / "p.csv")]) == 0
    out = capsys.readouterr().out
    assert "8 image(s) classified, 1 skipped" in out and "huge.png: image too large to read" in out
    assert main(["classify", "predict", str(run / "model.keras"), str(data / "1" / "huge.png")]) == 1
    assert "huge.png: image too large to read" in capsys.readouterr().err
