#!/usr/bin/env python3
"""Fills an `edmips cost-table` template with a roofline model of a
bit-serial accelerator, for the cost-model demonstration (docs/costs.md).

This is a model, not a measurement: each layer's time at (w, a) bits is

    time = launch + max(MACs x w x a / PEAK_BITOPS,
                        (weights x w + input elements x a) / BANDWIDTH)

in microseconds. Compute is what BitOps counts; the memory term charges the
bits a layer moves (weights and its input, linear in w and a separately) and
the launch cost is paid whatever the widths. So the table is not
proportional to BitOps: a memory-bound layer (few MACs per weight, late
small-resolution layers) gains from fewer weight bits more than from fewer
activation bits, and cutting the bits of a layer already at its launch floor
buys nothing.

usage: roofline_table.py TEMPLATE OUT [--peak-bitops 2e12] [--bandwidth-bytes 1e9] [--launch-us 5]
"""
import argparse
import json


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("template")
    p.add_argument("out")
    p.add_argument("--peak-bitops", type=float, default=2e12, help="binary ops per second (bit-serial peak)")
    p.add_argument("--bandwidth-bytes", type=float, default=1e9, help="memory bandwidth, bytes per second")
    p.add_argument("--launch-us", type=float, default=5.0, help="fixed cost per layer, microseconds")
    a = p.parse_args()
    table = json.load(open(a.template))
    described = table["template"]["layers"]
    for name, pairs in table["layers"].items():
        layer = described[name]
        for pair in pairs:
            w, act = (int(x) for x in pair[1:].split("a"))
            compute = layer["macs"] * w * act / a.peak_bitops
            memory = (layer["weight_count"] * w + layer["input_elements"] * act) / 8 / a.bandwidth_bytes
            pairs[pair] = round(a.launch_us + 1e6 * max(compute, memory), 6)
    table["unit"] = "microseconds"
    table["description"] = (
        f"roofline model of a bit-serial accelerator (scripts/roofline_table.py), not a measurement: "
        f"{a.launch_us:g} us launch + max(MACs*w*a / {a.peak_bitops:g} bit-ops/s, "
        f"(weights*w + inputs*a) bits / {a.bandwidth_bytes:g} B/s)")
    del table["template"]["note"]
    with open(a.out, "w") as f:
        json.dump(table, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
