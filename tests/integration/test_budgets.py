"""Budget targets (docs/budgets.md) on real MPI ranks: the coordinator finds
each budget's lambda with search-only probes and retrains what it found.
The fake executor's probes follow a synthetic, noisy, stepwise cost(lambda)
per seed (src/sweep/synthetic_cost.h), so convergence, resume and
exactly-once are checked in seconds; the last test runs real Fashion-MNIST
searches."""
import json
import signal
import subprocess
import time

import pytest

from conftest import edmips_binary, requires_mpirun

pytestmark = requires_mpirun

FASHION = "/usr/share/datasets/fashion-mnist"


def budget_definition(values=(2.0, 2.5, 3.0), seeds=(1, 2, 3), tolerance=0.05, baselines=((2, 2),), **extra):
    budgets = {"cost": "normalised_bits", "values": list(values), "tolerance": tolerance}
    budgets.update(extra)
    return {
        "name": "budgets",
        "base": {"dataset": {"train_subset": 100}, "search": {"epochs": 1}, "train": {"epochs": 1}},
        "axes": {"seeds": list(seeds), "budgets": budgets},
        "baselines": [list(b) for b in baselines],
    }


def decisions(sweep):
    """group -> its budget_decided events, in journal order."""
    out = {}
    for e in sweep.journal():
        if e["event"] == "budget_decided":
            out.setdefault(e["group"], []).append(e)
    return out


def finished(sweep):
    return {e["trial"]: e for e in sweep.journal() if e["event"] == "trial_finished"}


def check_budgets_met_once(sweep, groups):
    """Every budget decided once, its allocation under the budget, retrained
    exactly once with the cost the probe promised."""
    done = finished(sweep)
    counts = sweep.finished_counts()
    assert set(decisions(sweep)) == groups
    for group, events in decisions(sweep).items():
        assert len(events) == 1, f"budget {group} decided {len(events)} times"
        e = events[0]
        assert e["state"] in ("met", "gave_up"), e
        assert e["chosen_cost"] <= e["budget"]
        if e["state"] == "met":
            assert e["chosen_cost"] >= e["budget"] * (1 - e["tolerance"])
        retrain = done[e["retrain"]]
        assert counts[e["retrain"]] == 1
        assert retrain["summary"]["kind"] == "budget"
        assert retrain["summary"]["budget"] == e["budget"]
        assert retrain["result"]["normalised_bits"] == pytest.approx(e["chosen_cost"])
        assert retrain["result"]["top1"] is not None
        probe = done[e["chosen"]]
        assert probe["summary"]["kind"] == "probe"
        assert probe["result"]["top1"] is None  # search only
        assert probe["summary"]["complexity_penalty"] == e["complexity_penalty"]
    assert all(c == 1 for c in counts.values()), "a trial finished twice"


def started_count(sweep):
    if not (sweep.out / "journal.jsonl").exists():
        return 0
    # The last line may be torn by a kill: count whole lines only.
    return sum('"event":"trial_started"' in line
               for line in (sweep.out / "journal.jsonl").read_text().split("\n")[:-1])


