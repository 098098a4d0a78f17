"""`driftline profile`: training data in, a reference file the daemon can load out."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from detectors import CategoricalProfile, NumericProfile
from monitor.cli import main
from monitor.errors import DriftlineError
from monitor.reference import load_reference


def write_csv(path: Path, rows: int = 500, seed: int = 1) -> Path:
    rng = random.Random(seed)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "tenure_days", "plan", "coupon", "prediction", "label"])
        for i in range(rows):
            coupon = "" if i % 5 == 0 else rng.choice(["A", "B"])
            writer.writerow(
                [
                    f"c{i}",
                    rng.randint(0, 900),
                    rng.choice(["free", "pro"]),
                    coupon,
                    round(rng.random(), 4),
                    rng.randint(0, 1),
                ]
            )
    return path


def test_a_csv_becomes_a_reference_with_typed_features_and_the_prediction(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "train.csv")
    out = tmp_path / "churn.json"
    assert (
        main(["profile", str(data), "--model", "churn", "-o", str(out), "--exclude", "id,label"])
        == 0
    )
    reference = load_reference(out)
    assert reference.model == "churn"
    features = reference.features.features
    assert set(features) == {"tenure_days", "plan", "coupon"}
    assert isinstance(features["tenure_days"], NumericProfile)
    assert isinstance(features["plan"], CategoricalProfile)
    assert features["coupon"].missing == 100  # every fifth row is empty
    assert reference.features.n_rows == 500
    assert reference.prediction is not None
    assert reference.prediction.numeric("prediction").count == 500
    assert json.loads(out.read_text())["profile_id"] == reference.profile_id


def test_the_same_data_gives_the_same_profile_id_and_other_data_another(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "train.csv")
    ids = []
    for i, source in enumerate([data, data, write_csv(tmp_path / "other.csv", seed=2)]):
        out = tmp_path / f"ref{i}.json"
        main(["profile", str(source), "--model", "m", "-o", str(out)])
        ids.append(load_reference(out).profile_id)
    assert ids[0] == ids[1] != ids[2]


def test_json_lines_of_prediction_events_are_profiled_from_their_features(tmp_path: Path) -> None:
    data = tmp_path / "events.jsonl"
    with open(data, "w") as f:
        for i in range(100):
            event = {
                "id": f"p{i}",
                "model": "m",
                "features": {"x": i, "kind": "a" if i % 2 else "b"},
                "prediction": i / 100,
            }
            f.write(json.dumps(event) + "\n")
        f.write("\n")  # blank lines are skipped
    out = tmp_path / "m.json"
    assert main(["profile", str(data), "--model", "m", "-o", str(out)]) == 0
    reference = load_reference(out)
    assert set(reference.features.features) == {"x", "kind"}
    assert reference.features.numeric("x").maximum == 99


def test_a_bad_row_names_its_number_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "rows.jsonl"
    data.write_text('{"x": 1}\n{"x": [1, 2]}\n')
    out = tmp_path / "m.json"
    assert main(["profile", str(data), "--model", "m", "-o", str(out)]) == 1
    assert "row 2" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "bad name"], "--model must match"),
        (["--bins", "1"], "n_bins"),
    ],
)
def test_bad_arguments_fail_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    data = write_csv(tmp_path / "t.csv", rows=10)
    base = ["profile", str(data), "-o", str(tmp_path / "o.json")]
    if "--model" not in args:
        base += ["--model", "m"]
    assert main(base + args) == 1
    assert message in capsys.readouterr().err


def test_a_damaged_reference_is_refused(tmp_path: Path) -> None:
    data = write_csv(tmp_path / "t.csv", rows=50)
    out = tmp_path / "m.json"
    main(["profile", str(data), "--model", "m", "-o", str(out)])
    state = json.loads(out.read_text())
    state["features"]["n_rows"] = 49
    out.write_text(json.dumps(state))
    with pytest.raises(DriftlineError, match="damaged"):
        load_reference(out)
    out.write_text("{not json")
    with pytest.raises(DriftlineError, match="not valid JSON"):
        load_reference(out)
