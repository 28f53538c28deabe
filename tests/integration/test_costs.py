"""Cost models end to end (docs/costs.md): the cost-table template, a real
sweep under a table beside a BitOps one, results.csv's measures, and pareto
re-pricing every trial in the table."""
import csv
import json
import pathlib
import subprocess

import pytest

from conftest import Sweep, edmips_binary

FASHION = pathlib.Path("/usr/share/datasets/fashion-mnist")


def run(*args, **kwargs):
    return subprocess.run([edmips_binary(), *args], capture_output=True, text=True, **kwargs)


def test_cost_table_writes_every_searched_layer_of_a_builtin_model_and_never_replaces_a_table(tmp_path):
    out = tmp_path / "table.json"
    first = run("cost-table", "resnet20", "--out", str(out))
    assert first.returncode == 0, first.stderr
    table = json.loads(out.read_text())
    described = table["template"]["layers"]
    # resnet20's 20 searched layers: the first conv and the fc stay float by default.
    assert len(table["layers"]) == len(described) == 20
    for name, layer in described.items():
        assert layer["macs"] > 0 and layer["shape"].startswith(("conv ", "linear ")), name
        assert all(v is None for v in table["layers"][name].values())
    # The default candidates: weights 1-4 by activations 2-4.
    assert set(table["layers"]["layer1.0.conv1"]) == {f"w{w}a{a}" for w in (1, 2, 3, 4) for a in (2, 3, 4)}
    # A table being filled in is never overwritten by accident.
    out.write_text(json.dumps(dict(table, unit="microseconds")))
    before = out.read_text()
    again = run("cost-table", "resnet20", "--out", str(out))
    assert again.returncode == 2 and "--force" in again.stderr
    assert out.read_text() == before
    assert run("cost-table", "resnet20", "--out", str(out), "--force").returncode == 0
    assert json.loads(out.read_text())["unit"].startswith("FILL IN")
    unknown = run("cost-table", "resnet21", "--out", str(tmp_path / "x.json"))
    assert unknown.returncode == 2 and "resnet21" in unknown.stderr


def fill(template, path):
    """Costs that are not proportional to BitOps (documented in docs/costs.md):
    a fixed launch overhead per layer plus MACs x the widths each rounded up to
    4 or 8 bits, 1-3 bits running as 4 as on an INT4/INT8 device."""
    table = json.loads(template.read_text())
    table["unit"] = "microseconds"
    table["description"] = "test: 2 us per layer + 1e-6 us per MAC x ceil4(w) x ceil4(a)"
    for name, pairs in table["layers"].items():
        macs = table["template"]["layers"][name]["macs"]
        for pair in pairs:
            w, a = (int(x) for x in pair[1:].split("a"))
            up = lambda b: 4 if b <= 4 else 8  # noqa: E731
            pairs[pair] = 2.0 + 1e-6 * macs * up(w) * up(a)
    path.write_text(json.dumps(table))
    return table


@pytest.mark.skipif(not FASHION.is_dir(), reason="Fashion-MNIST not installed")
def test_a_sweep_under_a_table_records_every_measure_and_pareto_reprices_a_bitops_sweep_in_it(tmp_path):
    base = {"dataset": {"name": "fashion-mnist", "path": str(FASHION), "train_subset": 600, "test_subset": 300},
            "model": {"name": "simple-cnn"}, "threads": 1,
            "search": {"epochs": 1, "batch_size": 100}, "train": {"epochs": 1, "batch_size": 100}}
    config = tmp_path / "config.json"
    config.write_text(json.dumps(dict(base, search=dict(base["search"], complexity_penalty=1e-3))))
    assert run("cost-table", str(config), "--out", str(tmp_path / "template.json")).returncode == 0
    table = fill(tmp_path / "template.json", tmp_path / "table.json")
    sweep = Sweep(tmp_path, {
        "name": "costs", "base": base,
        "axes": {"complexity_penalty": [1e-3],
                 "fields": {"/search/cost": ["bitops", {"measure": "table", "table": str(tmp_path / "table.json")}]}},
        "baselines": [[2, 2]]})
    assert sweep.run(1) == 0, (tmp_path / "run.log").read_text()
    rows = list(csv.DictReader(open(sweep.out / "results.csv", newline="")))
    assert len(rows) == 3
    table_rows = [r for r in rows if r["table_cost"]]
    assert len(table_rows) == 1 and table_rows[0]["table_unit"] == "microseconds"
    assert all(float(r["activation_memory_bits"]) > 0 for r in rows)
    # The table search's own figure is what pricing its layers in the table gives.
    trial = json.loads((sweep.out / "trials" / table_rows[0]["trial_id"] / "result.json").read_text())
    repriced = sum(table["layers"][l["name"]][f"w{l['weight_bits']}a{l['activation_bits']}"]
                   for l in trial["layers"] if l["quantized"])
    assert trial["table_cost"] == pytest.approx(repriced, rel=1e-12)

    # Without a table for every trial the uniform baseline has no table cost.
    missing = run("pareto", str(sweep.out), "--cost", "table")
    assert missing.returncode == 3 and "--cost-table" in missing.stderr
    priced = run("pareto", str(sweep.out), "--cost", "table", "--cost-table", str(tmp_path / "table.json"))
    assert priced.returncode == 0, priced.stderr
    assert "table cost (microseconds)" in priced.stdout
    report = json.loads((sweep.out / "pareto.json").read_text())
    assert report["cost_unit"] == "microseconds" and report["cost"] == "table"
    # Searches under different costs are different fronts, each against the baselines.
    groups = {g["name"]: g["kind"] for g in report["groups"]}
    assert sorted(groups.values()) == ["search", "search", "uniform"]
    assert any(name.endswith("cost table table.json") for name in groups)
    assert {d["mixed_group"] for d in report["dominance"]} == {n for n, k in groups.items() if k == "search"}
    by_id = {c["trials"][0]["id"]: c for c in report["configurations"]}
    assert by_id[table_rows[0]["trial_id"]]["table_cost_mean"] == pytest.approx(repriced, rel=1e-12)
    assert all(c["cost"] == c["table_cost_mean"] for c in report["configurations"])
    with open(sweep.out / "pareto.csv", newline="") as f:
        assert {r["cost_unit"] for r in csv.DictReader(f)} == {"microseconds"}
    memory = run("pareto", str(sweep.out), "--cost", "activation_memory_bits")
    assert memory.returncode == 0 and "activation memory bits (bits)" in memory.stdout


def test_a_budget_in_table_cost_needs_searches_priced_in_a_table(tmp_path):
    sweep = tmp_path / "s.json"
    sweep.write_text(json.dumps({
        "name": "b", "base": {"model": {"name": "simple-cnn"}},
        "axes": {"budgets": {"cost": "table", "values": [100]}}}))
    result = run("validate", str(sweep))
    assert result.returncode == 2
    assert "/axes/budgets/cost" in result.stderr and "table" in result.stderr
