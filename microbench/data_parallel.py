"""Data-parallel search speed: one resnet20 search trial on 1 rank and on a
group of 2 ranks (ranks_per_trial 2), one thread per rank, real Fashion-MNIST.
Prints the second epoch's step time, images/s, the parallel efficiency and the
time the group spent in its collectives (gradient all-reduce, synchronised
BatchNorm; that includes waiting for the slower rank).
Usage: microbench/data_parallel.py EDMIPS_BINARY [IMAGES] [BATCH] [SYNC_BN: 0|1]"""
import json
import os
import pathlib
import subprocess
import sys
import tempfile

binary = sys.argv[1]
images = int(sys.argv[2]) if len(sys.argv) > 2 else 2048
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 128
sync = (sys.argv[4] if len(sys.argv) > 4 else "0") == "1"
env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
env.pop("OMP_NUM_THREADS", None)


def epoch_record(ranks, folder):
    sweep = {
        "name": f"bench-dp-{ranks}", "ranks_per_trial": ranks,
        "base": {
            "dataset": {"name": "fashion-mnist", "train_subset": images, "test_subset": 100},
            "model": {"name": "resnet20"},
            "data_parallel": {"sync_batch_norm": sync},
            "search": {"epochs": 2, "batch_size": batch, "lr": 0.1, "complexity_penalty": 0.001, "retrain": False},
        },
    }
    path = folder / f"sweep{ranks}.json"
    path.write_text(json.dumps(sweep))
    out = folder / f"out{ranks}"
    subprocess.run(["mpirun", "-np", str(ranks), "--oversubscribe", binary, "sweep", str(path), "--out", str(out),
                    "--threads", "1", "--quiet"], check=True, env=env)
    history = json.loads(next(out.glob("trials/*/history.json")).read_text())
    first, second = history[0], history[1]
    return {"seconds": second["seconds"] - first["seconds"],
            "communication_s": second.get("communication_s", 0.0)}


with tempfile.TemporaryDirectory() as tmp:
    folder = pathlib.Path(tmp)
    steps = (images + batch - 1) // batch
    rows = {r: epoch_record(r, folder) for r in (1, 2)}
print(f"resnet20 search, Fashion-MNIST {images} images, global batch {batch}, {steps} steps per epoch, "
      f"1 thread per rank, BatchNorm {'synchronised' if sync else 'per rank'} (epoch 2)")
print("| ranks | step (ms) | images/s | efficiency | collectives (ms/step) | share of the step |")
print("|---|---|---|---|---|---|")
base = rows[1]["seconds"]
for ranks, r in rows.items():
    step_ms = 1000 * r["seconds"] / steps
    comm_ms = 1000 * r["communication_s"] / steps
    print(f"| {ranks} | {step_ms:.1f} | {images / r['seconds']:.0f} | {base / (ranks * r['seconds']):.2f} | "
          f"{comm_ms:.1f} | {100 * comm_ms / step_ms:.0f}% |")
