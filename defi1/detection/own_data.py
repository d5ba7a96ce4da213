"""A student's own detection dataset, as notebook 2 takes it from its ``DATASET`` parameter.

:func:`prepare_own_dataset` accepts what students have after annotating their photos: a dataset YAML (labelImg's
YOLO output with a YAML, a Roboflow export), a folder with ``images/`` and ``labels/``, or a folder exported by an
annotation tool (LabelMe JSON files, Pascal VOC XML from labelImg or CVAT, a COCO JSON from CVAT or Roboflow). It
never writes into that dataset: one that already has train, val and test splits is used as it is; any other is split
(stratified, seeded, :func:`defi1.detection.splits.split_detection_dataset`) into a copy in the run folder.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from defi1.detection.labels import find_dataset_yaml, load_dataset_yaml
from defi1.detection.splits import split_detection_dataset

#: The file that marks a folder as a copy made by :func:`prepare_own_dataset` (and so replaceable by it).
MARKER = ".defi1-own-dataset"


def _complete_yaml(source: Path) -> Path | None:
    """``source``'s dataset YAML when it has train, val and test splits, else ``None``."""
    yaml_path = source if source.is_file() and source.suffix.lower() in (".yaml", ".yml") else (
        find_dataset_yaml(source) if source.is_dir() else None)
    if yaml_path is None:
        return None
    config = load_dataset_yaml(yaml_path)
    return yaml_path if all(config.sources.get(split) for split in ("train", "val", "test")) else None


def prepare_own_dataset(source, out_dir, *, val_size=0.2, test_size=0.2, seed: int = 42) -> Path:
    """The dataset YAML to train and evaluate on, from a student's dataset ``source`` (see the module docstring).

    Args:
        source: a dataset YAML, a COCO JSON file, or a dataset folder of any form
            :func:`defi1.detection.formats.load_dataset` reads. Never written to.
        out_dir: where a split copy is written when ``source`` lacks a train, val or test split; a previous copy
            made by this function there is replaced, any other content is refused (``FileExistsError``).
        val_size, test_size, seed: the split (fractions of the images).
    Raises ``FileNotFoundError`` for a missing ``source``, ``ValueError`` when ``out_dir`` lies inside it.
    """
    source, out_dir = Path(source), Path(out_dir)
    if not source.exists():
        raise FileNotFoundError(f"{source}: no such dataset (a dataset YAML, or a folder exported by labelImg, "
                                "LabelMe, CVAT or Roboflow)")
    complete = _complete_yaml(source)
    if complete is not None:
        return complete
    source_dir = source.resolve() if source.is_dir() else source.resolve().parent
    if out_dir.resolve() == source_dir or source_dir in out_dir.resolve().parents:
        raise ValueError(f"{out_dir}: the split copy must be written outside the dataset {source}")
    if out_dir.exists() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).is_file():
            raise FileExistsError(f"{out_dir}: not empty and not a copy made by defi1 (choose another folder)")
        shutil.rmtree(out_dir)
    yaml_path = split_detection_dataset(source, out_dir, val_size=val_size, test_size=test_size, seed=seed)
    (out_dir / MARKER).write_text(f"split copy of {source.resolve()} (seed {seed}); replaced on the next run\n")
    return yaml_path
