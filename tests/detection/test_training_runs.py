"""Run folders of detection training (issues 11 and 12): a new run never touches an earlier one, a resumed run must
be the same run, the validation mAP is measured and chooses best.keras, checkpoints are the right size, a full disk
is one clear error, and a failed run leaves nothing behind."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from defi1.cli import main
from defi1.detection.training import LOG_FILE, train_detector
from defi1.errors import ConfigError
from defi1.runs import BEST_MODEL, LAST_MODEL, STATE_FILE, read_csv_history

from .conftest import narrow_tiny_cfg, shapes_dataset


def _files(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def _dead_pid():
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    return int(finished.stdout)


def test_a_failed_new_run_leaves_the_earlier_run_and_no_empty_folder(tmp_path):
    """Issue 12: `detect train` into a folder holding a run deleted its state.json and log before checking anything;
    now the new run goes to train2, and when it fails (here: a missing weights file) train2 is removed again."""
    data_yaml = shapes_dataset(tmp_path / "shapes", num_images=2, image_size=64)
    earlier = tmp_path / "runs" / "train"
    earlier.mkdir(parents=True)
    for name, content in ((STATE_FILE, b'{"epochs_completed": 4}'), (LOG_FILE, b"epoch,loss\n0,1.0\n"),
                          (BEST_MODEL, b"best"), (LAST_MODEL, b"last")):
        (earlier / name).write_bytes(content)
    before = _files(earlier)
    logged = []
    with pytest.raises(FileNotFoundError, match="missing.weights: no such weights file"):
        train_detector(data=data_yaml, model=str(narrow_tiny_cfg(tmp_path / "narrow.cfg")), input_size=64, epochs=1,
                       weights=tmp_path / "missing.weights", out_dir=earlier, verbose=0, log=logged.append)
    assert _files(earlier) == before
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == ["train"]  # no empty train2
    assert any("this run writes to" in line and line.rstrip().endswith("to continue it)") for line in logged)


@pytest.mark.slow
def test_runs_report_map_keep_earlier_runs_and_resume_only_the_same_run(tmp_path, capsys, monkeypatch):
    import keras

    data_yaml = shapes_dataset(tmp_path / "shapes", num_images=4, image_size=64)
    cfg = narrow_tiny_cfg(tmp_path / "narrow.cfg")
    out = tmp_path / "runs" / "train"
    options = dict(data=data_yaml, model=str(cfg), input_size=64, epochs=2, batch_size=2, augment=False,
                   early_stopping_patience=0, verbose=0, log=lambda message: None)
    result = train_detector(out_dir=out, **options)

    # Issue 11: the validation mAP every epoch, in the log and the state; best.keras chosen on map50-95.
    history = read_csv_history(out / LOG_FILE)
    for key in ("val_map50", "val_map50_95", "val_precision", "val_recall"):
        assert len(history[key]) == 2 and all(0.0 <= value <= 1.0 for value in history[key]), key
    state = json.loads((out / STATE_FILE).read_text())
    assert (state["monitor"], state["mode"]) == ("val_map50_95", "max")
    best_index = int(np.argmax(history["val_map50_95"]))  # the first of equals
    assert state["best_epoch"] == best_index + 1 == result.best_epoch
    assert state["best_value"] == pytest.approx(history["val_map50_95"][best_index])
    assert result.best_metrics["map50-95"] == pytest.approx(history["val_map50_95"][best_index])
    assert result.validation_map_seconds is not None and result.validation_map_seconds > 0
    assert set(state["settings"]) >= {"data", "model", "input_size"}
    # Issue 11: best.keras is the weights and config (the size of the weights); last.keras adds the optimizer.
    weights_bytes = sum(weight.size * 4 for weight in keras.saving.load_model(out / BEST_MODEL).get_weights())
    assert (out / BEST_MODEL).stat().st_size / weights_bytes < 1.3
    assert (out / LAST_MODEL).stat().st_size / (out / BEST_MODEL).stat().st_size > 2.5

    # A second run with the same --out goes to train2; the first is untouched.
    before = _files(out)
    second = train_detector(out_dir=out, **dict(options, epochs=1))
    assert second.out_dir == tmp_path / "runs" / "train2" and _files(out) == before

    # Issue 12: --resume with another input size or other data is refused, naming what differs.
    with pytest.raises(ConfigError, match=r"cannot resume with --input-size 96 \(the run: 64\); resume with"):
        train_detector(out_dir=out, resume=True, **dict(options, epochs=3, input_size=96))
    other_data = shapes_dataset(tmp_path / "other", num_images=2, image_size=64)
    with pytest.raises(ConfigError, match=r"cannot resume with --data .*other.*data.yaml \(the run: .*shapes"):
        train_detector(out_dir=out, resume=True, **dict(options, epochs=3, data=other_data))
    assert _files(out) == before

    # Issue 12: a killed write's temporary is removed when the run resumes; a full disk while writing the next
    # checkpoint is a one-line error (no traceback), the last good checkpoint intact, no temporary left.
    (out / f".last.tmp{_dead_pid()}-0123abcd.keras").write_bytes(b"half")
    original_save = keras.Model.save

    def full_disk_for_last(model, path, *args, **kwargs):
        if ".last." in str(path):
            with open(path, "wb") as handle:
                handle.write(b"half")
            raise OSError(28, "No space left on device")
        return original_save(model, path, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "save", full_disk_for_last)
    code = main(["detect", "train", "--data", str(data_yaml), "--model", str(cfg), "--input-size", "64", "--epochs",
                 "3", "--batch-size", "2", "--no-augment", "--out", str(out), "--resume", "--progress", "0"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err == (f"defi1: error: {out / LAST_MODEL}: cannot write the checkpoint of epoch 3, disk full (No "
                            f"space left on device); the last good checkpoint {out / LAST_MODEL} is intact; free "
                            "some space and continue with --resume\n")
    assert "Removed 1 temporary file(s) of an interrupted write" in captured.out
    assert (out / LAST_MODEL).read_bytes() == before[LAST_MODEL]
    assert json.loads((out / STATE_FILE).read_text())["epochs_completed"] == 2
    assert not [path.name for path in out.iterdir() if ".tmp" in path.name]
