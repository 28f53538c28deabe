"""A user's own network through a trial: a float CNN trained here in PyTorch
(Debian's python3-torch) on the real Fashion-MNIST, exported to ONNX, read
back by edmips from its weights, quantized, searched and retrained."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, edmips_binary

DATA = pathlib.Path("/usr/share/datasets/fashion-mnist")
pytestmark = pytest.mark.skipif(not (DATA / "train-images-idx3-ubyte.gz").exists(), reason="no Fashion-MNIST")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """model.onnx trained for 2 epochs on 8000 images, and its float test top-1."""
    folder = tmp_path_factory.mktemp("onnx")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "train_fashion_onnx.py"), str(folder / "model.onnx"),
                          "--epochs", "2", "--train-subset", "8000"],
                         check=True, capture_output=True, text=True)
    return folder, json.loads(out.stdout.strip().splitlines()[-1])["float_top1"]


def trial(folder, name, config):
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    return subprocess.run([edmips_binary(), "trial", str(path), "--out", str(folder / name), "--threads", "2"],
                          capture_output=True, text=True)


def w8a8(init="imported", onnx="model.onnx"):
    return {"seed": 1, "dataset": {"name": "fashion-mnist", "path": str(DATA)},
            "model": {"onnx": onnx, "init": init},
            "uniform": {"weight_bits": 8, "activation_bits": 8}, "train": {"epochs": 0}}


def test_an_imported_network_at_w8a8_without_training_keeps_its_float_accuracy(trained):
    folder, float_top1 = trained
    run = trial(folder, "w8a8", w8a8())
    assert run.returncode == 0, run.stderr
    result = json.loads((folder / "w8a8" / "result.json").read_text())
    assert result["model"] == "model.onnx"
    assert result["normalised_bits"] == pytest.approx(8.0)
    # The bound: at most 0.5 top-1 points below the float network.
    assert result["top1"] >= float_top1 - 0.5, (result["top1"], float_top1)
    # From random weights the same network knows nothing: the weights really came from the file.
    scratch = trial(folder, "w8a8-scratch", w8a8(init="scratch"))
    assert scratch.returncode == 0, scratch.stderr
    assert json.loads((folder / "w8a8-scratch" / "result.json").read_text())["top1"] < 30


def test_a_search_from_imported_weights_derives_and_retrains_an_allocation(trained):
    folder, float_top1 = trained
    config = {"seed": 1,
              "dataset": {"name": "fashion-mnist", "path": str(DATA), "train_subset": 2000, "test_subset": 2000},
              "model": {"onnx": "model.onnx"},
              "search": {"epochs": 2, "complexity_penalty": 0.001, "lr": 0.01},
              "train": {"epochs": 1, "lr": 0.01}}
    run = trial(folder, "search", config)
    assert run.returncode == 0, run.stderr
    result = json.loads((folder / "search" / "result.json").read_text())
    layers = [entry["layer"] for entry in result["allocation"]["layers"]]
    assert layers == ["conv2.0", "res.0", "res.3", "conv3.0"]  # the file's module names; stem and fc stay float
    assert 1 <= result["normalised_bits"] < 4
    # Starting from trained weights, a short search and fine-tune stays a working classifier.
    assert result["top1"] > float_top1 - 10


def plan_ids(folder, onnx):
    (folder / "sweep.json").write_text(json.dumps({
        "name": "ids", "base": {"dataset": {"name": "fashion-mnist", "path": str(DATA)},
                                "model": {"onnx": onnx}, "search": {"epochs": 1}},
        "axes": {"complexity_penalty": [0.001]}}))
    run = subprocess.run([edmips_binary(), "plan", str(folder / "sweep.json")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return [line.split()[0] for line in run.stdout.splitlines() if len(line.split()[0]) == 12]


def test_trial_ids_follow_the_onnx_files_content_not_its_path(trained, tmp_path):
    folder, _ = trained
    shutil.copy(folder / "model.onnx", tmp_path / "copy.onnx")
    # Relative paths resolve against the sweep file's folder.
    original = plan_ids(folder, "model.onnx")
    copied = plan_ids(tmp_path, "copy.onnx")
    assert original and original == copied
    with open(tmp_path / "copy.onnx", "ab") as f:
        f.write(b"\0")  # still parses (protobuf skips nothing it needs), but another file
    changed = plan_ids(tmp_path, "copy.onnx")
    assert changed and changed != original


@pytest.mark.parametrize("model, expected", [
    ({"onnx": "missing.onnx"}, "/model/onnx"),
    ({"onnx": "model.onnx", "init": "pretrained"}, "/model/init"),
    ({"name": "resnet20", "init": "imported"}, "/model/init"),
])
def test_a_bad_onnx_model_entry_is_an_input_error_naming_the_json_path(trained, model, expected):
    folder, _ = trained
    config = w8a8()
    config["model"] = model
    run = trial(folder, "bad", config)
    assert run.returncode == 2, run.stderr
    assert expected in run.stderr


def test_a_truncated_onnx_file_is_an_input_error_naming_it(trained, tmp_path):
    folder, _ = trained
    data = (folder / "model.onnx").read_bytes()
    (tmp_path / "cut.onnx").write_bytes(data[: len(data) // 2])
    config = w8a8(onnx=str(tmp_path / "cut.onnx"))
    run = trial(tmp_path, "cut", config)
    assert run.returncode == 2, run.stderr
    assert "cut.onnx" in run.stderr


# ---- export, checked by real clients --------------------------------------

VENV_PYTHON = pathlib.Path(os.environ.get("EDMIPS_VENV", "/opt/edmips-venv")) / "bin" / "python"
CHECK = ROOT / "analysis" / "onnx_check.py"


def export(trial_dir, fmt, out):
    return subprocess.run([edmips_binary(), "export", str(trial_dir), "--format", fmt, "--out", str(out)],
                          capture_output=True, text=True)


def runtime_top1(model, limit):
    run = subprocess.run([str(VENV_PYTHON), str(CHECK), "ortop1", str(model), "--limit", str(limit)],
                         check=True, capture_output=True, text=True)
    return json.loads(run.stdout)["top1"]


def client_logits(model, out, qonnx=False):
    subprocess.run([str(VENV_PYTHON), str(CHECK), "logits", str(model), str(out), "--limit", "64"]
                   + (["--qonnx"] if qonnx else []), check=True, capture_output=True, text=True)
    import numpy
    return numpy.fromfile(out, dtype="<f4")


@pytest.fixture(scope="module")
def mixed(trained):
    """1- to 4-bit layers, signed and unsigned inputs, no training: every quantizer form."""
    folder, _ = trained
    allocation = {"model": "model.onnx", "layers": [
        {"layer": "conv2.0", "weight_bits": 2, "activation_bits": 3},
        {"layer": "res.0", "weight_bits": 3, "activation_bits": 2},
        {"layer": "res.3", "weight_bits": 1, "activation_bits": 4},
        {"layer": "conv3.0", "weight_bits": 4, "activation_bits": 1}]}
    config = {"seed": 1, "dataset": {"name": "fashion-mnist", "path": str(DATA), "test_subset": 2000},
              "model": {"onnx": "model.onnx"}, "allocation": allocation, "train": {"epochs": 0}}
    run = trial(folder, "mixed", config)
    assert run.returncode == 0, run.stderr
    return folder / "mixed"


def test_onnx_runtime_runs_the_qdq_export_of_a_searched_trial_to_its_top1(trained, tmp_path):
    folder, _ = trained
    test_a_search_from_imported_weights_derives_and_retrains_an_allocation(trained)  # finished: read back
    out = tmp_path / "searched.onnx"
    run = export(folder / "search", "qdq", out)
    assert run.returncode == 0, run.stderr
    sidecar = json.loads((tmp_path / "searched.onnx.json").read_text())
    assert sidecar["batch_norm_folded"] is False
    assert [l["layer"] for l in sidecar["layers"] if "weight_bits" in l] == ["conv2.0", "res.0", "res.3", "conv3.0"]
    result = json.loads((folder / "search" / "result.json").read_text())
    assert abs(runtime_top1(out, 2000) - result["top1"]) <= 0.05


def test_every_quantizer_form_exports_exactly_to_onnx_runtime_and_qonnx(mixed, tmp_path):
    result = json.loads((mixed / "result.json").read_text())
    assert export(mixed, "qdq", tmp_path / "m.onnx").returncode == 0
    assert export(mixed, "qonnx", tmp_path / "q.onnx").returncode == 0
    inputs = {l["input"] for l in json.loads((tmp_path / "m.onnx.json").read_text())["layers"]}
    assert {"signed", "unsigned"} <= inputs
    assert abs(runtime_top1(tmp_path / "m.onnx", 2000) - result["top1"]) <= 0.05
    assert compare(tmp_path / "m.onnx") < 1e-4 and compare(tmp_path / "q.onnx", qonnx=True) < 1e-4
    qdq = client_logits(tmp_path / "m.onnx", tmp_path / "m.f32")
    qonnx = client_logits(tmp_path / "q.onnx", tmp_path / "q.f32", qonnx=True)
    assert abs(qdq - qonnx).max() / abs(qdq).max() < 1e-4
    # The QDQ file really is smaller: integer weights.
    assert (tmp_path / "m.onnx").stat().st_size < (tmp_path / "q.onnx").stat().st_size / 2


def test_the_float_export_is_the_imported_network_round_trip(trained, tmp_path):
    folder, float_top1 = trained
    test_an_imported_network_at_w8a8_without_training_keeps_its_float_accuracy(trained)
    assert export(folder / "w8a8", "float", tmp_path / "f.onnx").returncode == 0
    assert abs(runtime_top1(tmp_path / "f.onnx", 0) - float_top1) <= 0.05


def test_export_refuses_what_it_cannot_write(trained, tmp_path):
    folder, _ = trained
    bad = export(folder / "w8a8", "int4", tmp_path / "x.onnx")
    assert bad.returncode == 2 and "qdq, qonnx or float" in bad.stderr
    missing = export(tmp_path / "nothing", "qdq", tmp_path / "x.onnx")
    assert missing.returncode == 2 and "no finished trial" in missing.stderr
    assert not (tmp_path / "x.onnx").exists()


def compare(model, qonnx=False):
    """The client's logits against the reference edmips export wrote beside the file."""
    run = subprocess.run([str(VENV_PYTHON), str(CHECK), "compare", str(model)] + (["--qonnx"] if qonnx else []),
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)["relative_error"]


