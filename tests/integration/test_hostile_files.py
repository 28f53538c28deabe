"""Inputs that are not what they claim to be (issue 23): a FIFO or a device
where a file belongs is refused at once, exit 2 or 3 naming it, instead of
hanging the tool. Every case runs under a timeout: a hang fails the test."""
import json
import os
import pathlib
import shutil
import subprocess

import pytest

from conftest import edmips_binary, fake_sweep_definition

FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")
FIFO_TIMEOUT = 60  # seconds; the refusal itself takes well under one


def run(*args):
    return subprocess.run([edmips_binary(), *args], capture_output=True, text=True, timeout=FIFO_TIMEOUT)


def fifo(path):
    os.mkfifo(path)
    return path


def trial_config(tmp_path, dataset_dir):
    path = tmp_path / "trial.json"
    path.write_text(json.dumps({
        "seed": 1, "threads": 1,
        "dataset": {"name": "fashion-mnist", "path": str(dataset_dir), "train_subset": 300, "test_subset": 100},
        "model": {"name": "simple-cnn"},
        "search": {"epochs": 1, "batch_size": 32, "complexity_penalty": 0.001},
        "train": {"epochs": 1, "batch_size": 32}}))
    return path


@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").exists(), reason="Fashion-MNIST not installed")
@pytest.mark.parametrize("stem", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_a_fifo_in_place_of_a_dataset_file_is_a_data_error_not_a_hang(tmp_path, stem):
    data = tmp_path / "data"
    data.mkdir()
    for real in FASHION.glob("*-ubyte.gz"):
        if not real.name.startswith(stem):
            (data / real.name).symlink_to(real)
    hole = fifo(data / (stem + ".gz"))
    result = run("trial", str(trial_config(tmp_path, data)), "--out", str(tmp_path / "out"))
    assert result.returncode == 3, result.stderr
    assert str(hole) in result.stderr and "FIFO" in result.stderr
    assert not (tmp_path / "out" / "result.json").exists()


@pytest.mark.parametrize("command", [["validate"], ["plan"], ["sweep"], ["trial"], ["slurm", "--dry-run"]])
def test_a_fifo_given_as_the_sweep_or_trial_file_is_refused_at_once(tmp_path, command):
    hole = fifo(tmp_path / "sweep.json")
    extra = ["--out", str(tmp_path / "out")] if command[0] in ("sweep", "trial") else []
    result = run(*command, str(hole), *extra)
    assert result.returncode == 2, result.stderr
    assert str(hole) in result.stderr and "FIFO" in result.stderr


def test_a_device_given_as_the_sweep_file_is_refused(tmp_path):
    result = run("validate", "/dev/zero")
    assert result.returncode == 2, result.stderr
    assert "/dev/zero" in result.stderr and "character device" in result.stderr


def test_a_fifo_in_place_of_a_sweeps_journal_or_status_is_a_data_error(tmp_path):
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps(fake_sweep_definition(seeds=[1])))
    out = tmp_path / "out"
    done = subprocess.run([edmips_binary(), "sweep", str(sweep), "--out", str(out), "--fake-trials", "--fake-duration", "0", "--quiet"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name in ("journal.jsonl", "status.json"):
        saved = out / (name + ".saved")
        shutil.move(out / name, saved)
        fifo(out / name)
        for command in (["status"], ["pareto"]):
            result = run(*command, str(out))
            assert result.returncode == 3, (name, command, result.stderr)
            assert str(out / name) in result.stderr, (name, command, result.stderr)
            if name == "status.json":
                break  # only status reads status.json
        os.unlink(out / name)
        shutil.move(saved, out / name)


def test_a_sweep_refuses_a_trial_directory_holding_another_trials_result_once_without_retrying(tmp_path):
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps(fake_sweep_definition(penalties=[0.0, 0.01], seeds=[1], baselines=[], max_retries=2)))
    plan = subprocess.run([edmips_binary(), "plan", str(sweep)], capture_output=True, text=True, check=True)
    first, second = [line.split()[0] for line in plan.stdout.splitlines()[1:3]]
    out = tmp_path / "out"
    fake = [edmips_binary(), "sweep", str(sweep), "--out", str(out), "--fake-trials", "--fake-duration", "0", "--quiet"]
    assert subprocess.run(fake, capture_output=True, timeout=120).returncode == 0
    # The second trial's directory now holds the first trial's result.
    borrowed = out / "trials" / second / "result.json"
    shutil.copy(out / "trials" / first / "result.json", borrowed)
    journal = out / "journal.jsonl"
    journal.unlink()  # forget what ran: the trials' files decide
    result = subprocess.run(fake, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    failures = [json.loads(line) for line in journal.read_text().splitlines()
                if json.loads(line)["event"] == "trial_failed"]
    assert [f["trial"] for f in failures] == [second]  # once: a retry would read the same file
    assert not failures[0]["will_retry"]
    assert first in failures[0]["error"] and second in failures[0]["error"] and str(borrowed) in failures[0]["error"]
    assert json.loads(borrowed.read_text())["trial_id"] == first  # left as it was, for the user to look at
