"""The sweep runner on real MPI ranks (mpirun -np 3 --oversubscribe), with
the fake trial executor so scheduling, retries, resume, signals and crash
recovery are checked in seconds. test_sweep_real.py runs real trials."""
import json
import signal
import subprocess
import time

import pytest

from conftest import edmips_binary, fake_sweep_definition, requires_mpirun

pytestmark = requires_mpirun


def test_every_trial_runs_exactly_once_across_three_ranks(sweep_factory):
    sweep = sweep_factory(fake_sweep_definition())
    assert sweep.run(3, "--fake-trials", "--fake-duration", "0.2") == 0
    ids = sweep.plan_ids()
    assert len(ids) == 3 * 2 + 2 * 2
    assert sweep.finished_counts() == {i: 1 for i in ids}
    rows = sweep.csv_rows()
    assert sorted(r["trial_id"] for r in rows) == sorted(ids)
    # Rank 0 coordinates and runs trials too: every rank did work.
    assert {r["rank"] for r in rows} == {"0", "1", "2"}
    status = json.loads((sweep.out / "status.json").read_text())
    assert status["done"] == status["total"] == len(ids)


def test_longest_expected_trials_are_handed_out_first(sweep_factory):
    definition = fake_sweep_definition(penalties=(0.0,), seeds=(1,), baselines=((2, 2),))
    definition["axes"]["fields"] = {"/train/epochs": [1, 9]}
    sweep = sweep_factory(definition)
    assert sweep.run(1, "--fake-trials", "--fake-duration", "0.05") == 0
    started = [e for e in sweep.journal() if e["event"] == "trial_started"]
    assert len(started) == 4
    costs = [e["expected_cost"] for e in started]
    assert costs == sorted(costs, reverse=True)
    assert len(set(costs)) == 4
    # The search with 9 retraining epochs first, the 1-epoch baseline last.
    assert started[0]["summary"]["kind"] == "search"
    assert started[-1]["summary"]["kind"] == "uniform"


def test_a_failing_trial_is_retried_and_the_sweep_goes_on(sweep_factory):
    sweep = sweep_factory(fake_sweep_definition())
    assert sweep.run(3, "--fake-trials", "--fake-duration", "0.1", "--fake-fail-once-seed", "2") == 0
    events = sweep.journal()
    failed = [e for e in events if e["event"] == "trial_failed"]
    assert len(failed) == 3 + 2  # every seed-2 trial failed once
    assert all(e["will_retry"] for e in failed)
    finished = {e["trial"]: e for e in events if e["event"] == "trial_finished"}
    for e in failed:
        assert finished[e["trial"]]["attempt"] == 2


def test_a_trial_that_keeps_failing_is_recorded_and_the_exit_code_says_so(sweep_factory):
    sweep = sweep_factory(fake_sweep_definition(max_retries=2))
    code = sweep.run(3, "--fake-trials", "--fake-duration", "0.1", "--fake-fail-always-seed", "1")
    assert code == 1
    events = sweep.journal()
    failed = [e for e in events if e["event"] == "trial_failed"]
    assert len(failed) == 5 * 3  # 5 seed-1 trials, 1 try + 2 retries each
    assert "fake failure injected" in failed[0]["error"]
    assert len(sweep.csv_rows()) == 5  # the seed-2 trials all finished
    status = json.loads((sweep.out / "status.json").read_text())
    assert len(status["failed"]) == 5


def test_rerunning_a_finished_sweep_runs_nothing_and_new_values_run_alone(sweep_factory):
    sweep = sweep_factory(fake_sweep_definition())
    assert sweep.run(3, "--fake-trials", "--fake-duration", "0.05") == 0
    before = sweep.finished_counts()
    assert sweep.run(3, "--fake-trials", "--fake-duration", "0.05") == 0
    assert sweep.finished_counts() == before
    sweep.write(fake_sweep_definition(penalties=(0.0, 0.01, 0.1, 1.0)))
    assert sweep.run(3, "--fake-trials", "--fake-duration", "0.05") == 0
    after = sweep.finished_counts()
    assert set(after) - set(before) == sweep.plan_ids() - set(before)
    assert len(set(after) - set(before)) == 2  # lambda 1.0 for both seeds
    assert all(count == 1 for count in after.values())
    assert len(sweep.csv_rows()) == len(after)