@pytest.mark.parametrize("model", ["simple-cnn", "resnet20", "vgg-small", "resnet18", "resnet50", "googlenet"])
def test_built_in_models_export_to_files_onnx_runtime_and_qonnx_compute_exactly(model, tmp_path):
    config = {"seed": 1, "dataset": {"name": "fashion-mnist", "path": str(DATA), "train_subset": 256,
                                     "test_subset": 64},
              "model": {"name": model}, "uniform": {"weight_bits": 2, "activation_bits": 3},
              # Trained where top-1 is compared; else the random weights are as good a check of the graph.
              "train": {"epochs": 1 if model == "simple-cnn" else 0}}
    run = trial(tmp_path, model, config)
    assert run.returncode == 0, run.stderr
    # qonnx's executor runs node by node in Python: the two small networks.
    for form in ("qdq", "qonnx") if model in ("simple-cnn", "resnet20") else ("qdq",):
        out = tmp_path / f"{model}-{form}.onnx"
        assert export(tmp_path / model, form, out).returncode == 0
        sidecar = json.loads((tmp_path / f"{model}-{form}.onnx.json").read_text())
        assert sidecar["source"] == f"built-in model {model}"
        assert len(sidecar["reference"]["logits"]) == 8
        # Every searched layer carries its bits; the first and last stay float.
        bits = [(l["weight_bits"], l["activation_bits"]) for l in sidecar["layers"] if "weight_bits" in l]
        assert bits and set(bits) == {(2, 3)} and len(bits) == len(sidecar["layers"]) - 2
        assert compare(out, qonnx=form == "qonnx") < 1e-4
    if model == "simple-cnn":  # and the whole test set's top-1, in a runtime
        result = json.loads((tmp_path / model / "result.json").read_text())
        assert abs(runtime_top1(tmp_path / "simple-cnn-qdq.onnx", 64) - result["top1"]) <= 0.05


