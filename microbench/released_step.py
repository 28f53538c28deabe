"""Step time of the released EdMIPS search models against a float step, on
this machine, for `scripts/bench-released.sh` (which prints ours beside).

    released_step.py RELEASED_CHECKOUT MODEL BATCH SIZE [--steps N] [--threads T]

RELEASED_CHECKOUT is a clone of github.com/zhaoweicai/EdMIPS; its models/
folder is copied into a temporary folder and imported from there (never into
this repository). MODEL: googlenet (mixgoogle_w1234a234 against
torchvision's googlenet) or inception_v3 (mixinception_w1234a234 against
torchvision's inception_v3), both without auxiliary heads, as the released
search builds them. A step is what search.py does per batch: forward, cross
entropy plus the complexity penalty, backward, an SGD step of the weights
and one of the architecture parameters. Prints one JSON line: median ms per
step of each form and their ratio.

Uses Debian's python3-torch and python3-torchvision (and python3-scipy,
which the released Inception-V3 initialisation imports)."""
import argparse
import json
import pathlib
import shutil
import statistics
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torchvision


def step_time(model, params, arch_params, batch, size, steps, penalty):
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
    arch_optimizer = torch.optim.SGD(arch_params, lr=0.01, momentum=0.9, weight_decay=1e-4) if arch_params else None
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 1000, (batch,))
    model.train()
    times = []
    for i in range(steps + 1):  # the first is a warm-up
        start = time.perf_counter()
        loss = criterion(model(x), y)
        if penalty is not None:
            loss = loss + 1e-3 * penalty()
        optimizer.zero_grad()
        if arch_optimizer:
            arch_optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if arch_optimizer:
            arch_optimizer.step()
        if i:
            times.append(1000 * (time.perf_counter() - start))
    return statistics.median(times)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("released")
    p.add_argument("model", choices=["googlenet", "inception_v3"])
    p.add_argument("batch", type=int)
    p.add_argument("size", type=int)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    source = pathlib.Path(a.released) / "models"
    if not (source / "mixgoogle.py").is_file():
        sys.exit(f"released_step.py: {source} is not the released EdMIPS models/ folder (no mixgoogle.py)")
    with tempfile.TemporaryDirectory() as folder:
        shutil.copytree(source, pathlib.Path(folder) / "models")
        sys.path.insert(0, folder)
        import models  # the released package, from the temporary copy

        torch.manual_seed(1)
        if a.model == "googlenet":
            search = models.mixgoogle_w1234a234(init_weights=False)
            flt = torchvision.models.googlenet(aux_logits=False, init_weights=False)
        else:
            search = models.mixinception_w1234a234()
            flt = torchvision.models.inception_v3(aux_logits=False, init_weights=False)
        arch = [p for n, p in search.named_parameters() if "alpha" in n]
        weights = [p for n, p in search.named_parameters() if "alpha" not in n]
        # One forward fills the layers' size_product, as search.py's first batch does.
        with torch.no_grad():
            search.eval()
            search(torch.zeros(1, 3, a.size, a.size))
        search_ms = step_time(search, weights, arch, a.batch, a.size, a.steps, search.complexity_loss)
        float_ms = step_time(flt, list(flt.parameters()), [], a.batch, a.size, a.steps, None)
    print(json.dumps({"model": a.model, "batch": a.batch, "size": a.size, "threads": a.threads,
                      "released_search_ms": round(search_ms, 1), "torchvision_float_ms": round(float_ms, 1),
                      "ratio": round(search_ms / float_ms, 2)}))


if __name__ == "__main__":
    main()
