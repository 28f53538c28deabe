"""Writes small ONNX models (a few hundred bytes of weights) as seeds for
fuzz_onnx_graph: the operators torchvision's classifiers use, at several
opsets, BatchNorm folded and kept. Usage: onnx_seeds.py OUT_DIR"""
import sys

import torch


class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(2)
        self.dw = torch.nn.Conv2d(2, 2, 3, stride=2, groups=2)
        self.fc = torch.nn.Linear(2, 3)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = torch.nn.functional.hardswish(self.dw(x)) * torch.sigmoid(x.mean((2, 3), keepdim=True))
        x = torch.nn.functional.max_pool2d(x, 2, ceil_mode=True) + torch.nn.functional.avg_pool2d(x, 2, ceil_mode=True)
        x = torch.nn.functional.adaptive_avg_pool2d(x, 1)
        return self.fc(x.view(x.size(0), -1)).clamp(0, 6)


model = Tiny().eval()
x = torch.randn(1, 1, 8, 8)
for opset in (11, 13, 14, 17):
    for folding in (True, False):
        torch.onnx.export(model, x, f"{sys.argv[1]}/tiny-{opset}-{int(folding)}.onnx", opset_version=opset,
                          do_constant_folding=folding)
