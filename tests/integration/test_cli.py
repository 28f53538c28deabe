"""What a person at a terminal meets: --version, --help, `edmips status`,
`edmips report`, and live progress on a terminal but not in logs."""
import hashlib
import json
import os
import pathlib
import pty
import re
import select
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from conftest import edmips_binary, fake_sweep_definition, requires_mpirun

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "analysis" / "fixture" / "sweep"


def run(*args, **kwargs):
    return subprocess.run([edmips_binary(), *args], capture_output=True, text=True, **kwargs)


def tree_digest(directory):
    """Names, sizes, mtimes and contents of every file below `directory`."""
    digest = hashlib.sha256()
    for path in sorted(pathlib.Path(directory).rglob("*")):
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def test_version_names_the_version_libtorch_and_cuda():
    result = run("--version")
    assert result.returncode == 0
    assert re.match(r"edmips \d+\.\d+\.\d+", result.stdout)
    assert "LibTorch" in result.stdout and "CUDA:" in result.stdout
    assert "(found)" in result.stdout  # the shared files (analysis/plots.py) are found from the build tree


@pytest.mark.parametrize("command", ["trial", "validate", "plan", "sweep", "slurm", "status", "pareto", "report",
                                     "bench", "export", "cost-table"])
def test_every_command_has_help_that_lists_its_options(command):
    result = run(command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"edmips {command}" in result.stdout
    assert "--help" in result.stdout


def test_help_shows_the_defaults():
    assert "(=resnet20)" in run("bench", "--help").stdout
    assert "(=bitops)" in run("pareto", "--help").stdout
    assert "(=0)" in run("trial", "--help").stdout
    assert "default: results/<sweep name>" in run("slurm", "--help").stdout


@pytest.fixture
def finished_sweep(tmp_path):
    target = tmp_path / "sweep"
    shutil.copytree(FIXTURE, target)
    return target


def test_status_of_a_finished_sweep_says_so_and_reads_without_writing(finished_sweep):
    before = tree_digest(finished_sweep)
    result = run("status", str(finished_sweep))
    assert result.returncode == 0, result.stderr
    assert "finished" in result.stdout
    assert "done 12/12" in result.stdout
    assert "best so far against each uniform baseline" in result.stdout
    assert "W2A2" in result.stdout and "W4A4" in result.stdout
    assert tree_digest(finished_sweep) == before
    status = json.loads(run("status", str(finished_sweep), "--json").stdout)
    assert status["state"] == "finished"
    assert status["done"] == status["total"] == 12
    assert {b["baseline"] for b in status["best_per_baseline"]} == {"W2A2", "W4A4"}
    assert tree_digest(finished_sweep) == before
    # The same verdict, in the same words, as edmips pareto gives from the same data.
    run("pareto", str(finished_sweep), "--out", str(finished_sweep.parent / "report"))
    pareto = json.loads((finished_sweep.parent / "report" / "pareto.json").read_text())
    assert sorted(b["comparison"] for b in status["best_per_baseline"]) == sorted(
        d["comparison"] for d in pareto["dominance"])
    for b in status["best_per_baseline"]:
        assert b["comparison"] in result.stdout


def test_status_of_a_directory_without_a_sweep_is_an_input_error(tmp_path):
    result = run("status", str(tmp_path))
    assert result.returncode == 2
    assert "journal.jsonl" in result.stderr and str(tmp_path) in result.stderr


@requires_mpirun
def test_status_follows_a_running_sweep_with_rank_host_and_phase(sweep_factory):
    sweep = sweep_factory(fake_sweep_definition(penalties=(0.0, 0.01), seeds=(1, 2), baselines=((2, 2),)))
    proc = sweep.start(2, "--fake-trials", "--fake-duration", "4")
    try:
        deadline = time.time() + 60
        status = None
        while time.time() < deadline:
            if (sweep.out / "journal.jsonl").exists():
                result = run("status", str(sweep.out), "--json")
                if result.returncode == 0:
                    status = json.loads(result.stdout)
                    if status["running"]:
                        break
            time.sleep(0.2)
        assert status and status["state"] == "running"
        entry = status["running"][0]
        assert entry["host"] == os.uname().nodename
        assert entry["rank"] in (0, 1)
        assert "phase" in entry and entry["running_s"] >= 0
        assert status["done"] + len(status["running"]) + status["pending"] <= status["total"] == 6
        text = run("status", str(sweep.out)).stdout
        assert "running" in text and os.uname().nodename in text
        # --watch refreshes until the sweep ends, then returns.
        watched = run("status", str(sweep.out), "--watch", "0.5", timeout=120)
        assert watched.returncode == 0
        assert watched.stdout.count("sweep fake in") >= 2
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            sweep.kill_everything(proc)


@requires_mpirun
def test_status_tells_a_dead_sweep_from_a_running_one_and_watch_ends_on_it(sweep_factory):
    sweep = sweep_factory(fake_sweep_definition(penalties=(0.0, 0.01), seeds=(1,), baselines=()))
    proc = sweep.start(2, "--fake-trials", "--fake-duration", "600")
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (sweep.out / "status.json").exists():
            time.sleep(0.2)
        alive = json.loads(run("status", str(sweep.out), "--json").stdout)
        assert alive["state"] == "running" and alive["running"]
    finally:
        sweep.kill_everything(proc)  # kill -9: no last event, the journal still says running
    dead = run("status", str(sweep.out), "--json")
    assert dead.returncode == 0, dead.stderr
    status = json.loads(dead.stdout)
    assert status["state"] == "stopped" and status["running"] == [] and status["eta_s"] is None
    text = run("status", str(sweep.out)).stdout
    assert ": stopped" in text and "run edmips sweep again" in text and "eta" not in text
    watched = run("status", str(sweep.out), "--watch", "1", timeout=30)  # ends at once instead of forever
    assert watched.returncode == 0 and "stopped" in watched.stdout


@requires_mpirun
def test_status_watch_waits_for_a_sweep_that_has_not_started_and_follows_it(sweep_factory):
    sweep = sweep_factory(fake_sweep_definition(penalties=(0.0,), seeds=(1,), baselines=()))
    watcher = subprocess.Popen([edmips_binary(), "status", str(sweep.out), "--watch", "0.5", "--wait", "60"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        assert watcher.poll() is None, "--watch gave up before the sweep started"
        assert sweep.run(2, "--fake-trials", "--fake-duration", "2", timeout=120) == 0
        out, err = watcher.communicate(timeout=60)
        assert watcher.returncode == 0, err
        assert "waiting up to" in err and ": finished" in out
    finally:
        if watcher.poll() is None:
            watcher.kill()
    empty = run("status", str(sweep.dir / "never"), "--watch", "0.5", "--wait", "1", timeout=30)
    assert empty.returncode == 2 and "journal.jsonl" in empty.stderr  # the limit ends the wait


def test_report_writes_the_tables_and_every_plot(finished_sweep):
    result = run("report", str(finished_sweep))
    assert result.returncode == 0, result.stderr
    assert "Summary:" in result.stdout and "Recommended networks" in result.stdout
    for name in ("pareto.csv", "pareto.json", "report.md"):
        assert (finished_sweep / name).exists()
    pngs = {p.stem for p in (finished_sweep / "plots").glob("*.png")}
    assert pngs == {"accuracy_vs_bitops", "bit_allocation", "lambda_vs_bits", "search_dynamics",
                    "search_probabilities"}


@pytest.mark.parametrize("command", ["report", "pareto", "status"])
def test_a_reader_that_stops_reading_ends_the_command_quietly_and_its_files_are_written(finished_sweep, command):
    pipeline = f"set -o pipefail; {shlex.quote(edmips_binary())} {command} {shlex.quote(str(finished_sweep))} | head -c 1"
    result = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    if command == "report":
        assert (finished_sweep / "report.md").exists() and list((finished_sweep / "plots").glob("*.png"))


def test_report_says_plainly_when_it_cannot_find_its_plot_script(finished_sweep, tmp_path):
    lonely = tmp_path / "bin"
    lonely.mkdir()
    shutil.copy(edmips_binary(), lonely / "edmips")
    result = subprocess.run([str(lonely / "edmips"), "report", str(finished_sweep)], capture_output=True, text=True,
                            env={k: v for k, v in os.environ.items() if k != "EDMIPS_SHARE_DIR"})
    assert result.returncode == 1
    assert "analysis/plots.py not found" in result.stderr and "EDMIPS_SHARE_DIR" in result.stderr
    assert (finished_sweep / "report.md").exists()  # the tables are written all the same


def tiny_trial(tmp_path):
    config = {"seed": 1, "threads": 1,
              "dataset": {"name": "fashion-mnist", "train_subset": 1500, "test_subset": 200},
              "model": {"name": "simple-cnn"},
              "search": {"epochs": 1, "batch_size": 32, "complexity_penalty": 0.001},
              "train": {"epochs": 1, "batch_size": 32}}
    path = tmp_path / "trial.json"
    path.write_text(json.dumps(config))
    return path


FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")


@pytest.mark.skipif(not FASHION.exists(), reason="Fashion-MNIST not installed")
def test_a_trial_in_a_log_prints_one_line_per_epoch_to_stderr_and_its_result_to_stdout(tmp_path):
    result = run("trial", str(tiny_trial(tmp_path)), "--out", str(tmp_path / "out"))
    assert result.returncode == 0, result.stderr
    assert "\r" not in result.stderr  # no in-place updates in a log
    assert re.search(r"^search epoch 1/1 .*decided", result.stderr, re.M)
    assert re.search(r"^train  epoch 1/1 ", result.stderr, re.M)
    assert result.stdout.count("\n") == 1 and result.stdout.startswith("trial ")
    assert "top-1" in result.stdout


@pytest.mark.skipif(not FASHION.exists(), reason="Fashion-MNIST not installed")
def test_a_trial_on_a_terminal_updates_a_progress_line_in_place(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    env["TERM"] = "xterm"
    pid, fd = pty.fork()
    if pid == 0:
        os.execve(edmips_binary(), [edmips_binary(), "trial", str(tiny_trial(tmp_path)), "--out",
                                    str(tmp_path / "out")], env)
    output = b""
    while True:
        ready, _, _ = select.select([fd], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    text = output.decode(errors="replace")
    updates = re.findall(r"\r(search|train ) epoch 1/1  batch (\d+)/(\d+)  loss [\d.]+  \d+ img/s  eta ", text)
    assert len(updates) >= 2, text[-2000:]
    assert len({batch for _, batch, _ in updates}) >= 2  # it moved
    assert "\x1b[K" in text
    assert "trial " in text and "top-1" in text


def test_sweep_help_lists_no_testing_aids_and_they_still_parse():
    text = run("sweep", "--help").stdout
    assert "--out" in text and "fake" not in text and "0.20000" not in text


def test_validate_warns_of_a_dataset_path_missing_here_and_still_accepts_the_sweep(tmp_path):
    definition = fake_sweep_definition(penalties=(0.0,), seeds=(1,), baselines=())
    definition["base"]["dataset"]["path"] = str(tmp_path / "nowhere")
    (tmp_path / "s.json").write_text(json.dumps(definition))
    result = run("validate", str(tmp_path / "s.json"))
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    assert "warning" in result.stderr and str(tmp_path / "nowhere") in result.stderr
    definition["base"]["dataset"]["path"] = "/usr/share/datasets/fashion-mnist"
    (tmp_path / "s.json").write_text(json.dumps(definition))
    assert "warning" not in run("validate", str(tmp_path / "s.json")).stderr


def test_slurm_dry_run_warns_when_the_gpus_it_requests_would_sit_idle(tmp_path):
    definition = fake_sweep_definition(penalties=(0.0,), seeds=(1,), baselines=())
    definition["slurm"] = {"gpus_per_task": 1}
    (tmp_path / "s.json").write_text(json.dumps(definition))
    result = run("slurm", str(tmp_path / "s.json"), "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "--gpus-per-task=1" in result.stdout
    assert 'run on device "cpu"' in result.stderr
    definition["base"]["device"] = "cuda"
    (tmp_path / "s.json").write_text(json.dumps(definition))
    assert 'device "cpu"' not in run("slurm", str(tmp_path / "s.json"), "--dry-run").stderr
    for name in ("cifar10-paper.json", "imagenet-paper.json"):  # the GPU examples ask for what they use
        example = json.loads((pathlib.Path(__file__).parents[2] / "sweeps" / name).read_text())
        assert example["slurm"]["gpus_per_task"] > 0 and example["base"]["device"] == "cuda"


def test_plan_prints_small_lambdas_readably(tmp_path):
    definition = fake_sweep_definition(penalties=(1e-7, 0.0003), seeds=(1,), baselines=())
    (tmp_path / "s.json").write_text(json.dumps(definition))
    text = run("plan", str(tmp_path / "s.json")).stdout
    assert "1e-07" in text and "0.0003" in text and "0.000000" not in text


def test_a_trial_with_a_validation_split_reports_both_and_keeps_ids_without_one(tmp_path):
    config = {"seed": 1, "dataset": {"name": "fashion-mnist", "train_subset": 1000, "validation_subset": 500,
                                     "test_subset": 500},
              "model": {"name": "simple-cnn"}, "uniform": {"weight_bits": 4, "activation_bits": 4},
              "train": {"epochs": 1, "batch_size": 64, "lr": 0.05}}
    (tmp_path / "v.json").write_text(json.dumps(config))
    result = run("trial", str(tmp_path / "v.json"), "--out", str(tmp_path / "v"), "-q", timeout=300)
    assert result.returncode == 0, result.stderr
    r = json.loads((tmp_path / "v" / "result.json").read_text())
    assert r["validation_images"] == 500 and r["test_images"] == 500
    assert 0 <= r["validation_top1"] <= 100
    del config["dataset"]["validation_subset"]
    (tmp_path / "n.json").write_text(json.dumps(config))
    result = run("trial", str(tmp_path / "n.json"), "--out", str(tmp_path / "n"), "-q", timeout=300)
    n = json.loads((tmp_path / "n" / "result.json").read_text())
    assert n["validation_top1"] is None and n["trial_id"] != r["trial_id"]
