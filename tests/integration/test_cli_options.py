"""Every numeric or list option of every sub-command, given zero, negative,
huge, NaN, infinite, fractional and non-numeric values (issue 23): the answer
is exit 0 (the value is fine and the command ran) or exit 2 naming the
option, never a signal, never 70 (a bug), and never a LibTorch trace."""
import json
import pathlib
import subprocess

import pytest

from conftest import edmips_binary, fake_sweep_definition

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "analysis" / "fixture" / "sweep"

HOSTILE = ["0", "-1", "2147483648", "99999999999999999999", "1e300", "nan", "inf", "1.5", "abc", ""]
# Values no option of these commands accepts: the answer must name the option.
ALWAYS_WRONG = {"-1", "2147483648", "99999999999999999999", "1e300", "nan", "inf", "abc", ""}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    base = tmp_path_factory.mktemp("options")
    sweep = base / "sweep.json"
    sweep.write_text(json.dumps(fake_sweep_definition()))
    folder = base / "folder"
    made = subprocess.run([edmips_binary(), "generate-folder", str(folder), "--classes", "2", "--train-per-class",
                           "4", "--val-per-class", "1", "--width", "32", "--height", "32"],
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    return {"base": base, "sweep": sweep, "folder": folder}


# command, its positional arguments, the options that make it run quickly (or
# fail at once on a missing file, after its options were parsed), and the
# options under test. A tested option is left out of the quick ones.
BENCH = {"model": "simple-cnn", "batch": "2", "size": "8", "steps": "1", "warmup": "0", "threads": "1"}
DATA_BENCH = {"data": "{folder}", "step-model": "", "images": "4", "batch": "2", "size": "16", "threads": "1"}
CASES = [
    ("trial", ["{base}/missing.json"], {"out": "{base}/t"}, ["threads"]),
    ("sweep", ["{base}/missing.json"], {"out": "{base}/s"}, ["threads", "fake-duration"]),
    ("slurm", ["{sweep}", "--dry-run"], {"out": "{base}/slurm"},
     ["nodes", "ntasks-per-node", "cpus-per-task", "gpus-per-task"]),
    ("status", ["{base}"], {"wait": "0"}, ["watch", "wait"]),
    ("pareto", [str(FIXTURE)], {"out": "{base}/p"}, ["reference"]),
    ("generate-folder", ["{base}/generated"], {},
     ["classes", "train-per-class", "val-per-class", "width", "height", "quality", "seed"]),
    ("bench", ["--no-naive"], BENCH,
     ["batch", "channels", "size", "classes", "steps", "warmup", "threads", "weight-bits", "activation-bits"]),
    ("bench", ["--no-torchvision"], DATA_BENCH, ["generate-images", "images", "batch", "size", "threads",
                                                "step-batch", "steps"]),
]
PARAMS = [(case, option) for case in CASES for option in case[3]]


def wrong_values(option):
    if option == "seed":  # any 64-bit unsigned number is a seed
        return {"99999999999999999999", "1e300", "nan", "inf", "1.5", "abc", ""}
    return ALWAYS_WRONG


@pytest.mark.parametrize("case,option", PARAMS,
                         ids=[f"{c[0]}{'-data' if 'data' in c[2] else ''}--{o}" for c, o in PARAMS])
def test_a_hostile_option_value_is_refused_naming_the_option_or_runs(inputs, case, option):
    command, positional, quick, _ = case
    for value in HOSTILE:
        args = [command] + [a.format(**inputs) for a in positional]
        for k, v in quick.items():
            if k != option:
                args += [f"--{k}", v.format(**inputs)]
        args.append(f"--{option}={value}")
        result = subprocess.run([edmips_binary(), *args], capture_output=True, text=True, timeout=120)
        what = f"{' '.join(args)}: exit {result.returncode}\n{result.stderr[-2000:]}"
        assert result.returncode in (0, 2), what
        assert "internal error" not in result.stderr and "frame #" not in result.stderr, what
        assert len(result.stderr) < 4096, what
        if value in wrong_values(option):
            assert result.returncode == 2 and f"--{option}" in result.stderr, what
