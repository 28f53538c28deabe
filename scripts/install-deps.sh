#!/usr/bin/env bash
# Installs every system package EdMIPS-Sweep needs on Debian 12, as root.
# Idempotent: re-running only installs what is missing.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps.sh: must run as root (it calls apt-get)" >&2
  exit 1
fi

packages=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git
  # engine
  libtorch-dev
  # distributed sweeps
  libopenmpi-dev openmpi-bin libboost-mpi-dev libboost-serialization-dev
  # CLI parsing, gzip decoding of IDX files
  libboost-program-options-dev zlib1g-dev
  # JSON configs and journal
  nlohmann-json3-dev
  # ONNX models in: the protobuf messages and ONNX's checker (ONNX 1.12 on
  # protobuf 3.21, the protobuf Debian's LibTorch uses)
  libonnx-dev libprotobuf-dev
  # tests and benchmarks
  catch2 libbenchmark-dev
  # real data; image folders: JPEG through libjpeg-turbo (its libjpeg API
  # decodes only a crop's rows and columns, DCT-scaled; TurboJPEG reads
  # headers and writes the synthetic folders), PNG through libpng
  dataset-fashion-mnist libturbojpeg0-dev libjpeg62-turbo-dev libpng-dev
  # analysis and plots (Debian's interpreter, see scripts/python.sh); pip
  # fetches the CUDA LibTorch for scripts/build-cuda.sh
  python3 python3-matplotlib python3-pandas python3-pytest python3-jsonschema python3-pip python3-venv
  # the data benchmark's anchor (torchvision's ImageFolder + DataLoader on the
  # same files; not used by the product) and the image-folder generator (Pillow)
  python3-torchvision python3-pil
  # GitHub's own Markdown renderer (tables extension): the report test renders
  # report.md with it and counts each table's cells
  cmark-gfm
  # real single-node Slurm cluster for the tests
  slurm-wlm munge procps
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
else
  echo "install-deps.sh: all packages present"
fi

# The real clients that read our ONNX exports, for the tests only: ONNX Runtime
# (QDQ files) and qonnx (QONNX Quant nodes) from PyPI, in a virtual
# environment of Debian's interpreter so Debian's python3-* stay untouched.
venv=${EDMIPS_VENV:-/opt/edmips-venv}
if ! "$venv/bin/python" -c "import onnxruntime, qonnx" 2> /dev/null; then
  echo "install-deps.sh: installing onnxruntime and qonnx into $venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "onnxruntime>=1.17,<2" "qonnx>=1.0,<2"
fi
