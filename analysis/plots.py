#!/usr/bin/env python3
"""Draws the sweep report's plots from files edmips writes.

Usage: plots.py REPORT_DIR
Reads REPORT_DIR/pareto.json (from `edmips pareto`) and, for the search
dynamics, each trial's history.json under the sweep directories pareto.json
names. Writes REPORT_DIR/plots/{accuracy_vs_bitops,bit_allocation,
lambda_vs_bits,search_dynamics,search_probabilities}.{png,svg}. No Pareto
logic lives here: fronts, means, intervals and dominance come from
pareto.json.

Colours are the Okabe-Ito palette (safe for colour-blind readers); every
series also has its own marker and line style, so the plots read in greyscale.
"""
import json
import math
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

# Text stays text in the SVGs: searchable, and the tests read the labels.
matplotlib.rcParams["svg.fonttype"] = "none"

# Okabe-Ito without its yellow (#F0E442), which vanishes on white as a line.
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]
LINES = ["-", "--", "-.", ":"]
HATCHES = ["", "//", "..", "xx", "\\\\", "++", "oo", "--"]
PLOTS = ["accuracy_vs_bitops", "bit_allocation", "lambda_vs_bits", "search_dynamics", "search_probabilities"]


def style(i):
    return dict(color=COLOURS[i % len(COLOURS)], marker=MARKERS[i % len(MARKERS)],
                linestyle=LINES[i % len(LINES)])


def load(report_dir):
    report = json.loads((report_dir / "pareto.json").read_text())
    configurations = pd.DataFrame(report["configurations"])
    trials = pd.DataFrame([dict(t, configuration_id=c["configuration_id"], group=c["group"], kind=c["kind"],
                                complexity_penalty=c["complexity_penalty"])
                           for c in report["configurations"] for t in c["trials"]])
    return report, configurations, trials


def save(fig, out, name, rect=(0, 0, 1, 1)):
    fig.tight_layout(rect=rect)
    for ext in ("png", "svg"):
        fig.savefig(out / f"{name}.{ext}", dpi=150)
    plt.close(fig)


def interval(members):
    """Each configuration's 95% half-width (pareto.json's top1_interval; 0 where unknown)."""
    return [c["half_width"] if isinstance(c, dict) and c.get("basis") != "none" else 0.0
            for c in members.get("top1_interval", pd.Series([None] * len(members)))]


def lambda_label(value):
    return "λ=0" if value == 0 else f"λ={value:.3g}"


def configuration_label(row):
    """λ for a lambda-axis search, the budget for a budget's result, W/A for a baseline."""
    if row["kind"] == "budget":
        return f"budget {row['budget']:g}"
    if row["kind"] == "search":
        return lambda_label(row["complexity_penalty"])
    return f"W{row['weight_bits']}A{row['activation_bits']}"