def test_the_released_step_table_reaches_the_exported_quantizers_and_the_clients_compute_them(tmp_path):
    config = {"seed": 1, "dataset": {"name": "fashion-mnist", "path": str(DATA), "train_subset": 256,
                                     "test_subset": 64},
              "model": {"name": "simple-cnn"}, "uniform": {"weight_bits": 4, "activation_bits": 4},
              "quantizer_steps": "released", "train": {"epochs": 0}}
    run = trial(tmp_path, "released", config)
    assert run.returncode == 0, run.stderr
    assert json.loads((tmp_path / "released" / "config.json").read_text())["config"]["quantizer_steps"] == "released"
    for form in ("qdq", "qonnx"):
        out = tmp_path / f"released-{form}.onnx"
        assert export(tmp_path / "released", form, out).returncode == 0
        layers = [l for l in json.loads((tmp_path / f"released-{form}.onnx.json").read_text())["layers"]
                  if "weight_bits" in l]
        # hwgq_steps[4] of the released quant_module.py, not the computed 0.1842.
        assert layers and {l["activation_step"] for l in layers} == {0.185}
        assert compare(out, qonnx=form == "qonnx") < 1e-4


def test_inception_v3_from_an_image_folder_exports_to_what_onnx_runtime_and_qonnx_compute(tmp_path):
    # Inception-V3 needs 75x75 at least: a generated folder at 80x80 crops, whose
    # decoded reference images the sidecar names for the client to read.
    folder = tmp_path / "folder"
    made = subprocess.run([edmips_binary(), "generate-folder", str(folder), "--width", "120", "--height", "100"],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    config = {"seed": 1, "dataset": {"name": "image-folder", "path": str(folder), "image_size": 80},
              "model": {"name": "inception_v3"}, "uniform": {"weight_bits": 2, "activation_bits": 3},
              "train": {"epochs": 0}}
    run = trial(tmp_path, "inception_v3", config)
    assert run.returncode == 0, run.stderr
    for form in ("qdq", "qonnx"):
        out = tmp_path / f"inception-{form}.onnx"
        assert export(tmp_path / "inception_v3", form, out).returncode == 0
        sidecar = json.loads((tmp_path / f"inception-{form}.onnx.json").read_text())
        assert sidecar["reference"]["inputs_file"]["shape"] == [8, 3, 80, 80]
        bits = [(l["weight_bits"], l["activation_bits"]) for l in sidecar["layers"] if "weight_bits" in l]
        assert len(bits) == 93 and set(bits) == {(2, 3)}
        assert compare(out, qonnx=form == "qonnx") < 1e-4


# ---- sweeps of imported models, the workflow script, the bench ------------

def test_a_models_axis_of_model_objects_sweeps_one_file_from_its_weights_and_from_scratch(trained):
    folder, _ = trained
    sweep = {"name": "inits", "base": {"dataset": {"name": "fashion-mnist", "path": str(DATA)},
                                       "model": {"name": "resnet20"}, "search": {"epochs": 1}},
             "axes": {"complexity_penalty": [0.001],
                      "models": [{"onnx": "model.onnx"}, {"onnx": "model.onnx", "init": "scratch"}, "simple-cnn"]}}
    (folder / "inits.json").write_text(json.dumps(sweep))
    run = subprocess.run([edmips_binary(), "plan", str(folder / "inits.json")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    # Each model object replaces the base's model whole; each init gets its own name, so its own front.
    for name in ("model.onnx", "model.onnx-scratch", "simple-cnn"):
        assert f" {name} " in run.stdout, run.stdout
    assert "resnet20" not in run.stdout
    sweep["axes"]["models"][1]["init"] = "pretrained"
    (folder / "inits.json").write_text(json.dumps(sweep))
    bad = subprocess.run([edmips_binary(), "validate", str(folder / "inits.json")], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "/axes/models/1" in bad.stderr and "/model/init" in bad.stderr, bad.stderr


@pytest.mark.skipif(os.environ.get("EDMIPS_SANITIZED") == "1",
                    reason="under the sanitizers the workflow's parts run in the tests above; the whole in the main suite")
def test_the_workflow_script_sweeps_both_inits_reports_export_commands_and_runs_the_best_in_onnx_runtime(
        trained, tmp_path):
    folder, _ = trained
    shutil.copy(folder / "model.onnx", tmp_path / "fashion.onnx")  # the script's step 1, already done
    settings = {"TRAIN_SUBSET": "1000", "TEST_SUBSET": "1000", "SEARCH_EPOCHS": "1", "RETRAIN_EPOCHS": "1",
                "LAMBDAS": "0.001", "SEEDS": "1", "BASELINES": "2", "EDMIPS_RANKS": "2",
                "EDMIPS_BINARY": edmips_binary(), "EDMIPS_VENV": str(VENV_PYTHON.parent.parent)}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "onnx-workflow.sh"), str(tmp_path)],
                         env={**os.environ, **settings}, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "## Exporting the front" in report
    pareto = json.loads((tmp_path / "sweep" / "pareto.json").read_text())
    groups = {g["model"] for g in pareto["groups"]}
    assert groups == {"fashion.onnx", "fashion.onnx-scratch"}
    # Every listed command works as written, and writes what it says.
    commands = [line.split() for line in report.splitlines() if line.startswith("edmips export ")]
    assert commands and any("fashion-lambda_0.001.onnx" in c for c in commands), report
    for command in commands:
        done = subprocess.run([str(pathlib.Path(edmips_binary()).resolve()), *command[1:]], cwd=tmp_path,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert (tmp_path / command[-1]).exists()
    # The exported best runs in ONNX Runtime at edmips's own top-1.
    best = [line for line in run.stdout.splitlines() if "ONNX Runtime on" in line][-1]
    ours = float(best.split("edmips top-1 ")[1].split(" %")[0])
    theirs = json.loads(best.split(": ", 1)[1])["top1"]
    assert abs(ours - theirs) <= 0.05, best


def test_bench_times_an_imported_network_beside_the_built_in_one(trained):
    folder, _ = trained
    args = [edmips_binary(), "bench", "--model", "simple-cnn", "--channels", "1", "--size", "28", "--batch", "8",
            "--steps", "1", "--warmup", "0", "--no-naive"]
    run = subprocess.run(args + ["--onnx", str(folder / "model.onnx")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    for form in ("| imported float |", "| imported search (composite) |", "| imported fixed (derived) |",
                 "imported / simple-cnn, search (composite): "):
        assert form in run.stdout, run.stdout
    missing = subprocess.run(args + ["--onnx", str(folder / "missing.onnx")], capture_output=True, text=True)
    assert missing.returncode == 2 and "missing.onnx" in missing.stderr
