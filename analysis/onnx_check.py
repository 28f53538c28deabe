"""Runs an exported ONNX file in a real client on Fashion-MNIST's test set,
normalised as edmips normalises it without a train_subset (x / 255, the full
training set's mean and standard deviation).

    onnx_check.py ortop1 MODEL.onnx [--limit N]      ONNX Runtime top-1 (%), as JSON

normalised with the mean and std recorded in MODEL.onnx.json (edmips
export's sidecar), or without one as edmips does without a train_subset
    onnx_check.py compare MODEL.onnx [--qonnx]
        the client's logits on the test images whose logits edmips export
        wrote into MODEL.onnx.json ("reference"), against them: the largest
        difference relative to the largest reference logit, as JSON (an
        image folder's decoded images come from the file the sidecar names,
        "inputs_file")
    onnx_check.py logits MODEL.onnx OUT.f32 [--qonnx] [--limit N]
        logits of the first N test images, from ONNX Runtime or from the
        qonnx package's executor (QONNX Quant nodes), raw float32

Needs onnxruntime (and qonnx) from the project's virtual environment
(scripts/install-deps.sh makes it at /opt/edmips-venv)."""
import argparse
import gzip
import json
import os

import numpy as np

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def test_set(limit, model):
    try:
        with open(model + ".json") as f:
            recorded = json.load(f)["input_normalisation"]
        mean, std = recorded["mean"][0], recorded["std"][0]
    except FileNotFoundError:
        train = idx(f"{DATA}/train-images-idx3-ubyte.gz").astype(np.float32) / 255
        mean, std = train.mean(dtype=np.float64), train.std(ddof=1, dtype=np.float64)
    x = (idx(f"{DATA}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255 - mean) / std
    y = idx(f"{DATA}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    if limit:
        x, y = x[:limit], y[:limit]
    return x[:, None].astype(np.float32), y


def ort_logits(model, x):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # run the file as written
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: x[i:i + 500]})[0] for i in range(0, len(x), 500)])


def qonnx_logits(model, x):
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes
    wrapper = ModelWrapper(model)
    name, output = wrapper.graph.input[0].name, wrapper.graph.output[0].name
    wrapper.set_tensor_shape(name, list(x.shape))  # the executor wants every shape fixed
    wrapper = wrapper.transform(InferShapes())
    return execute_onnx(wrapper, {name: x})[output]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=["ortop1", "logits", "compare"])
    p.add_argument("model")
    p.add_argument("out", nargs="?")
    p.add_argument("--qonnx", action="store_true")
    p.add_argument("--limit", type=int, default=0)
    a = p.parse_args()
    if a.what == "compare":
        with open(a.model + ".json") as f:
            recorded = json.load(f)["reference"]
        reference = np.array(recorded["logits"])
        if "inputs_file" in recorded:  # an image folder's images, as edmips decoded them
            inputs = recorded["inputs_file"]
            path = os.path.join(os.path.dirname(os.path.abspath(a.model)), inputs["file"])
            x = np.fromfile(path, dtype=np.float32).reshape(inputs["shape"])
        else:
            x, _ = test_set(len(reference), a.model)
        logits = qonnx_logits(a.model, x) if a.qonnx else ort_logits(a.model, x)
        error = float(np.abs(logits - reference).max() / np.abs(reference).max())
        print(json.dumps({"relative_error": error, "images": len(reference)}))
        return
    x, y = test_set(a.limit, a.model)
    if a.what == "ortop1":
        logits = ort_logits(a.model, x)
        print(json.dumps({"top1": 100.0 * float((logits.argmax(1) == y).mean()), "images": len(y)}))
    else:
        logits = qonnx_logits(a.model, x) if a.qonnx else ort_logits(a.model, x)
        logits.astype("<f4").tofile(a.out)


if __name__ == "__main__":
    main()