def budget_groups(sweep):
    out = subprocess.run([edmips_binary(), "plan", str(sweep.file)], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    start = next(i for i, line in enumerate(out) if line.startswith("budget_group"))
    return {line.split()[0] for line in out[start + 1:]}


def test_every_budget_lands_in_its_window_and_is_retrained_once(sweep_factory):
    sweep = sweep_factory(budget_definition())
    assert sweep.run(3, "--fake-trials", "--fake-duration", "0.05") == 0
    groups = budget_groups(sweep)
    assert len(groups) == 9
    check_budgets_met_once(sweep, groups)
    events = sweep.journal()
    probes = [e for e in events if e["event"] == "trial_finished" and e["summary"]["kind"] == "probe"]
    # Probes of one seed's budgets are shared; the fake curves need a few each.
    assert len(probes) <= 8 * len(groups)
    assert sum(e["state"] == "met" for g in decisions(sweep).values() for e in g) >= 7
    status = json.loads((sweep.out / "status.json").read_text())
    assert status["done"] == status["total"] == 3 + 9  # the W2A2 baseline of 3 seeds, 9 budgets
    assert len(status["budgets"]) == 9
    rows = sweep.csv_rows()
    budget_rows = [r for r in rows if r["kind"] == "budget"]
    assert len(budget_rows) == len({e[0]["retrain"] for e in decisions(sweep).values()})
    assert all(r["budget"] and r["probes"] for r in budget_rows)
    assert all(r["top1"] == "" for r in rows if r["kind"] == "probe")


def test_resume_after_kill_9_continues_the_search_and_retrains_each_budget_once(sweep_factory):
    sweep = sweep_factory(budget_definition(seeds=(1, 2, 3, 4)))
    # Killed once each run is handing out trials (MPI's start-up time varies with the load).
    kills = sweep.kill_at_random_moments(3, ["--fake-trials", "--fake-duration", "0.3"], attempts=8, seed=7,
                                         delay=(0.1, 1.0), progress=lambda: started_count(sweep))
    assert kills >= 3
    assert sweep.run(3, "--fake-trials", "--fake-duration", "0.3") == 0
    groups = budget_groups(sweep)
    check_budgets_met_once(sweep, groups)
    # Nothing was searched twice: every probe finished once, and a probe cut
    # short by a kill resumed from its checkpoint rather than from zero.
    done = finished(sweep)
    resumed = [t for t, e in done.items() if e["result"].get("resumed_from_step", 0) > 0]
    assert resumed, "no trial resumed from a checkpoint after the kills"
    # A rerun of the finished sweep runs nothing and decides nothing again.
    before = len(sweep.journal())
    assert sweep.run(3, "--fake-trials", "--fake-duration", "0.3") == 0
    after = sweep.journal()[before:]
    assert not [e for e in after if e["event"] in ("trial_started", "budget_decided")]


def test_preemption_checkpoints_probes_and_the_rerun_resumes_them(sweep_factory):
    sweep = sweep_factory(budget_definition(values=(2.0, 3.0), seeds=(1, 2), baselines=()))
    proc = sweep.start(2, "--fake-trials", "--fake-duration", "2")
    deadline = time.time() + 60
    while started_count(sweep) < 2 and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.8)
    proc.send_signal(signal.SIGUSR2)  # what Slurm sends before preempting; mpirun forwards it
    assert proc.wait(timeout=60) == 4
    paused = {e["trial"] for e in sweep.journal() if e["event"] == "trial_interrupted"}
    assert paused
    assert sweep.run(2, "--fake-trials", "--fake-duration", "0.2") == 0
    check_budgets_met_once(sweep, budget_groups(sweep))
    done = finished(sweep)
    for trial in paused:
        assert done[trial]["result"]["resumed_from_step"] > 0, "a preempted probe restarted from zero"


def test_a_new_budget_and_a_new_seed_reuse_the_probes_already_run(sweep_factory):
    sweep = sweep_factory(budget_definition(values=(2.5,), seeds=(1,), baselines=()))
    assert sweep.run(2, "--fake-trials", "--fake-duration", "0.02") == 0
    probes_before = {t for t, e in finished(sweep).items() if e["summary"]["kind"] == "probe"}
    sweep.write(budget_definition(values=(2.5, 2.6), seeds=(1, 2), baselines=()))
    assert sweep.run(2, "--fake-trials", "--fake-duration", "0.02") == 0
    check_budgets_met_once(sweep, budget_groups(sweep))
    decided = {e["budget"]: e for g in decisions(sweep).values() for e in g if e["summary"]["seed"] == 1}
    # Budget 2.6 of seed 1 decided on its family's probes, the first run's included.
    assert decided[2.6]["family_probes"] - decided[2.6]["own_probes"] >= len(probes_before)
    assert not (set(finished(sweep)) - probes_before) & probes_before
    # Seed 2 started at the lambda where seed 1's probes came closest to one of its budgets.
    import math
    first_run = [finished(sweep)[t] for t in probes_before]
    closest = set()
    for budget in (2.5, 2.6):
        goal = math.log(budget * (1 - 0.05 / 2))
        best = min(first_run, key=lambda p: abs(math.log(p["result"]["normalised_bits"]) - goal))
        closest.add(best["summary"]["complexity_penalty"])
    first_seed2 = next(e for e in sweep.journal() if e["event"] == "trial_started"
                       and e["summary"]["kind"] == "probe" and e["summary"]["seed"] == 2)
    assert first_seed2["summary"]["complexity_penalty"] in closest
    # plan --out lists the probes known so far.
    plan = subprocess.run([edmips_binary(), "plan", str(sweep.file), "--out", str(sweep.out)], check=True,
                          capture_output=True, text=True).stdout
    assert plan.count("probes known") == 4
    assert plan.count("decided: met") + plan.count("decided: gave_up") == 4


