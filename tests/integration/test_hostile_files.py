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


def finished_fake_sweep(tmp_path):
    sweep = tmp_path / "sweep.json"
    sweep.write_text(json.dumps(fake_sweep_definition(penalties=[0.0, 0.01], seeds=[1], baselines=[[2, 2]])))
    out = tmp_path / "out"
    done = subprocess.run([edmips_binary(), "sweep", str(sweep), "--out", str(out), "--fake-trials",
                           "--fake-duration", "0", "--quiet"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return sweep, out


def readers(sweep, out):
    """Every command that reads a sweep's journal, as a user runs it."""
    return {"status": ["status", str(out)], "pareto": ["pareto", str(out), "--out", str(out.parent / "p")],
            "plan": ["plan", str(sweep), "--out", str(out)],
            "sweep": ["sweep", str(sweep), "--out", str(out), "--fake-trials", "--fake-duration", "0", "--quiet"]}


def damage_line(journal, event_type, change):
    lines = journal.read_text().splitlines()
    for i, line in enumerate(lines[:-1]):
        event = json.loads(line)
        if event["event"] == event_type:
            lines[i] = change(event)
            journal.write_text("\n".join(lines) + "\n")
            return i + 1
    raise AssertionError(f"no {event_type} event to damage")


@pytest.mark.parametrize("damage", ["garbage", "trial is a number", "top1 is a string", "event is a list"])
def test_a_damaged_journal_line_is_exit_3_naming_the_line_for_every_reader(tmp_path, damage):
    sweep, out = finished_fake_sweep(tmp_path)
    journal = out / "journal.jsonl"
    changes = {
        "garbage": ("trial_started", lambda e: "{not json"),
        "trial is a number": ("trial_finished", lambda e: json.dumps({**e, "trial": 7})),
        "top1 is a string": ("trial_finished", lambda e: json.dumps({**e, "result": {**e["result"], "top1": "high"}})),
        "event is a list": ("trial_started", lambda e: json.dumps({**e, "event": ["trial_started"]})),
    }
    event_type, change = changes[damage]
    line = damage_line(journal, event_type, change)
    before = journal.read_bytes()
    for name, command in readers(sweep, out).items():
        result = subprocess.run([edmips_binary(), *command], capture_output=True, text=True, timeout=120)
        assert result.returncode == 3, (name, result.stderr)
        assert f"{journal}:{line}" in result.stderr, (name, result.stderr)
        assert len(result.stderr) < 4096
    assert journal.read_bytes() == before  # nothing read it as history and went on


def test_a_status_json_of_another_shape_is_exit_3(tmp_path):
    sweep, out = finished_fake_sweep(tmp_path)
    status = json.loads((out / "status.json").read_text())
    status["done"] = "all"
    (out / "status.json").write_text(json.dumps(status))
    result = run("status", str(out))
    assert result.returncode == 3 and str(out / "status.json") in result.stderr, result.stderr
    (out / "status.json").write_text('{"done": 1, "runn')  # torn
    result = run("status", str(out))
    assert result.returncode == 3 and str(out / "status.json") in result.stderr, result.stderr


def test_a_multi_megabyte_key_or_path_gives_a_message_under_4_kib(tmp_path):
    sweep = tmp_path / "sweep.json"
    definition = fake_sweep_definition()
    definition["base"]["k" * (3 << 20)] = 1  # an unknown key of 3 MiB
    sweep.write_text(json.dumps(definition))
    result = run("validate", str(sweep))
    assert result.returncode == 2 and str(sweep) in result.stderr
    assert len(result.stderr) < 4096 and "bytes cut" in result.stderr
    long_path = "/" + "d" * 200 + "/" + "x" * 5000 + ".json"
    result = run("validate", long_path)
    assert result.returncode == 2 and len(result.stderr) < 4096


@pytest.mark.skipif(not (FASHION / "train-images-idx3-ubyte.gz").exists(), reason="Fashion-MNIST not installed")
def test_an_allocation_that_does_not_fit_the_model_names_the_file_and_the_json_path(tmp_path):
    config = tmp_path / "allocation.json"
    config.write_text(json.dumps({
        "seed": 1, "threads": 1,
        "dataset": {"name": "fashion-mnist", "train_subset": 100, "test_subset": 100},
        "model": {"name": "simple-cnn"},
        "allocation": {"model": "simple-cnn", "layers": [{"layer": "convX", "weight_bits": 2, "activation_bits": 2}]},
        "train": {"epochs": 1}}))
    result = run("trial", str(config), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr
    assert f"{config}: /allocation/layers/0" in result.stderr and "convX" in result.stderr
    assert not (tmp_path / "out" / "result.json").exists()
