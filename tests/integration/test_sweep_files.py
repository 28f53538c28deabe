"""The documented sweep examples, their JSON Schema, and `edmips validate` /
`edmips plan` as a user meets them."""
import json
import pathlib
import subprocess

import jsonschema
import pytest

from conftest import ROOT, edmips_binary

SWEEPS = ROOT / "sweeps"
SCHEMA = json.loads((SWEEPS / "sweep.schema.json").read_text())
EXAMPLES = sorted(p for p in SWEEPS.glob("*.json") if p.name != "sweep.schema.json")


def test_there_are_quick_full_cifar_and_imagenet_examples():
    names = {p.stem for p in EXAMPLES}
    assert {"fashion-quick", "fashion-full", "cifar10-paper", "imagenet-paper"} <= names


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_sweep_matches_the_schema_and_validates(path):
    jsonschema.Draft202012Validator(SCHEMA).validate(json.loads(path.read_text()))
    result = subprocess.run([edmips_binary(), "validate", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout


def test_the_schema_rejects_what_validate_rejects(tmp_path):
    bad = json.loads((SWEEPS / "fashion-quick.json").read_text())
    bad["axes"]["bits"][0]["weights"][0] = 9
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(bad)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    result = subprocess.run([edmips_binary(), "validate", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert f"{path}: /axes/bits/0/weights/0: expected an integer in [1, 8], found the integer 9" in result.stderr


def test_validate_suggests_the_near_spelling_of_an_unknown_key(tmp_path):
    bad = json.loads((SWEEPS / "fashion-quick.json").read_text())
    bad["axes"]["complexity_penalties"] = bad["axes"].pop("complexity_penalty")
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(bad))
    result = subprocess.run([edmips_binary(), "validate", str(path)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "/axes/complexity_penalties: unknown key; did you mean \"complexity_penalty\"?" in result.stderr
    assert list(tmp_path.iterdir()) == [path]  # nothing written


def test_validate_reports_broken_json_and_a_missing_file(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x", ')
    result = subprocess.run([edmips_binary(), "validate", str(path)], capture_output=True, text=True)
    assert result.returncode == 2 and "not valid JSON" in result.stderr
    result = subprocess.run([edmips_binary(), "validate", str(tmp_path / "nope.json")], capture_output=True, text=True)
    assert result.returncode == 2 and "nope.json" in result.stderr


def test_plan_lists_every_trial_with_its_id_lambda_bits_seed_and_model():
    result = subprocess.run([edmips_binary(), "plan", str(SWEEPS / "fashion-quick.json")],
                            capture_output=True, text=True, check=True)
    lines = result.stdout.strip().splitlines()
    sweep = json.loads((SWEEPS / "fashion-quick.json").read_text())
    searches = len(sweep["axes"]["complexity_penalty"]) * len(sweep["axes"]["seeds"])
    baselines = len(sweep["baselines"]) * len(sweep["axes"]["seeds"])
    assert lines[-1] == f"{searches + baselines} trials"
    rows = lines[1:-1]
    assert len(rows) == searches + baselines
    assert sum("uniform" in r for r in rows) == baselines
    assert all("simple-cnn" in r and "seed 1" in r for r in rows)
    # IDs are stable: planning twice gives the same IDs.
    again = subprocess.run([edmips_binary(), "plan", str(SWEEPS / "fashion-quick.json")],
                           capture_output=True, text=True, check=True)
    assert again.stdout == result.stdout
