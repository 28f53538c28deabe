"""The report and its plots, drawn from a small fixture of real sweep output
(tests/analysis/fixture/sweep: journal, results.csv and each trial's
history/result/allocation from a 12-trial Fashion-MNIST sweep)."""
import json
import os
import pathlib
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FIXTURE = HERE / "fixture" / "sweep"
PLOTS = ["accuracy_vs_bitops", "bit_allocation", "lambda_vs_bits", "search_dynamics", "search_probabilities"]
EDMIPS = os.environ.get("EDMIPS_BINARY", str(ROOT / "build" / "src" / "edmips"))

sys.path.insert(0, str(ROOT / "analysis"))
import plots  # noqa: E402


@pytest.fixture
def sweep_dir(tmp_path):
    target = tmp_path / "sweep"
    shutil.copytree(FIXTURE, target)
    return target


def check_plot_files(directory):
    for name in PLOTS:
        png = directory / "plots" / f"{name}.png"
        svg = directory / "plots" / f"{name}.svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert png.stat().st_size > 10_000, f"{name}.png looks empty"
        root = ET.parse(svg).getroot()
        assert root.tag.endswith("svg")
        text = svg.read_text()
        assert "<path" in text


def test_pareto_writes_tables_and_report_from_the_fixture(sweep_dir):
    result = subprocess.run([EDMIPS, "pareto", str(sweep_dir)], capture_output=True, text=True, check=True)
    assert "Mixed precision against uniform baselines" in result.stdout
    report = json.loads((sweep_dir / "pareto.json").read_text())
    assert report["trials"] == 12
    assert {g["kind"] for g in report["groups"]} == {"search", "uniform"}
    assert all(c["seeds"] == 2 for c in report["configurations"])
    assert len(report["dominance"]) == 2
    markdown = (sweep_dir / "report.md").read_text()
    assert "## Mixed precision against uniform precision" in markdown
    for name in PLOTS:
        assert f"plots/{name}.png" in markdown


def test_every_plot_renders_as_png_and_svg(sweep_dir):
    subprocess.run([EDMIPS, "pareto", str(sweep_dir)], check=True, capture_output=True)
    assert plots.main(["plots.py", str(sweep_dir)]) == 0
    check_plot_files(sweep_dir)


def test_the_accuracy_plot_labels_its_axes_with_units(sweep_dir, monkeypatch):
    subprocess.run([EDMIPS, "pareto", str(sweep_dir)], check=True, capture_output=True)
    captured = {}
    original = plots.save

    def spy(fig, out, name, **kwargs):
        ax = fig.axes[0]
        captured[name] = (ax.get_xlabel(), ax.get_ylabel(), len(ax.lines) + len(ax.collections))
        original(fig, out, name, **kwargs)

    monkeypatch.setattr(plots, "save", spy)
    assert plots.main(["plots.py", str(sweep_dir)]) == 0
    xlabel, ylabel, artists = captured["accuracy_vs_bitops"]
    assert "BitOps" in xlabel and "log" in xlabel
    assert "%" in ylabel
    assert artists >= 4  # trials, error bars and a front per group
    assert "epoch" in captured["search_dynamics"][0].lower()
    assert "λ" in captured["lambda_vs_bits"][0]


def test_the_accuracy_plot_is_drawn_in_the_reports_cost_with_its_unit(sweep_dir, monkeypatch):
    subprocess.run([EDMIPS, "pareto", str(sweep_dir), "--cost", "weight_memory_bits"], check=True, capture_output=True)
    report = json.loads((sweep_dir / "pareto.json").read_text())
    captured = {}
    original = plots.save

    def spy(fig, out, name, **kwargs):
        if name == "accuracy_vs_bitops":
            ax = fig.axes[0]
            captured["xlabel"] = ax.get_xlabel()
            captured["x"] = sorted(x for line in ax.lines for x in line.get_xdata())
        original(fig, out, name, **kwargs)

    monkeypatch.setattr(plots, "save", spy)
    assert plots.main(["plots.py", str(sweep_dir)]) == 0
    assert "weight memory bits (bits)" in captured["xlabel"]
    # The fronts are drawn at the configurations' weight memory, not their BitOps.
    on_front = sorted(c["weight_memory_bits_mean"] for c in report["configurations"] if c["on_front"])
    assert set(on_front) <= set(captured["x"])
    assert not {c["bitops_mean"] for c in report["configurations"]} & set(captured["x"])


