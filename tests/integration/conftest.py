"""Shared fixtures for the integration tests: the edmips binary and mpirun."""
import json
import os
import random
import pathlib
import shutil
import signal
import subprocess
import time

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def edmips_binary():
    return os.environ.get("EDMIPS_BINARY", str(ROOT / "build" / "src" / "edmips"))


def mpi_env():
    env = dict(os.environ)
    env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1")
    env.pop("OMP_NUM_THREADS", None)
    return env


def mpirun_command(ranks, *args):
    return ["mpirun", "-np", str(ranks), "--oversubscribe", edmips_binary(), *args]


class Sweep:
    """A sweep file and output directory in a temporary folder."""

    def __init__(self, tmp_path, definition):
        self.dir = tmp_path
        self.file = tmp_path / "sweep.json"
        self.out = tmp_path / "out"
        self.write(definition)

    def write(self, definition):
        self.file.write_text(json.dumps(definition))

    def start(self, ranks, *extra, log="run.log"):
        """Starts mpirun in its own process group; returns the Popen."""
        handle = open(self.dir / log, "ab")
        return subprocess.Popen(
            mpirun_command(ranks, "sweep", str(self.file), "--out", str(self.out), *extra),
            stdout=handle, stderr=subprocess.STDOUT, env=mpi_env(), start_new_session=True)

    def run(self, ranks, *extra, timeout=300):
        proc = self.start(ranks, *extra)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_everything(proc)
            raise

    def journal(self):
        return [json.loads(line) for line in (self.out / "journal.jsonl").read_text().splitlines()]

    def finished_counts(self):
        counts = {}
        for event in self.journal():
            if event["event"] == "trial_finished":
                counts[event["trial"]] = counts.get(event["trial"], 0) + 1
        return counts

    def csv_rows(self):
        import csv
        with open(self.out / "results.csv", newline="") as f:
            return list(csv.DictReader(f))

    def plan_ids(self):
        out = subprocess.run([edmips_binary(), "plan", str(self.file)], check=True,
                             capture_output=True, text=True).stdout.splitlines()
        ids = set()
        for line in out[1:]:
            if line.endswith(" trials"):  # the count ends the table (budgets follow it)
                break
            ids.add(line.split()[0])
        return ids

    def kill_at_random_moments(self, ranks, extra, attempts, seed, delay, progress=None, wait_s=60):
        """Starts the sweep `attempts` times and kill -9s each run at a random
        moment: `delay` (low, high) seconds after it starts, or, with
        `progress` (a function counting something the sweep writes), after
        that count has grown in this run (so the kill lands in the work, not
        in MPI's start-up, whatever the machine's load). Stops early when a
        run finishes on its own. Returns how many runs were killed."""
        rng = random.Random(seed)
        kills = 0
        for attempt in range(attempts):
            before = progress() if progress else None
            proc = self.start(ranks, *extra, log=f"run{attempt}.log")
            if progress:
                deadline = time.time() + wait_s
                while progress() <= before and proc.poll() is None and time.time() < deadline:
                    time.sleep(0.05)
            time.sleep(rng.uniform(*delay))
            if proc.poll() is not None:
                break
            self.kill_everything(proc)
            kills += 1
        return kills

    def kill_everything(self, proc):
        """kill -9 the whole job: mpirun's process group and any rank of this run."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        subprocess.run(["pkill", "-9", "-f", str(self.out)], check=False)
        deadline = time.time() + 10
        while time.time() < deadline:
            if subprocess.run(["pgrep", "-f", str(self.out)], capture_output=True).returncode != 0:
                return
            time.sleep(0.1)


@pytest.fixture
def sweep_factory(tmp_path):
    return lambda definition: Sweep(tmp_path, definition)


def fake_sweep_definition(penalties=(0.0, 0.01, 0.1), seeds=(1, 2), baselines=((2, 2), (4, 4)), max_retries=1):
    return {
        "name": "fake",
        "max_retries": max_retries,
        "base": {"dataset": {"train_subset": 100}, "search": {"epochs": 1}, "train": {"epochs": 1}},
        "axes": {"complexity_penalty": list(penalties), "seeds": list(seeds)},
        "baselines": [list(b) for b in baselines],
    }


requires_mpirun = pytest.mark.skipif(shutil.which("mpirun") is None, reason="mpirun not installed")
