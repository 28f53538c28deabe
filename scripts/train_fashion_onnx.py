"""Trains a small float CNN on Fashion-MNIST in PyTorch and exports it to
ONNX with its weights: the user's own trained network in the ONNX workflow
(docs/onnx.md). Inputs are normalised as `edmips` normalises them (x / 255,
then the full training set's mean and standard deviation), so the imported
network sees what it was trained on.

    train_fashion_onnx.py OUT.onnx [--epochs N] [--train-subset N] [--seed S] [--opset K]

Prints the float network's test top-1 (the full 10,000-image test set) as
JSON on the last line: {"float_top1": ..., "seconds": ...}.
"""
import argparse
import gzip
import json
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class FashionNet(nn.Module):
    """conv-BN-ReLU stages and a residual block whose sum has no ReLU, so
    quantized layers read both non-negative and signed inputs; BatchNorm
    kept in the export for retraining."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(32, 64, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(64))
        self.res = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
                                 nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64))
        self.conv3 = nn.Sequential(nn.Conv2d(64, 128, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(128),
                                   nn.ReLU())
        self.fc = nn.Linear(128, 10)

    def forward(self, x):
        x = self.conv2(self.stem(x))
        x = x + self.res(F.relu(x))
        x = self.conv3(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--train-subset", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--opset", type=int, default=13)
    a = p.parse_args()
    start = time.time()
    torch.manual_seed(a.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    train_x = torch.from_numpy(idx(f"{DATA}/train-images-idx3-ubyte.gz").copy()).float().div_(255).unsqueeze(1)
    train_y = torch.from_numpy(idx(f"{DATA}/train-labels-idx1-ubyte.gz").astype(np.int64))
    test_x = torch.from_numpy(idx(f"{DATA}/t10k-images-idx3-ubyte.gz").copy()).float().div_(255).unsqueeze(1)
    test_y = torch.from_numpy(idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    # The full training set's statistics, as edmips normalises without a train_subset.
    mean, std = train_x.mean(), train_x.std()
    if a.train_subset:
        keep = torch.randperm(len(train_x), generator=torch.Generator().manual_seed(a.seed))[:a.train_subset]
        train_x, train_y = train_x[keep], train_y[keep]
    train_x, test_x = (train_x - mean) / std, (test_x - mean) / std
    model = FashionNet()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    steps = a.epochs * ((len(train_x) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 0.1, total_steps=steps)
    for _ in range(a.epochs):
        model.train()
        for i in torch.randperm(len(train_x)).split(128):
            opt.zero_grad()
            F.cross_entropy(model(train_x[i]), train_y[i]).backward()
            opt.step()
            sched.step()
    model.eval()
    with torch.no_grad():
        correct = sum((model(test_x[i:i + 1000]).argmax(1) == test_y[i:i + 1000]).sum().item()
                      for i in range(0, len(test_x), 1000))
    torch.onnx.export(model, torch.zeros(1, 1, 28, 28), a.out, opset_version=a.opset, do_constant_folding=False,
                      input_names=["image"], output_names=["logits"],
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    print(json.dumps({"float_top1": 100.0 * correct / len(test_x), "seconds": round(time.time() - start, 1)}))


if __name__ == "__main__":
    main()