def test_the_probability_plot_draws_every_candidate_of_every_searched_layer(sweep_dir, monkeypatch):
    subprocess.run([EDMIPS, "pareto", str(sweep_dir)], check=True, capture_output=True)
    captured = {}
    original = plots.save

    def spy(fig, out, name, **kwargs):
        if name == "search_probabilities":
            captured["axes"] = [(ax.get_title(), len(ax.lines)) for ax in fig.axes if ax.lines]
            captured["title"] = fig._suptitle.get_text()
        original(fig, out, name, **kwargs)

    monkeypatch.setattr(plots, "save", spy)
    assert plots.main(["plots.py", str(sweep_dir)]) == 0
    # simple-cnn searches 3 layers; each shows 4 weight and 3 activation candidates.
    assert [lines for _, lines in captured["axes"]] == [7, 7, 7]
    assert all("->" in title and "W" in title for title, _ in captured["axes"])
    assert "λ=" in captured["title"]


def test_pareto_flags_configurations_whose_search_ended_undecided(sweep_dir):
    journal = sweep_dir / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    flagged = None
    for event in events:
        if event["event"] == "trial_finished" and event["summary"]["kind"] == "search" and flagged is None:
            decision = event["result"]["search"]["decision"]
            decision.update(decided=False, decided_layers=decision["searched_layers"] - 1)
            flagged = event["summary"]["complexity_penalty"]
    journal.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = subprocess.run([EDMIPS, "pareto", str(sweep_dir)], capture_output=True, text=True, check=True)
    assert "undecided!" in result.stdout
    assert "ended undecided" in result.stdout
    report = json.loads((sweep_dir / "pareto.json").read_text())
    undecided = [c for c in report["configurations"] if c["undecided_trials"] > 0]
    assert [c["complexity_penalty"] for c in undecided] == [flagged]
    assert "undecided!" in (sweep_dir / "report.md").read_text()


def test_the_summary_speaks_of_trained_networks_with_their_uncertainty_and_labels_interpolation(sweep_dir):
    result = subprocess.run([EDMIPS, "pareto", str(sweep_dir)], capture_output=True, text=True, check=True)
    report = json.loads((sweep_dir / "pareto.json").read_text())
    summary = result.stdout.split("Summary:")[1]
    trained, interpolated = summary.split("the front interpolated at each baseline's BitOps (no network was trained there)")
    assert report["dominance"]
    for d in report["dominance"]:
        assert d["comparison"] in trained  # the same words status prints
        if d["accuracy_gain"] is None:
            assert d["verdict"] is None and d["comparison"].startswith("no trained mixed network")
            continue
        gain, half = d["accuracy_gain"], d["gain_half_width"]
        expected = "tie" if abs(gain) <= half else ("better" if gain > 0 else "worse")
        assert d["verdict"] == expected
        assert f"{gain:+.2f} +- {half:.2f}" in d["comparison"]
        if d["front_gain"] is not None:
            assert f"{d['baseline_label']} {d['front_gain']:+.2f}" in interpolated.splitlines()[0]
    assert "hypervolume (BitOps): mixed" in summary


def test_plots_need_the_pareto_report_first(tmp_path, capsys):
    assert plots.main(["plots.py", str(tmp_path)]) == 2
    assert "edmips pareto" in capsys.readouterr().err


def test_one_command_makes_the_whole_report(sweep_dir):
    result = subprocess.run(["bash", str(ROOT / "scripts" / "report.sh"), str(sweep_dir)],
                            capture_output=True, text=True, env=dict(os.environ, EDMIPS_BINARY=EDMIPS))
    assert result.returncode == 0, result.stderr
    for name in ("pareto.csv", "pareto.json", "report.md"):
        assert (sweep_dir / name).exists()
    check_plot_files(sweep_dir)


def test_a_journal_event_without_its_summary_is_a_data_error_naming_the_journal(sweep_dir):
    journal = sweep_dir / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    damaged = next(e for e in events if e["event"] == "trial_finished")
    del damaged["summary"]
    journal.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = subprocess.run([EDMIPS, "pareto", str(sweep_dir)], capture_output=True, text=True)
    assert result.returncode == 3
    assert str(journal) in result.stderr and damaged["trial"] in result.stderr


def test_the_same_trial_in_two_directories_counts_once_and_disagreeing_results_are_refused(sweep_dir, tmp_path):
    twin = tmp_path / "twin"
    shutil.copytree(sweep_dir, twin)
    result = subprocess.run([EDMIPS, "pareto", str(sweep_dir), str(twin), "--out", str(tmp_path / "both")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "both" / "pareto.json").read_text())["trials"] == 12
    journal = twin / "journal.jsonl"
    events = [json.loads(line) for line in journal.read_text().splitlines()]
    changed = next(e for e in events if e["event"] == "trial_finished")
    changed["result"]["top1"] += 1.0
    journal.write_text("".join(json.dumps(e) + "\n" for e in events))
    result = subprocess.run([EDMIPS, "pareto", str(sweep_dir), str(twin), "--out", str(tmp_path / "both")],
                            capture_output=True, text=True)
    assert result.returncode == 3
    assert changed["trial"] in result.stderr and "different results" in result.stderr


