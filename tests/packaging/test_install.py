"""Installed like HPC software: `cmake --install` into a prefix that can be
moved, and the Debian package built with CPack, installed with apt-get,
used for a real sweep under mpirun, then removed."""
import json
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = pathlib.Path(os.environ.get("EDMIPS_BINARY", ROOT / "build" / "src" / "edmips"))
BUILD = BINARY.parent.parent  # BUILD/src/edmips
FIXTURE = ROOT / "tests" / "analysis" / "fixture" / "sweep"
FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


def mpi_env():
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env.pop("EDMIPS_SHARE_DIR", None)
    return env


def tiny_sweep(path):
    path.write_text(json.dumps({
        "name": "installed",
        "base": {"dataset": {"name": "fashion-mnist", "train_subset": 300, "test_subset": 200},
                 "model": {"name": "simple-cnn"},
                 "search": {"epochs": 1, "batch_size": 64}, "train": {"epochs": 1, "batch_size": 64}},
        "axes": {"complexity_penalty": [0.001], "seeds": [1]},
        "baselines": [[2, 2]],
    }))
    return path


def test_cmake_install_puts_everything_under_a_prefix_that_can_move(tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(prefix)], check=True, capture_output=True)
    share = prefix / "share" / "edmips"
    for relative in ["analysis/plots.py", "sweeps/sweep.schema.json", "sweeps/fashion-quick.json",
                     "sweeps/trials/fashion-quick-trial.json", "slurm/local-cluster.sh", "modulefiles/edmips"]:
        assert (share / relative).exists(), relative
    assert (prefix / "share" / "doc" / "edmips-sweep" / "docs" / "sweeps.md").exists()
    module = next((share / "modulefiles" / "edmips").glob("*.lua")).read_text()
    assert f'local prefix = "{prefix}"' in module
    assert 'prepend_path("PATH", pathJoin(prefix, "bin"))' in module
    assert 'setenv("EDMIPS_SHARE_DIR"' in module
    # Moved elsewhere, the binary still finds its files beside itself.
    moved = tmp_path / "moved"
    shutil.move(str(prefix), str(moved))
    version = subprocess.run([str(moved / "bin" / "edmips"), "--version"], capture_output=True, text=True,
                             env=mpi_env(), check=True).stdout
    assert f"{moved}/share/edmips (found)" in version
    validate = subprocess.run([str(moved / "bin" / "edmips"), "validate",
                               str(moved / "share" / "edmips" / "sweeps" / "fashion-quick.json")],
                              capture_output=True, text=True, env=mpi_env())
    assert validate.returncode == 0, validate.stderr
    report_dir = tmp_path / "sweep"
    shutil.copytree(FIXTURE, report_dir)
    report = subprocess.run([str(moved / "bin" / "edmips"), "report", str(report_dir)], capture_output=True,
                            text=True, env=mpi_env())
    assert report.returncode == 0, report.stderr
    assert (report_dir / "plots" / "accuracy_vs_bitops.png").exists()


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("cpack") is None or shutil.which("apt-get") is None,
                    reason="needs root, cpack and apt-get")
@pytest.mark.skipif(not FASHION.exists(), reason="Fashion-MNIST not installed")
def test_the_debian_package_installs_runs_a_real_sweep_and_removes(tmp_path):
    subprocess.run(["cpack", "-G", "DEB", "-B", str(tmp_path / "deb")], cwd=BUILD, check=True, capture_output=True)
    package = next((tmp_path / "deb").glob("edmips-sweep_*.deb"))
    info = subprocess.run(["dpkg-deb", "-f", str(package), "Depends", "Version", "Maintainer"],
                          capture_output=True, text=True, check=True).stdout
    for dependency in ["libtorch1.13", "libboost-mpi1.74.0", "openmpi-bin", "python3-matplotlib", "zlib1g"]:
        assert dependency in info
    env = dict(mpi_env(), DEBIAN_FRONTEND="noninteractive")
    installed = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", str(package)],
                               capture_output=True, text=True, env=env)
    assert installed.returncode == 0, installed.stderr
    try:
        version = subprocess.run(["/usr/bin/edmips", "--version"], capture_output=True, text=True, env=env,
                                 check=True).stdout
        assert "/usr/share/edmips (found)" in version
        subprocess.run(["/usr/bin/edmips", "validate", "/usr/share/edmips/sweeps/fashion-quick.json"],
                       check=True, capture_output=True, env=env)
        sweep = tiny_sweep(tmp_path / "sweep.json")
        run = subprocess.run(["mpirun", "-np", "2", "--oversubscribe", "/usr/bin/edmips", "sweep", str(sweep),
                              "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
        assert run.returncode == 0, run.stdout + run.stderr
        rows = (tmp_path / "out" / "results.csv").read_text().splitlines()
        assert len(rows) == 3  # header, the search, the baseline
        report = subprocess.run(["/usr/bin/edmips", "report", str(tmp_path / "out")], capture_output=True, text=True,
                                env=env)
        assert report.returncode == 0, report.stderr
    finally:
        removed = subprocess.run(["apt-get", "remove", "-y", "edmips-sweep"], capture_output=True, text=True, env=env)
    assert removed.returncode == 0, removed.stderr
    assert not pathlib.Path("/usr/bin/edmips").exists()