def test_a_budget_below_the_cheapest_allocation_is_impossible_and_says_so(sweep_factory):
    sweep = sweep_factory(budget_definition(values=(0.5,), seeds=(1,), baselines=()))
    assert sweep.run(2, "--fake-trials", "--fake-duration", "0.02") == 0
    (e,) = [g[0] for g in decisions(sweep).values()]
    assert e["state"] == "impossible"
    assert "no probe's allocation is under the budget" in e["reason"]
    assert not [t for t in finished(sweep).values() if t["summary"]["kind"] == "budget"]


def test_a_failing_probe_fails_its_budget_and_the_exit_code_says_so(sweep_factory):
    sweep = sweep_factory(budget_definition(values=(2.5,), seeds=(1, 2), baselines=()))
    assert sweep.run(2, "--fake-trials", "--fake-duration", "0.02", "--fake-fail-always-seed", "2") == 1
    states = {g[-1]["summary"]["seed"]: g[-1]["state"] for g in decisions(sweep).values()}
    assert states[1] in ("met", "gave_up")
    assert states[2] == "failed"


def test_the_report_has_a_table_per_budget(sweep_factory):
    sweep = sweep_factory(budget_definition(values=(2.0, 3.0), seeds=(1, 2)))
    assert sweep.run(2, "--fake-trials", "--fake-duration", "0.02") == 0
    out = subprocess.run([edmips_binary(), "pareto", str(sweep.out)], check=True, capture_output=True,
                         text=True).stdout
    assert "Budgets (" in out
    report = (sweep.out / "report.md").read_text()
    assert "### budget 2 normalised_bits" in report and "### budget 3 normalised_bits" in report
    pareto = json.loads((sweep.out / "pareto.json").read_text())
    assert len(pareto["budgets"]) == 4
    assert all(b["top1"] is not None and b["complexity_penalty"] > 0 for b in pareto["budgets"])
    budget_configurations = [c for c in pareto["configurations"] if c["kind"] == "budget"]
    assert len(budget_configurations) == 2  # seeds of one budget averaged
    assert all(c["seeds"] == 2 and c["probes_mean"] > 0 for c in budget_configurations)
    assert pareto["probes"] > 0
    assert not [c for c in pareto["configurations"] if c["kind"] == "probe"]
    import csv
    with open(sweep.out / "pareto.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["budget"] for r in rows if r["kind"] == "budget"} == {"2", "3"}
    # The plots mark the budget results (when the report's Python has matplotlib).
    report_run = subprocess.run([edmips_binary(), "report", str(sweep.out)], capture_output=True, text=True)
    if "no Python with matplotlib" not in report_run.stderr:
        assert report_run.returncode == 0, report_run.stderr
        svg = (sweep.out / "plots" / "accuracy_vs_bitops.svg").read_text()
        assert "budget results" in svg and "budget 3" in svg


@pytest.mark.skipif(not __import__("os").path.isdir(FASHION), reason="Fashion-MNIST not installed")
def test_a_real_fashion_mnist_budget_sweep_finds_and_retrains_an_allocation(sweep_factory):
    definition = {
        "name": "real-budgets",
        "base": {
            "dataset": {"name": "fashion-mnist", "path": FASHION, "train_subset": 512, "test_subset": 512},
            "model": {"name": "simple-cnn"},
            "search": {"epochs": 3, "batch_size": 64},
            "train": {"epochs": 1, "batch_size": 64},
        },
        "axes": {"seeds": [1],
                 "budgets": {"cost": "normalised_bits", "values": [2.5], "tolerance": 0.1}},
    }
    sweep = sweep_factory(definition)
    assert sweep.run(2, "--threads", "1", timeout=900) == 0
    (events,) = decisions(sweep).values()
    e = events[0]
    assert e["state"] in ("met", "gave_up")
    assert e["chosen_cost"] <= 2.5
    done = finished(sweep)
    retrain = done[e["retrain"]]
    # The retrained network is the allocation the probe derived: same cost.
    assert retrain["result"]["normalised_bits"] == pytest.approx(e["chosen_cost"])
    assert retrain["result"]["allocation"] == e["allocation"]
    assert 10.0 < retrain["result"]["top1"] <= 100.0
    probes = [t for t in done.values() if t["summary"]["kind"] == "probe"]
    assert 1 <= len(probes) <= 8
    assert all(p["result"]["top1"] is None and p["result"]["timings"]["train_s"] == 0 for p in probes)