def test_the_report_lists_the_export_command_of_every_front_configuration(sweep_dir):
    subprocess.run([EDMIPS, "pareto", str(sweep_dir)], capture_output=True, text=True, check=True)
    report = json.loads((sweep_dir / "pareto.json").read_text())
    front = [c for g in report["groups"] if g["kind"] == "search" for c in g["front"]]
    commands = [line for line in (sweep_dir / "report.md").read_text().splitlines()
                if line.startswith("edmips export ")]
    assert front and len(commands) == len(front)
    by_id = {c["configuration_id"]: c for c in report["configurations"]}
    for configuration in front:  # each names its first seed's trial directory
        trial = by_id[configuration]["trials"][0]
        assert any(f"{trial['source']}/trials/{trial['id']} --format qdq" in c for c in commands), commands


def svg_texts(path):
    """The text of every label in an SVG written with svg.fonttype 'none'."""
    root = ET.parse(path).getroot()
    return ["".join(e.itertext()).strip() for e in root.iter() if e.tag.endswith("text")]


def svg_panels(path):
    return sum(1 for e in ET.parse(path).getroot().iter()
               if e.tag.endswith("g") and (e.get("id") or "").startswith("axes_"))


def add_choice_tracking(sweep_dir):
    """Gives the fixture's searches what engines with the choice tracker record."""
    for trial in (sweep_dir / "trials").iterdir():
        result_path, history_path = trial / "result.json", trial / "history.json"
        result = json.loads(result_path.read_text())
        if result.get("mode") != "search":
            continue
        decision = result["search"]["decision"]
        decision.update(arch_steps=300, last_change_step=240, flips=12)
        result_path.write_text(json.dumps(result))
        history = json.loads(history_path.read_text())
        for epoch in history:
            for k, layer in enumerate(epoch.get("layers") or []):
                layer.update(stable_since_step=100 * (k + 1), flips=k + 2)
        history_path.write_text(json.dumps(history))


def test_each_plot_file_has_its_panels_labels_and_uncertainty(sweep_dir):
    add_choice_tracking(sweep_dir)
    subprocess.run([EDMIPS, "pareto", str(sweep_dir)], check=True, capture_output=True)
    assert plots.main(["plots.py", str(sweep_dir)]) == 0
    report = json.loads((sweep_dir / "pareto.json").read_text())
    out = sweep_dir / "plots"
    uniform = [c["label"] for c in report["configurations"] if c["kind"] == "uniform"]

    texts = svg_texts(out / "accuracy_vs_bitops.svg")
    assert svg_panels(out / "accuracy_vs_bitops.svg") == 1
    for name in uniform:  # every baseline named, on the front or off it
        assert name in texts
    assert any("95% intervals" in t for t in texts)
    assert not any("± std" in t for t in texts)

    texts = svg_texts(out / "bit_allocation.svg")
    assert svg_panels(out / "bit_allocation.svg") == 2
    assert "Weight bits" in texts and "Activation bits" in texts
    legend = [t for t in texts if t.startswith("λ=") and t.endswith(" bits")]
    bits = [float(t.split(", ")[1].split()[0]) for t in legend]
    assert len(legend) >= 2 and bits == sorted(bits)  # cheapest first
    assert not any(t.endswith(".5") for t in texts)  # whole-bit ticks only

    texts = svg_texts(out / "lambda_vs_bits.svg")
    for name in uniform:  # reference lines at the uniform widths, labelled
        assert name in texts
    assert any("unjoined" in t for t in texts)

    texts = svg_texts(out / "search_dynamics.svg")
    assert any(t.startswith("warm-up (1 epoch") for t in texts)
    assert any("last change" in t for t in texts)
    ticks = [t for t in texts if t.replace(".", "").isdigit()]
    epochs = [t for t in ticks if "." not in t]
    assert {"1", "2", "3", "4"} <= set(epochs)

    texts = svg_texts(out / "search_probabilities.svg")
    titles = [t for t in texts if " -> W" in t]
    assert len(titles) == 3 and all("changes" in t for t in titles)
    assert any("dotted: the last change" in t for t in texts)
    svg = (out / "search_probabilities.svg").read_text()
    assert "#f0e442" not in svg.lower()  # no yellow line
