"""A real sweep: four EdMIPS trials on real Fashion-MNIST, on 2 MPI ranks."""
import json
import pathlib

import pytest

from conftest import requires_mpirun

FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
pytestmark = [requires_mpirun, pytest.mark.skipif(not FASHION.exists(), reason="Fashion-MNIST not installed")]


def test_a_real_fashion_mnist_sweep_on_two_ranks_finishes_every_trial(sweep_factory):
    sweep = sweep_factory({
        "name": "real-small",
        "base": {
            "dataset": {"name": "fashion-mnist", "train_subset": 2000, "test_subset": 1000},
            "model": {"name": "simple-cnn"},
            "search": {"epochs": 2, "batch_size": 64, "lr": 0.05, "lr_step_epochs": 1},
            "train": {"epochs": 2, "batch_size": 64, "lr": 0.05, "lr_step_epochs": 1},
        },
        "axes": {"complexity_penalty": [0.0, 0.01, 1.0], "seeds": [3]},
        "baselines": [[2, 2]],
    })
    assert sweep.run(2) == 0
    rows = sweep.csv_rows()
    assert len(rows) == 4
    assert {r["rank"] for r in rows} == {"0", "1"}
    by_lambda = {r["complexity_penalty"]: r for r in rows if r["kind"] == "search"}
    for row in rows:
        assert float(row["top1"]) > 50.0, row
        result = json.loads((sweep.out / "trials" / row["trial_id"] / "result.json").read_text())
        assert result["top1"] == pytest.approx(float(row["top1"]))
        assert (sweep.out / "trials" / row["trial_id"] / "allocation.json").exists()
    assert float(by_lambda["1"]["expected_normalised_bits"]) < float(by_lambda["0"]["expected_normalised_bits"])
    uniform = [r for r in rows if r["kind"] == "uniform"][0]
    assert float(uniform["normalised_bits"]) == pytest.approx(2.0)


def test_kill_9_of_a_real_sweep_at_random_moments_then_resume_finishes_each_trial_once(sweep_factory):
    sweep = sweep_factory({
        "name": "real-kill",
        "base": {
            "dataset": {"name": "fashion-mnist", "train_subset": 800, "test_subset": 500},
            "model": {"name": "simple-cnn"},
            "search": {"epochs": 2, "batch_size": 32, "lr": 0.05},
            "train": {"epochs": 1, "batch_size": 32, "lr": 0.05},
        },
        "axes": {"complexity_penalty": [0.0, 0.001, 0.01], "seeds": [1]},
        "baselines": [[2, 2], [3, 3]],
    })
    def checkpoints():
        total = 0
        for history in sweep.out.glob("trials/*/history.json"):
            try:
                total += len(json.loads(history.read_text()))
            except (ValueError, OSError):
                pass
        return total

    # Each kill lands shortly after some trial saved a new checkpoint, so the
    # resume has something to resume from whatever the machine's load.
    kills = sweep.kill_at_random_moments(2, [], attempts=4, seed=99, delay=(0.0, 1.0), progress=checkpoints,
                                         wait_s=120)
    assert kills >= 2
    assert sweep.run(2) == 0
    ids = sweep.plan_ids()
    assert sweep.finished_counts() == {i: 1 for i in ids}
    rows = sweep.csv_rows()
    assert sorted(r["trial_id"] for r in rows) == sorted(ids)
    # Trials cut short by a kill picked up from their checkpoints.
    logs = [(sweep.out / "trials" / i / "log.txt").read_text() for i in ids]
    assert any("resuming" in log for log in logs)


def gpu_visible():
    import shutil
    import subprocess
    return shutil.which("nvidia-smi") is not None and subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True).returncode == 0


@pytest.mark.skipif(gpu_visible(), reason="a GPU is visible here; the refusal needs a machine without one")
def test_a_sweep_that_asks_for_cuda_without_a_gpu_fails_on_every_rank_before_any_trial(sweep_factory):
    sweep = sweep_factory({
        "name": "wants-cuda",
        "base": {
            "device": "cuda",
            "dataset": {"name": "fashion-mnist", "train_subset": 200, "test_subset": 100},
            "model": {"name": "simple-cnn"},
            "search": {"epochs": 1}, "train": {"epochs": 1},
        },
        "axes": {"complexity_penalty": [0.0, 0.001], "seeds": [1]},
    })
    assert sweep.run(2, timeout=120) == 2
    log = (sweep.dir / "run.log").read_text()
    assert "device \"cuda\" requested" in log and "no CUDA device" in log
    assert "[rank 0]" in log and "[rank 1]" in log
    events = [e["event"] for e in sweep.journal()] if (sweep.out / "journal.jsonl").exists() else []
    assert "trial_started" not in events
