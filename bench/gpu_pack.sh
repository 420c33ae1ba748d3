#!/usr/bin/env bash
# Packs, on a machine with the package registries, what `bench/gpu.sh` needs on a GPU machine without them: the
# packages nodekd imports that a CUDA image with PyTorch often lacks (keras with namex and optree, torchattacks, ray
# with jsonschema), for that machine's Python (PYVER, default 3.12). Writes the git-ignored folder .gpu-pack/; copy it
# beside the repository on the GPU machine, and bench/gpu.sh installs from it (docs/gpu.md):
#   bash bench/gpu_pack.sh
# Ray's wheel (79 MB) travels unpacked and xz-compressed (32 MB), without its Java jars and RLlib, which nodekd does
# not use.
set -euo pipefail
cd "$(dirname "$0")/.."
PYVER=${PYVER:-3.12}
PIP=${PIP:-$(command -v pip3 || command -v pip)}
PACK=.gpu-pack
rm -rf "$PACK" && mkdir -p "$PACK/wheels"
platforms=(--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64)
"$PIP" download --quiet --no-deps --only-binary=:all: --python-version "$PYVER" "${platforms[@]}" -d "$PACK/wheels" \
  "keras>=3.8,<4" namex optree "torchattacks>=3.5.1" jsonschema jsonschema-specifications referencing rpds-py \
  "ray>=2.9"
ray_wheel=$(ls "$PACK"/wheels/ray-*.whl)
unpacked=$(mktemp -d)
python3 - "$ray_wheel" "$unpacked" <<'PY'
import sys, zipfile
from pathlib import Path

with zipfile.ZipFile(sys.argv[1]) as wheel:  # keeps the executables' mode (raylet, gcs_server), as unzip would
    for item in wheel.infolist():
        wheel.extract(item, sys.argv[2])
        mode = item.external_attr >> 16
        if mode and not item.is_dir():
            Path(sys.argv[2], item.filename).chmod(mode & 0o777)
PY
tar -C "$unpacked" --exclude=ray/jars --exclude=ray/rllib -cf - . | xz -T0 -6 > "$PACK/ray.tar.xz"
rm -rf "$unpacked" "$ray_wheel"
echo "python $PYVER" > "$PACK/python.txt"
du -sh "$PACK"/* | tee -a "$PACK/python.txt"
