"""Fault injection on real MPI ranks and real trials: a full filesystem (a
small tmpfs, so root only). The sweep must fail with a clear message on every
rank, leave no temporary files, keep its journal and last good checkpoints,
and resume cleanly once space is free."""
import json
import os
import pathlib
import subprocess

import pytest

from conftest import requires_mpirun

FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")
pytestmark = [requires_mpirun,
              pytest.mark.skipif(not FASHION.exists(), reason="Fashion-MNIST not installed"),
              pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root")]


@pytest.fixture
def small_filesystem(tmp_path):
    mount = tmp_path / "fs"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)])


def fill(mount, leave_bytes):
    """Fills the filesystem up to `leave_bytes` free; returns the filler file."""
    filler = mount / "filler"
    stat = os.statvfs(mount)
    free = stat.f_bavail * stat.f_frsize
    with open(filler, "wb") as f:
        f.write(b"\0" * max(0, free - leave_bytes))
    return filler


def temporaries(directory):
    return [p for p in pathlib.Path(directory).rglob("*") if ".tmp." in p.name]


def test_a_full_disk_fails_cleanly_and_the_sweep_resumes_once_space_is_free(sweep_factory, small_filesystem):
    sweep = sweep_factory({
        "name": "full-disk",
        "max_retries": 1,
        "base": {"dataset": {"name": "fashion-mnist", "train_subset": 600, "test_subset": 300},
                 "model": {"name": "simple-cnn"},
                 "search": {"epochs": 1, "batch_size": 64}, "train": {"epochs": 1, "batch_size": 64}},
        "axes": {"complexity_penalty": [0.0, 0.001], "seeds": [1]},
        "baselines": [[2, 2]],
    })
    sweep.out = small_filesystem / "out"
    sweep.out.mkdir()
    filler = fill(small_filesystem, leave_bytes=256 * 1024)  # room for the journal, not for a checkpoint
    code = sweep.run(2, timeout=300)
    log = (sweep.dir / "run.log").read_text()
    assert code in (1, 3), log  # failed trials, or the journal itself could not be written
    assert "No space left on device" in log
    assert temporaries(sweep.out) == [], "temporary files left behind"
    for line in (sweep.out / "journal.jsonl").read_text().splitlines()[:-1]:
        json.loads(line)  # every complete line still parses (a torn last one is dropped at resume)
    filler.unlink()
    assert sweep.run(2, timeout=600) == 0, (sweep.dir / "run.log").read_text()[-3000:]
    assert sweep.finished_counts() == {i: 1 for i in sweep.plan_ids()}
    assert temporaries(sweep.out) == []
