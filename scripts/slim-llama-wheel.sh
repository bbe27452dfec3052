#!/usr/bin/env bash
# Slim a llama-cpp-python wheel: a zip stores each library symlink as a full copy (libllama.so, .so.0, .so.0.5.0 ...)
# and the wheel also carries C headers and a second lib/ for C programs. Keep one copy of each library the Python
# package loads, linked to the others by their plain names (patchelf), and drop the rest: 23.8 MB -> about 3 MB.
# Usage: scripts/slim-llama-wheel.sh WHEEL OUT_DIR
set -euo pipefail
WHEEL="$1"; OUT="$2"; PY="${PYTHON:-.venv/bin/python}"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$PY" -m wheel unpack -d "$tmp" "$WHEEL" >/dev/null
root=$(echo "$tmp"/llama_cpp_python-*)
rm -rf "$root/lib" "$root/include"
(cd "$root/llama_cpp/lib"
 rm -f ./*.so.*
 for f in ./*.so; do
   name=$(basename "$f")
   patchelf --set-soname "$name" "$f"
   for n in $(patchelf --print-needed "$f" | grep -E '^lib(llama|mtmd|ggml|ggml-base|ggml-cpu)\.so\.' || true); do
     patchelf --replace-needed "$n" "${n%%.so.*}.so" "$f"
   done
 done)
grep -v -E '^(lib|include)/|^llama_cpp/lib/[^,]*\.so\.[^,]*,' "$root"/*.dist-info/RECORD > "$tmp/RECORD" && mv "$tmp/RECORD" "$root"/*.dist-info/RECORD
mkdir -p "$OUT"
"$PY" -m wheel pack -d "$OUT" "$root" >/dev/null
ls -la "$OUT"/llama_cpp_python-*.whl
sha256sum "$OUT"/llama_cpp_python-*.whl
