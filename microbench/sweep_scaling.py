#!/usr/bin/env python3
"""Sweep scaling: parallel efficiency and coordination overhead with
fixed-duration, CPU-bound fake trials (1 and 2 ranks on 2 cores), and
coordinator + journal throughput with no-op trials on 4 oversubscribed ranks.

Usage: scripts/python.sh microbench/sweep_scaling.py [--trials 12] [--duration 2.0] [--noop-trials 400]
Prints a Markdown table; every figure is measured in this run.
"""
import argparse
import datetime
import json
import os
import pathlib
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
EDMIPS = os.environ.get("EDMIPS_BINARY", str(ROOT / "build" / "src" / "edmips"))


def sweep_file(directory, trials):
    definition = {
        "name": "scaling",
        "base": {"dataset": {"train_subset": 100}, "search": {"epochs": 1}, "train": {"epochs": 1}},
        "axes": {"complexity_penalty": [i * 1e-4 for i in range(trials)]},
    }
    path = directory / "sweep.json"
    path.write_text(json.dumps(definition))
    return path


def run(ranks, trials, duration, busy):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        sweep = sweep_file(tmp, trials)
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        command = ["mpirun", "-np", str(ranks), "--oversubscribe", EDMIPS, "sweep", str(sweep), "--out",
                   str(tmp / "out"), "--quiet", "--fake-trials", "--fake-duration", str(duration)]
        if busy:
            command.append("--fake-busy")
        start = time.monotonic()
        subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        wall = time.monotonic() - start
        events = [json.loads(line) for line in (tmp / "out" / "journal.jsonl").read_text().splitlines()]
        finished = sum(e["event"] == "trial_finished" for e in events)
        assert finished == trials, f"{finished} of {trials} trials finished"
        # The sweep's own span, from its first to its last journal event:
        # process start-up and MPI initialisation are not part of it.
        times = [datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in events]
        span = (times[-1] - times[0]).total_seconds()
        return wall, span


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--duration", type=float, default=2.0)
    parser.add_argument("--noop-trials", type=int, default=400)
    args = parser.parse_args()

    work = args.trials * args.duration
    one_wall, one_span = run(1, args.trials, args.duration, True)
    two_wall, two_span = run(2, args.trials, args.duration, True)
    noop_wall, noop_span = run(4, args.noop_trials, 0.0, False)
    print(f"{os.cpu_count()} cores; {args.trials} fake trials of {args.duration:g} s that each keep one core busy; "
          "span = first to last journal event (process start-up and MPI init excluded)\n")
    print("| measure | value |\n|---|---:|")
    print(f"| 1 rank: wall / span | {one_wall:.2f} s / {one_span:.2f} s (work {work:.1f} s) |")
    print(f"| 2 ranks: wall / span | {two_wall:.2f} s / {two_span:.2f} s (ideal span {work / 2:.2f} s) |")
    print(f"| parallel efficiency at 2 ranks: work / (2 x span) | {100 * work / (2 * two_span):.1f}% |")
    print(f"| speed-up 1 -> 2 ranks (spans) | {one_span / two_span:.2f}x |")
    print(f"| coordination overhead per trial at 2 ranks: (2 x span - work) / trials | "
          f"{(2 * two_span - work) / args.trials * 1000:.1f} ms |")
    print(f"| {args.noop_trials} no-op trials on 4 oversubscribed ranks: wall / span | {noop_wall:.2f} s / "
          f"{noop_span:.2f} s = {args.noop_trials / noop_span:.0f} trials/s through coordinator and journal |")


if __name__ == "__main__":
    main()
