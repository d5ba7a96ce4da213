"""``defi1 demo`` end to end: the run folder, the report and the grading results files."""

import json

import pytest

from defi1.cli import main
from defi1.results import load_results


@pytest.mark.smoke
def test_smoke_demo_writes_run_folder_report_and_results(tmp_path):
    out_dir = tmp_path / "demo"
    assert main(["demo", "--smoke", "--out", str(out_dir)]) == 0
    summary = json.loads((out_dir / "summary.json").read_text())
    assert summary["smoke"] is True
    assert set(summary["parts"]) == {"classification", "localisation", "realtime"}
    for part, metric in (("classification", "test_accuracy"), ("localisation", "map50"),
                         ("realtime", "fps_end_to_end")):
        results = load_results(out_dir / "results" / f"{part}.json")
        assert results["smoke"] is True and results["part"] == part
        assert metric in results["metrics"]
    report = (out_dir / "report.md").read_text()
    assert "## Classification" in report and "## Localisation" in report and "## Realtime" in report
    # provenance: each file names the model that produced it (relative to the run folder) and its SHA-256
    from defi1.detection.labels import split_fingerprint
    from defi1.fingerprint import sha256_file

    for part in ("classification", "localisation", "realtime"):
        provenance = load_results(out_dir / "results" / f"{part}.json")["provenance"]
        assert provenance["model_sha256"] == sha256_file(out_dir / provenance["model_file"])
    localisation = load_results(out_dir / "results" / "localisation.json")["provenance"]
    assert localisation["model_file"].startswith("part2_localisation/") and localisation["split"] == "test"
    assert localisation["dataset_fingerprint"] == split_fingerprint(
        out_dir / "part2_localisation" / "shapes" / "data.yaml", "test")
    assert localisation["input_size"] == 96 and localisation["thresholds"]["conf_threshold"] == 0.005
    assert load_results(out_dir / "results" / "classification.json")["provenance"]["input_size"] in (8, 12)


def test_demo_rejects_unknown_part(tmp_path, capsys):
    assert main(["demo", "--smoke", "--parts", "4", "--out", str(tmp_path / "demo")]) == 1
    assert "unknown part 4" in capsys.readouterr().err
