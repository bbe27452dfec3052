#!/usr/bin/env bash
# Build the llama-cpp-python wheel once (PyPI ships only its sdist) into a wheel directory.
# Usage: scripts/build-llama-wheel.sh [OUT_DIR]   (default: vendor/wheels)
# CPU-only, portable (no -march=native), no tests/examples/tools/server binaries of llama.cpp itself.
# For a CUDA build: EXTRA_CMAKE_ARGS="-DGGML_CUDA=on" scripts/build-llama-wheel.sh
set -euo pipefail
VERSION="${LLAMA_CPP_VERSION:-0.3.36}"
OUT="${1:-vendor/wheels}"
PY="${PYTHON:-.venv/bin/python}"
JOBS="${JOBS:-2}"
mkdir -p "$OUT"
if ls "$OUT"/llama_cpp_python-"$VERSION"-*.whl >/dev/null 2>&1; then
  echo "wheel already in $OUT"; ls -la "$OUT"/llama_cpp_python-"$VERSION"-*.whl; exit 0
fi
command -v cmake >/dev/null && command -v g++ >/dev/null && command -v patchelf >/dev/null || {
  echo "build-llama-wheel: cmake, g++ and patchelf are needed: apt-get install -y cmake build-essential patchelf" >&2; exit 2; }
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF ${EXTRA_CMAKE_ARGS:-}"
export CMAKE_BUILD_PARALLEL_LEVEL="$JOBS"
start=$(date +%s)
raw=$(mktemp -d)
"$PY" -m pip wheel --no-deps --wheel-dir "$raw" ${LLAMA_SDIST:-"llama-cpp-python==$VERSION"}
echo "build-llama-wheel: built in $(( $(date +%s) - start )) s"
scripts/slim-llama-wheel.sh "$raw"/llama_cpp_python-"$VERSION"-*.whl "$OUT"
rm -rf "$raw"
ls -la "$OUT"/llama_cpp_python-"$VERSION"-*.whl
sha256sum "$OUT"/llama_cpp_python-"$VERSION"-*.whl