def plot_accuracy_vs_bitops(report, configurations, trials, out):
    # The front's own cost (edmips pareto --cost), with its unit; reports of
    # engines before cost models carry only BitOps.
    x, x_trial = ("cost", "cost") if "cost_label" in report else ("bitops_mean", "bitops")
    title = report.get("cost_label", "BitOps")
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for i, group in enumerate(report["groups"]):
        st = style(i)
        members = configurations[configurations["group"] == group["name"]]
        group_trials = trials[trials["group"] == group["name"]]
        ax.scatter(group_trials[x_trial], group_trials["top1"], s=14, alpha=0.35, color=st["color"],
                   marker=st["marker"], label=None)
        ax.errorbar(members[x], members["top1_mean"], yerr=interval(members), fmt=st["marker"],
                    markerfacecolor="white", color=st["color"], capsize=3, alpha=0.9, markersize=6)
        front = members.set_index("configuration_id").loc[group["front"]]
        kind = "uniform front" if group["kind"] == "uniform" else "mixed front"
        ax.plot(front[x], front["top1_mean"], color=st["color"], marker=st["marker"],
                linestyle="--" if group["kind"] == "uniform" else "-", linewidth=1.8, markersize=7,
                label=f"{group['name']} ({kind})")
        # Every uniform baseline is named, on the front or not; mixed points on the front.
        labelled = members if group["kind"] == "uniform" else front.reset_index()
        for _, row in labelled.iterrows():
            ax.annotate(configuration_label(row), (row[x], row["top1_mean"]),
                        textcoords="offset points", xytext=(5, 5), fontsize=8)
    # Budget results (docs/budgets.md) stand out: a large star each, labelled.
    if "budget" in configurations and (configurations["kind"] == "budget").any():
        budgets = configurations[configurations["kind"] == "budget"]
        ax.scatter(budgets[x], budgets["top1_mean"], s=160, marker="*", facecolor="none",
                   edgecolor="black", linewidth=1.2, zorder=5, label="budget results")
        for _, row in budgets.iterrows():
            if not row["on_front"]:
                ax.annotate(configuration_label(row), (row[x], row["top1_mean"]),
                            textcoords="offset points", xytext=(5, -11), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel(f"{title} (log scale)")
    ax.set_ylabel("Top-1 test accuracy (%)")
    seeds = sorted({int(n) for n in configurations["seeds"]})
    basis = ("95% intervals over seeds" if seeds[0] >= 2
             else "95% intervals (one seed: the test set's binomial interval)")
    ax.set_title(f"Accuracy vs {title}: trials (faint), fronts,\nseed means with {basis}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    save(fig, out, "accuracy_vs_bitops")


def plot_bit_allocation(report, configurations, out):
    rows = []
    for group in report["groups"]:
        if group["kind"] != "search":
            continue
        members = configurations.set_index("configuration_id")
        for cid in group["front"]:
            c = members.loc[cid]
            layers = c["trials"][0]["allocation"]["layers"]
            rows.append((c["normalised_bits_mean"], group["name"], configuration_label(c), layers))
    rows.sort(key=lambda r: r[0])  # the legend runs from the cheapest network to the dearest
    fig, axes = plt.subplots(2, 1, figsize=(9.5, 6), sharex=True)
    if not rows:
        for ax in axes:
            ax.text(0.5, 0.5, "no mixed-precision trials on a front yet", ha="center", va="center",
                    transform=ax.transAxes)
    else:
        names = [layer.get("layer") or f"layer {k}" for k, layer in enumerate(rows[0][3])]
        width = 0.8 / len(rows)
        for i, (bits, group, text, layers) in enumerate(rows):
            xs = [k + (i - (len(rows) - 1) / 2) * width for k in range(len(layers))]
            for ax, key in zip(axes, ("weight_bits", "activation_bits")):
                ax.bar(xs, [layer[key] for layer in layers], width=width, color=COLOURS[i % len(COLOURS)],
                       hatch=HATCHES[i % len(HATCHES)], edgecolor="black", linewidth=0.5,
                       label=f"{text}, {bits:.2f} bits" + (f" ({group})" if len(report["groups"]) > 2 else ""))
        axes[1].set_xticks(range(len(names)))
        axes[1].set_xticklabels(names, rotation=45, ha="right", fontsize=8)
        # Outside the axes, so it covers no bar.
        axes[0].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="front, cheapest first",
                       title_fontsize=8)
    axes[0].set_ylabel("Weight bits")
    axes[1].set_ylabel("Activation bits")
    for ax in axes:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # bit widths are whole numbers
        ax.grid(True, axis="y", alpha=0.3)
    axes[1].set_xlabel("Quantized layer (network order)")
    axes[0].set_title("Per-layer bit allocation of the mixed front's configurations (first seed)", fontsize=10)
    save(fig, out, "bit_allocation")


def plot_lambda_vs_bits(report, configurations, trials, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    search_groups = [g for g in report["groups"] if g["kind"] == "search"]
    positive = trials.loc[(trials["kind"] == "search") & (trials["complexity_penalty"] > 0), "complexity_penalty"]
    for i, group in enumerate(search_groups):
        st = style(i)
        members = configurations[(configurations["group"] == group["name"]) &
                                 (configurations["kind"] == "search")].sort_values("complexity_penalty")
        group_trials = trials[(trials["group"] == group["name"]) & (trials["kind"] == "search")]
        ax.scatter(group_trials["complexity_penalty"], group_trials["normalised_bits"], color=st["color"],
                   marker=st["marker"], alpha=0.4, s=16)
        spread = members["trials"].map(
            lambda ts: pd.Series([t["normalised_bits"] for t in ts]).std(ddof=1) if len(ts) > 1 else 0)
        # The line joins positive lambdas only: lambda 0 sits across the
        # symlog axis' linear region, a point of its own.
        on = members["complexity_penalty"] > 0
        ax.errorbar(members.loc[on, "complexity_penalty"], members.loc[on, "normalised_bits_mean"],
                    yerr=spread[on], color=st["color"], marker=st["marker"], linestyle=st["linestyle"], capsize=3,
                    label=group["name"])
        if (~on).any():
            ax.errorbar(members.loc[~on, "complexity_penalty"], members.loc[~on, "normalised_bits_mean"],
                        yerr=spread[~on], color=st["color"], marker=st["marker"], linestyle="none", capsize=3,
                        markerfacecolor="white")
    # The uniform baselines' widths, for reading a lambda as "about W2A2".
    uniform = configurations[configurations["kind"] == "uniform"].drop_duplicates("normalised_bits_mean")
    for _, row in uniform.sort_values("normalised_bits_mean").iterrows():
        ax.axhline(row["normalised_bits_mean"], color="#777777", linestyle=":", linewidth=1)
        ax.annotate(configuration_label(row), (1.0, row["normalised_bits_mean"]), xycoords=("axes fraction", "data"),
                    xytext=(3, 0), textcoords="offset points", fontsize=8, va="center", color="#555555")
    if len(positive):
        ax.set_xscale("symlog", linthresh=float(positive.min()))
        ax.set_xlim(-0.5 * float(positive.min()), 2 * float(positive.max()))  # no negative lambdas to show
    ax.set_xlabel("Complexity penalty λ (symmetric log scale; 0 = no penalty, unjoined)")
    ax.set_ylabel("Normalised bits of the derived network\n(sqrt(BitOps / quantized MACs))")
    ax.set_title("How the penalty maps to a bit budget (seeds as dots, mean ± std;\n"
                 "dotted: uniform baselines)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if search_groups:
        ax.legend(fontsize=8)
    save(fig, out, "lambda_vs_bits")


def search_clock(trial, history):
    """The trial's search decision (result.json) and a function from an arch
    step to its (fractional) search epoch: the warm-up epochs, then the arch
    steps spread evenly over the rest. (None, None) for engines that did not
    count the steps."""
    path = pathlib.Path(trial["source"]) / "trials" / trial["id"] / "result.json"
    if not path.exists():
        return None, None
    decision = json.loads(path.read_text()).get("search", {}).get("decision", {})
    steps = decision.get("arch_steps")
    if not steps:
        return None, None
    search = [e for e in history if e["phase"] == "search"]
    warmup = sum(1 for e in search if not e.get("arch_lr"))
    return decision, lambda step: warmup + step / steps * (len(search) - warmup)


def settled_epoch(trial, history):
    """The search epoch (fractional) of the trial's last choice change; None
    for engines that did not track it."""
    decision, to_epoch = search_clock(trial, history)
    return to_epoch(decision["last_change_step"]) if decision else None


def plot_search_dynamics(report, configurations, out):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    drawn, warmup, epochs_seen = 0, 0, 1
    for _, c in configurations[configurations["kind"] == "search"].sort_values("complexity_penalty").iterrows():
        curves, settled = [], []
        for trial in c["trials"]:
            history = history_of(trial)
            if history is None:
                continue
            search = [e for e in history if e["phase"] == "search"]
            curves.append([e["expected_normalised_bits"] for e in search])
            warmup = max(warmup, sum(1 for e in search if not e.get("arch_lr")))
            epoch = settled_epoch(trial, history)
            if epoch is not None:
                settled.append(epoch)
        curves = [curve for curve in curves if curve]
        if not curves:
            continue
        frame = pd.DataFrame(curves)
        st = style(drawn)
        # Epoch 0: the start, every candidate equally likely.
        epochs = range(1, frame.shape[1] + 1)
        epochs_seen = max(epochs_seen, frame.shape[1])
        ax.plot(epochs, frame.mean(), color=st["color"], marker=st["marker"], linestyle=st["linestyle"],
                label=f"{lambda_label(c['complexity_penalty'])} ({c['group'].split('/')[0]})")
        if len(curves) > 1:
            ax.fill_between(epochs, frame.min(), frame.max(), color=st["color"], alpha=0.15)
        for epoch in settled:  # where the seed's last choice change happened
            ax.axvline(epoch, color=st["color"], linestyle=":", linewidth=1, alpha=0.8)
        drawn += 1
    if drawn == 0:
        ax.text(0.5, 0.5, "no search histories found", ha="center", va="center", transform=ax.transAxes)
    else:
        if warmup > 0:
            ax.axvspan(0.5, warmup + 0.5, color="#bbbbbb", alpha=0.3,
                       label=f"warm-up ({warmup} epoch{'s' if warmup > 1 else ''}: alphas fixed)")
        ax.legend(fontsize=8, loc="best")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0.5, epochs_seen + 0.5)
    ax.set_xlabel("Search epoch")
    ax.set_ylabel("Expected normalised bits\n(sqrt(E[BitOps] / quantized MACs))")
    ax.set_title("Search dynamics: expected bits per epoch (band: seed range;\n"
                 "dotted: each seed's last change of a layer's choice)", fontsize=10)
    ax.grid(True, alpha=0.3)
    save(fig, out, "search_dynamics")


def history_of(trial):
    path = pathlib.Path(trial["source"]) / "trials" / trial["id"] / "history.json"
    return json.loads(path.read_text()) if path.exists() else None


def probability_trial(configurations):
    """The search trial whose probabilities are drawn: from the mixed front's
    configuration nearest 2 normalised bits (the paper's budget), first seed."""
    search = configurations[configurations["kind"] == "search"]
    if search.empty:
        return None, None, None
    order = (search["normalised_bits_mean"] - 2.0).abs().sort_values().index
    order = sorted(order, key=lambda i: not search.loc[i, "on_front"])
    for i in order:
        c = search.loc[i]
        for trial in c["trials"]:
            history = history_of(trial)
            if history and any(e["phase"] == "search" and e.get("layers") for e in history):
                return c, trial, history
    return None, None, None


def plot_search_probabilities(configurations, out):
    """Each layer's candidate probabilities over the search, as the paper's
    figure of their evolution: weights solid, activations dashed."""
    c, trial, history = probability_trial(configurations)
    if history is None:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.text(0.5, 0.5, "no search histories with layer probabilities found", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_axis_off()
        save(fig, out, "search_probabilities")
        return
    epochs = [e for e in history if e["phase"] == "search"]
    layers = epochs[-1]["layers"]
    columns = min(5, len(layers))
    rows = math.ceil(len(layers) / columns)
    height = 2.1 * rows + 1.6
    fig, axes = plt.subplots(rows, columns, figsize=(max(8.0, 2.6 * columns), height), sharex=True,
                             sharey=True, squeeze=False)
    xs = list(range(0, len(epochs) + 1))
    _, to_epoch = search_clock(trial, history)
    for k, layer in enumerate(layers):
        ax = axes[k // columns][k % columns]
        # Where this layer's choices last changed (engines that track it).
        since = layer.get("stable_since_step", -1)
        if to_epoch and since is not None and since > 0:
            ax.axvline(to_epoch(since), color="#555555",
                       linestyle=":", linewidth=1.2)
        for kind, linestyle, offset in (("weight", "-", 0), ("activation", "--", 4)):
            series = [[p for p in e["layers"][k][f"{kind}_probabilities"]] for e in epochs]
            count = len(series[0])
            bits = layer.get(f"{kind}_candidates") or [f"[{j}]" for j in range(count)]
            for j in range(count):
                ys = [1.0 / count] + [row[j] for row in series]  # epoch 0: the equal initial probabilities
                ax.plot(xs, ys, linestyle=linestyle, color=COLOURS[(j + offset) % len(COLOURS)],
                        marker=MARKERS[(j + offset) % len(MARKERS)], markersize=3, linewidth=1.2,
                        label=f"{kind[0].upper()}{bits[j]}")
        chosen = f"W{layer['weight_bits']}A{layer['activation_bits']}"
        flips = f", {layer['flips']} changes" if "flips" in layer else ""
        ax.set_title(f"{layer['name']} -> {chosen}{flips}" + ("" if layer.get("decided", True) else " (undecided)"),
                     fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, 1)
        ax.grid(True, alpha=0.3)
    for k in range(len(layers), rows * columns):
        axes[k // columns][k % columns].set_axis_off()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 1 - 0.5 / height), ncol=len(labels), fontsize=8)
    fig.supxlabel("Search epoch (0 = start)", fontsize=9)
    fig.supylabel("Candidate probability", fontsize=9)
    fig.suptitle(f"Candidate probabilities during the search: {lambda_label(c['complexity_penalty'])}, "
                 f"trial {trial['id']} ({c['normalised_bits_mean']:.2f} normalised bits)\n"
                 "weights solid, activations dashed; title: layer -> derived bits, choice changes; "
                 "dotted: the last change", fontsize=9)
    save(fig, out, "search_probabilities", rect=(0, 0, 1, 1 - 0.85 / height))


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    report_dir = pathlib.Path(argv[1])
    if not (report_dir / "pareto.json").exists():
        print(f"plots.py: {report_dir}/pareto.json not found; run `edmips pareto` first", file=sys.stderr)
        return 2
    out = report_dir / "plots"
    out.mkdir(exist_ok=True)
    report, configurations, trials = load(report_dir)
    plot_accuracy_vs_bitops(report, configurations, trials, out)
    plot_bit_allocation(report, configurations, out)
    plot_lambda_vs_bits(report, configurations, trials, out)
    plot_search_dynamics(report, configurations, out)
    plot_search_probabilities(configurations, out)
    print(f"wrote {out}/" + "{" + ",".join(PLOTS) + "}.{png,svg}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
