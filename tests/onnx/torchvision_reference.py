"""Exports a torchvision classifier with random weights to ONNX and writes the
float reference the importer is held to: a random input batch and PyTorch's
logits for it, both raw little-endian float32.

    torchvision_reference.py MODEL OPSET {folded,bn,training} OUT_DIR

folded: an eval-mode export with constant folding (BatchNorm folded into the
convolutions); bn: do_constant_folding=False (BatchNormalization nodes kept);
training: training=TrainingMode.TRAINING (BatchNormalization and Dropout nodes
in their training form). The reference logits are always the eval-mode ones.
Writes OUT_DIR/model.onnx, input.f32, logits.f32 and shape.txt ("N C H W K").
"""
import sys

import torch
import torchvision

SIZES = {"inception_v3": 299}


def build(name):
    kwargs = {"num_classes": 10}
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=True)
    model = getattr(torchvision.models, name)(**kwargs)
    # Non-trivial BatchNorm parameters and statistics, so folding them (or
    # not) is really exercised.
    generator = torch.Generator().manual_seed(7)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.weight.data = 0.5 + torch.rand(n, generator=generator)
            module.bias.data = 0.2 * torch.randn(n, generator=generator)
            module.running_mean = 0.2 * torch.randn(n, generator=generator)
            module.running_var = 0.5 + torch.rand(n, generator=generator)
    return model.eval()


def main():
    name, opset, mode, out = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    torch.manual_seed(0)
    model = build(name)
    size = SIZES.get(name, 224)
    x = torch.randn(2, 3, size, size)
    kwargs = dict(opset_version=opset, input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    if mode == "bn":
        kwargs["do_constant_folding"] = False
    elif mode == "training":
        kwargs["training"] = torch.onnx.TrainingMode.TRAINING
        kwargs["do_constant_folding"] = False
    torch.onnx.export(model, x, f"{out}/model.onnx", **kwargs)
    # After the export: a training-mode export runs the model in training
    # mode, which moves the BatchNorm statistics it then writes.
    model.eval()
    with torch.no_grad():
        logits = model(x)
    x.numpy().astype("<f4").tofile(f"{out}/input.f32")
    logits.numpy().astype("<f4").tofile(f"{out}/logits.f32")
    with open(f"{out}/shape.txt", "w") as f:
        f.write(f"{x.shape[0]} {x.shape[1]} {x.shape[2]} {x.shape[3]} {logits.shape[1]}\n")


if __name__ == "__main__":
    main()
