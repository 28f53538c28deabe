"""The image-folder data path from the command line: a generated folder,
the example sweep on real MPI ranks, and exit-3 errors naming the file."""
import json
import subprocess

import pytest

from conftest import ROOT, edmips_binary, requires_mpirun


def generate(folder, *extra):
    subprocess.run([edmips_binary(), "generate-folder", str(folder), "--classes", "4", "--train-per-class", "24",
                    "--val-per-class", "6", "--width", "96", "--height", "72", "--vary-sizes", "--odd-formats",
                    *extra], check=True, capture_output=True)


def trial_config(folder, **dataset):
    return {"seed": 1, "threads": 1,
            "dataset": {"name": "image-folder", "path": str(folder), "image_size": 32, **dataset},
            "model": {"name": "simple-cnn"},
            "search": {"epochs": 1, "batch_size": 16, "complexity_penalty": 0.001},
            "train": {"epochs": 1, "batch_size": 16}}


def run_trial(tmp_path, config, env_cache):
    path = tmp_path / "trial.json"
    path.write_text(json.dumps(config))
    return subprocess.run([edmips_binary(), "trial", str(path), "--out", str(tmp_path / "out"), "-q"],
                          capture_output=True, text=True, env=env_cache)


@pytest.fixture
def env_cache(tmp_path):
    import os
    env = dict(os.environ)
    env["EDMIPS_CACHE_DIR"] = str(tmp_path / "cache")
    return env


@requires_mpirun
def test_the_example_folder_sweep_runs_on_a_generated_folder(tmp_path, env_cache):
    from conftest import mpi_env
    folder = tmp_path / "data" / "synthetic-folder"
    generate(folder)
    definition = json.loads((ROOT / "sweeps" / "folder-quick.json").read_text())
    definition["base"]["dataset"]["path"] = str(folder)
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps(definition))
    env = mpi_env()
    env["EDMIPS_CACHE_DIR"] = env_cache["EDMIPS_CACHE_DIR"]
    result = subprocess.run(["mpirun", "-np", "2", "--oversubscribe", edmips_binary(), "sweep", str(sweep),
                             "--out", str(tmp_path / "out"), "--threads", "1"],
                            capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    events = [json.loads(line) for line in (tmp_path / "out" / "journal.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["event"] == "trial_finished"]
    assert len(finished) == 4
    for e in finished:
        assert 0 <= e["result"]["top1"] <= 100
        assert e["result"]["data"]["skipped_corrupt_images"] == 0
    # The file list was cached for the next start.
    assert list((tmp_path / "cache").glob("folder-*.txt"))


def test_a_missing_val_folder_is_exit_3_naming_it(tmp_path, env_cache):
    folder = tmp_path / "folder"
    generate(folder)
    (folder / "val").rename(folder / "validation")
    result = run_trial(tmp_path, trial_config(folder), env_cache)
    assert result.returncode == 3
    assert str(folder / "val") in result.stderr and "missing" in result.stderr


def test_a_corrupt_image_is_exit_3_naming_it_unless_skipped(tmp_path, env_cache):
    folder = tmp_path / "folder"
    generate(folder)
    bad = folder / "train" / "class_02" / "img_00010.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    result = run_trial(tmp_path, trial_config(folder), env_cache)
    assert result.returncode == 3
    assert str(bad) in result.stderr
    import shutil
    shutil.rmtree(tmp_path / "out")
    result = run_trial(tmp_path, trial_config(folder, skip_corrupt=True), env_cache)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "out" / "result.json").read_text())
    assert report["data"]["skipped_corrupt_images"] == 1
    assert report["data"]["skipped_files"] == [str(bad)]


def test_generate_folder_refuses_to_write_over_a_folder(tmp_path):
    folder = tmp_path / "folder"
    generate(folder)
    result = subprocess.run([edmips_binary(), "generate-folder", str(folder)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "exists already" in result.stderr
