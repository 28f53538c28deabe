"""Slurm: the generated batch script, and end-to-end runs through sbatch on a
real single-node Slurm cluster (slurm-wlm + munge) started by
slurm/local-cluster.sh. The cluster tests need root; otherwise they are
skipped with the reason."""
import json
import os
import pathlib
import shutil
import stat
import subprocess
import sys
import time

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from conftest import edmips_binary  # noqa: E402

CLUSTER_SCRIPT = ROOT / "slurm" / "local-cluster.sh"
FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")

needs_cluster = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("slurmctld") is None or not FASHION.exists(),
    reason="the Slurm cluster tests need root, slurm-wlm and munge, and Fashion-MNIST (scripts/install-deps.sh)")


def tiny_sweep(name, penalties, train_subset=1500):
    return {
        "name": name,
        "base": {
            "dataset": {"name": "fashion-mnist", "train_subset": train_subset, "test_subset": 1000},
            "model": {"name": "simple-cnn"},
            "search": {"epochs": 2, "batch_size": 64, "lr": 0.05, "lr_step_epochs": 1},
            "train": {"epochs": 2, "batch_size": 64, "lr": 0.05, "lr_step_epochs": 1},
        },
        "axes": {"complexity_penalty": penalties, "seeds": [1]},
        "baselines": [[2, 2]],
        "slurm": {"nodes": 1, "ntasks_per_node": 2, "cpus_per_task": 1, "time": "15:00",
                  "signal_seconds": 30, "max_restarts": 3},
    }


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A real Slurm cluster for this module; everything it started is stopped by PID."""
    directory = tmp_path_factory.mktemp("slurm")
    subprocess.run(["bash", str(CLUSTER_SCRIPT), "start", str(directory)], check=True)
    env = dict(os.environ, SLURM_CONF=str(directory / "slurm.conf"))
    try:
        yield env
    finally:
        subprocess.run(["scancel", "--user=root"], env=env, check=False)
        subprocess.run(["bash", str(CLUSTER_SCRIPT), "stop", str(directory)], check=False)


def submit(env, sweep_file, out):
    result = subprocess.run([edmips_binary(), "slurm", str(sweep_file), "--out", str(out)], env=env,
                            capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def job_state(env, job):
    text = subprocess.run(["scontrol", "show", "job", "-o", job], env=env, capture_output=True, text=True).stdout
    fields = dict(item.split("=", 1) for item in text.split() if "=" in item)
    return fields.get("JobState", "UNKNOWN"), int(fields.get("Restarts", "0"))


def wait_for_job(env, job, timeout=300):
    # sbatch --wait polls slowly; poll scontrol instead.
    deadline = time.time() + timeout
    while time.time() < deadline:
        state, restarts = job_state(env, job)
        if state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"):
            return state, restarts
        time.sleep(1)
    raise AssertionError(f"job {job} did not finish in {timeout} s (state {job_state(env, job)})")


def wait_for_checkpoint(out, timeout=120):
    """Until some trial is mid-way: a search epoch written to its history."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for history in out.glob("trials/*/history.json"):
            try:
                if len(json.loads(history.read_text())) >= 1:
                    return
            except (json.JSONDecodeError, OSError):
                pass
        time.sleep(0.2)
    raise AssertionError("no trial reached a checkpoint")


def journal(out):
    return [json.loads(line) for line in (out / "journal.jsonl").read_text().splitlines()]


def check_every_trial_once(sweep_file, out):
    plan = subprocess.run([edmips_binary(), "plan", str(sweep_file)], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    ids = {line.split()[0] for line in plan[1:-1]}
    finished = [e["trial"] for e in journal(out) if e["event"] == "trial_finished"]
    assert sorted(finished) == sorted(ids), "every trial finished exactly once"
    rows = (out / "results.csv").read_text().strip().splitlines()[1:]
    assert sorted(r.split(",")[0] for r in rows) == sorted(ids)


@needs_cluster
def test_a_tiny_sweep_on_two_tasks_finishes_through_sbatch(cluster, tmp_path):
    sweep_file = tmp_path / "sweep.json"
    sweep_file.write_text(json.dumps(tiny_sweep("slurm-tiny", [0.0, 0.01])))
    out = tmp_path / "out"
    job = submit(cluster, sweep_file, out)
    state, restarts = wait_for_job(cluster, job)
    log = (out / f"slurm-{job}.out").read_text()
    assert state == "COMPLETED", log
    assert restarts == 0
    assert "2 ranks" in log and "sweep finished" in log
    check_every_trial_once(sweep_file, out)
    ranks = {e["rank"] for e in journal(out) if e["event"] == "trial_finished"}
    assert ranks == {0, 1}


@pytest.mark.parametrize("how", ["preempted-by-slurm", "time-limit-signal"])
@needs_cluster
def test_an_interrupted_job_requeues_and_resumes_its_trials_from_their_checkpoints(cluster, tmp_path, how):
    sweep_file = tmp_path / "sweep.json"
    sweep_file.write_text(json.dumps(tiny_sweep(f"slurm-{how}", [0.0, 0.001, 0.01, 0.1], train_subset=3000)))
    out = tmp_path / "out"
    job = submit(cluster, sweep_file, out)
    wait_for_checkpoint(out)
    time.sleep(1.0)
    if how == "preempted-by-slurm":
        # What preemption with requeue does: SIGTERM to every process, then requeue.
        subprocess.run(["scontrol", "requeue", job], env=cluster, check=True)
    else:
        # What --signal=B:USR2@N does before the time limit: USR2 to the batch shell.
        subprocess.run(["scancel", "-b", "--signal=USR2", job], env=cluster, check=True)
    state, restarts = wait_for_job(cluster, job)
    log = (out / f"slurm-{job}.out").read_text()
    assert state == "COMPLETED", log
    assert restarts >= 1, log
    assert "requeueing" in log or how == "preempted-by-slurm"
    events = journal(out)
    kinds = [e["event"] for e in events]
    assert "sweep_interrupted" in kinds and kinds[-1] == "sweep_finished"
    check_every_trial_once(sweep_file, out)
    paused = {e["trial"] for e in events if e["event"] == "trial_interrupted"}
    assert paused
    for trial in paused:
        lines = (out / "trials" / trial / "log.txt").read_text().splitlines()
        resumes = [line for line in lines if line.startswith("resuming")]
        assert resumes, f"trial {trial} did not resume from a checkpoint"
        # "resuming <phase> at epoch E batch B": not from the very start.
        words = resumes[0].split()
        assert (words[1], words[4], words[6]) != ("search", "1", "1"), resumes[0]


def test_the_batch_script_quotes_everything_from_the_sweep_file(tmp_path):
    hostile = "x'; touch pwned; echo '$(touch pwned2)`touch pwned4`"  # names may not hold slashes
    definition = tiny_sweep(hostile, [0.0])
    weird_dir = tmp_path / "dir with 'quotes' and $(x)"
    weird_dir.mkdir()
    sweep_file = weird_dir / "sweep $(touch pwned3).json"
    sweep_file.write_text(json.dumps(definition))
    out = tmp_path / "out"
    script = subprocess.run([edmips_binary(), "slurm", str(sweep_file), "--out", str(out), "--dry-run"],
                            capture_output=True, text=True, check=True).stdout
    assert subprocess.run(["bash", "-n"], input=script, text=True).returncode == 0
    # Run it with stand-ins for srun and scontrol that record their arguments.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("srun", "scontrol"):
        path = bin_dir / tool
        path.write_text(f"#!/bin/bash\nprintf '%s\\n' \"$@\" > {tmp_path}/{tool}.args\nexit 0\n")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SLURM_JOB_ID="1", SLURM_JOB_NODELIST="vm")
    subprocess.run(["bash", "-c", script], env=env, cwd=tmp_path, check=True, capture_output=True)
    assert not any((tmp_path / name).exists() for name in ("pwned", "pwned2", "pwned3", "pwned4"))
    assert not (weird_dir / "pwned3").exists()
    args = (tmp_path / "srun.args").read_text().splitlines()
    assert args[:2] == ["--mpi=pmix", os.path.realpath(edmips_binary())]
    assert args[2:] == ["sweep", str(sweep_file), "--out", str(out)]
    assert "#SBATCH --job-name=edmips-x___touch_pwned__echo____touch_pwned2__touch_pwned4_\n" in script


def test_flags_override_the_sweep_files_slurm_section(tmp_path):
    sweep_file = tmp_path / "sweep.json"
    sweep_file.write_text(json.dumps(tiny_sweep("flags", [0.0])))
    script = subprocess.run([edmips_binary(), "slurm", str(sweep_file), "--out", str(tmp_path / "o"), "--dry-run",
                             "--nodes", "3", "--gpus-per-task", "1", "--partition", "gpu", "--time", "2-00:00:00"],
                            capture_output=True, text=True, check=True).stdout
    for line in ("--nodes=3", "--ntasks-per-node=2", "--cpus-per-task=1", "--gpus-per-task=1", "--partition=gpu",
                 "--time=2-00:00:00", "--requeue", "--open-mode=append", "--signal=B:USR2@30"):
        assert f"#SBATCH {line}\n" in script
    assert "max_restarts=3" in script


@pytest.mark.parametrize("flag,value,message", [
    ("--partition", "gpu;rm -rf /", "--partition: expected letters"),
    ("--time", "forever", "--time: expected a Slurm time limit"),
    ("--time", "1:99:99", "minutes and seconds below 60"),
    ("--time", "2-24:00:00", "hours below 24"),
    ("--time", "99999999999999999999", "--time: expected a Slurm time limit"),
    ("--nodes", "0", "--nodes: expected a value from 1"),
])
def test_bad_slurm_flags_are_rejected_with_exit_code_2(tmp_path, flag, value, message):
    sweep_file = tmp_path / "sweep.json"
    sweep_file.write_text(json.dumps(tiny_sweep("bad", [0.0])))
    result = subprocess.run([edmips_binary(), "slurm", str(sweep_file), "--dry-run", flag, value],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_bad_slurm_section_names_its_json_path(tmp_path):
    definition = tiny_sweep("bad", [0.0])
    definition["slurm"]["cpus_per_tsk"] = 4
    sweep_file = tmp_path / "sweep.json"
    sweep_file.write_text(json.dumps(definition))
    result = subprocess.run([edmips_binary(), "slurm", str(sweep_file), "--dry-run"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "/slurm/cpus_per_tsk: unknown key; did you mean \"cpus_per_task\"?" in result.stderr


def test_a_world_size_that_differs_from_slurm_ntasks_stops_with_a_clear_message(tmp_path):
    sweep_file = tmp_path / "sweep.json"
    sweep_file.write_text(json.dumps(tiny_sweep("mismatch", [0.0])))
    env = dict(os.environ, SLURM_NTASKS="4")
    result = subprocess.run([edmips_binary(), "sweep", str(sweep_file), "--out", str(tmp_path / "out"),
                             "--fake-trials"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2
    assert "MPI world size is 1 but SLURM_NTASKS is 4" in result.stderr
    assert "srun --mpi=pmix" in result.stderr
    assert not (tmp_path / "out").exists()