def test_a_changed_sweep_file_keeps_old_results_marked_and_the_old_definition(sweep_factory):
    sweep = sweep_factory(fake_sweep_definition())
    assert sweep.run(2, "--fake-trials", "--fake-duration", "0.02") == 0
    before = sweep.finished_counts()
    old_text = (sweep.out / "sweep.json").read_text()
    sweep.write(fake_sweep_definition(penalties=(0.0, 0.01)))  # lambda 0.1 removed
    assert sweep.run(2, "--fake-trials", "--fake-duration", "0.02") == 0
    assert sweep.finished_counts() == before  # nothing new ran, nothing ran twice
    rows = sweep.csv_rows()
    assert {r["trial_id"] for r in rows} == set(before)  # no row dropped
    listed = sweep.plan_ids()
    for r in rows:
        assert r["in_current_sweep"] == ("1" if r["trial_id"] in listed else "0")
    assert sum(r["in_current_sweep"] == "0" for r in rows) == 2  # lambda 0.1, two seeds
    kept = sorted(sweep.out.glob("sweep.2*.json"))
    assert len(kept) == 1 and kept[0].read_text() == old_text
    assert json.loads((sweep.out / "sweep.json").read_text())["axes"] == fake_sweep_definition(penalties=(0.0, 0.01))["axes"]
    assert "no longer in the sweep file" in (sweep.dir / "run.log").read_text()
    # The report counts what results.csv holds.
    report = subprocess.run([edmips_binary(), "pareto", str(sweep.out), "--out", str(sweep.dir / "report")],
                            capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert f"{len(rows)} finished trials" in report.stdout


def test_sigusr2_checkpoints_running_trials_and_a_rerun_resumes_them(sweep_factory):
    sweep = sweep_factory(fake_sweep_definition())
    proc = sweep.start(3, "--fake-trials", "--fake-duration", "3")
    deadline = time.time() + 60
    while time.time() < deadline:
        if (sweep.out / "journal.jsonl").exists() and any(
                e["event"] == "trial_started" for e in sweep.journal()):
            break
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGUSR2)  # mpirun forwards SIGUSR2 to every rank
    assert proc.wait(timeout=60) == 4
    events = sweep.journal()
    assert events[-1]["event"] == "sweep_interrupted"
    paused = {e["trial"] for e in events if e["event"] == "trial_interrupted"}
    assert paused
    assert sweep.run(3, "--fake-trials", "--fake-duration", "0.3") == 0
    assert set(sweep.finished_counts()) == sweep.plan_ids()
    for trial in paused:
        result = json.loads((sweep.out / "trials" / trial / "result.json").read_text())
        assert result["resumed_from_step"] > 0, "an interrupted trial restarted from zero"


def test_kill_9_at_random_moments_never_loses_or_repeats_a_trial(sweep_factory):
    sweep = sweep_factory(fake_sweep_definition(penalties=(0.0, 0.001, 0.01, 0.1, 1.0), seeds=(1, 2, 3)))
    kills = sweep.kill_at_random_moments(3, ["--fake-trials", "--fake-duration", "0.4"], attempts=6, seed=1234,
                                         delay=(0.8, 2.5))
    assert kills >= 3
    assert sweep.run(3, "--fake-trials", "--fake-duration", "0.4") == 0
    ids = sweep.plan_ids()
    assert sweep.finished_counts() == {i: 1 for i in ids}  # the journal parses; each trial finished once
    rows = sweep.csv_rows()
    assert len(rows) == len(ids)
    assert len({r["trial_id"] for r in rows}) == len(ids)


def test_an_invalid_sweep_file_exits_2_and_writes_nothing(sweep_factory, tmp_path):
    definition = fake_sweep_definition()
    definition["axes"]["complexity_penalty"][1] = -1
    sweep = sweep_factory(definition)
    assert sweep.run(3, "--fake-trials") == 2
    assert not sweep.out.exists()
    log = (tmp_path / "run.log").read_text()
    assert "/axes/complexity_penalty/1" in log
    assert log.count("error:") == 1  # reported once, by rank 0


@pytest.mark.parametrize("blocker", ["out", "out/trials"])
def test_an_output_directory_that_cannot_be_made_stops_every_rank_with_an_io_error(sweep_factory, blocker):
    sweep = sweep_factory(fake_sweep_definition())
    if blocker == "out/trials":
        sweep.out.mkdir()
    (sweep.dir / blocker).write_text("a file where a directory must go\n")
    assert sweep.run(2, "--fake-trials", timeout=60) == 3  # no hang: both ranks exit
    log = (sweep.dir / "run.log").read_text()
    assert "cannot prepare the output directory" in log and str(sweep.out) in log


def test_a_second_sweep_on_the_same_directory_is_refused_naming_the_first(sweep_factory):
    import os
    import subprocess
    from conftest import mpi_env, mpirun_command
    sweep = sweep_factory(fake_sweep_definition())
    first = sweep.start(2, "--fake-trials", "--fake-duration", "1.5")
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not (sweep.out / "journal.jsonl").exists():
            time.sleep(0.1)
        second = subprocess.run(mpirun_command(2, "sweep", str(sweep.file), "--out", str(sweep.out), "--fake-trials"),
                                capture_output=True, text=True, env=mpi_env(), timeout=60)
        assert second.returncode == 2
        message = second.stdout + second.stderr
        assert "in use by another sweep" in message and os.uname().nodename in message and "PID" in message
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            sweep.kill_everything(first)
    assert sweep.finished_counts() == {i: 1 for i in sweep.plan_ids()}


def test_the_lock_of_a_killed_sweep_does_not_block_its_resume(sweep_factory):
    sweep = sweep_factory(fake_sweep_definition())
    proc = sweep.start(2, "--fake-trials", "--fake-duration", "2")
    deadline = time.time() + 60
    while time.time() < deadline and not (sweep.out / ".edmips.lock").exists():
        time.sleep(0.1)
    time.sleep(0.5)
    sweep.kill_everything(proc)
    assert (sweep.out / ".edmips.lock").exists()  # left behind, but no longer held
    assert sweep.run(2, "--fake-trials", "--fake-duration", "0.2", timeout=120) == 0
    assert sweep.finished_counts() == {i: 1 for i in sweep.plan_ids()}
