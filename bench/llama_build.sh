#!/usr/bin/env bash
# llama-cpp-python's build as scripts/setup runs it, with and without llama.cpp's `common`
# library, started together so that both see the same load; prints wall and CPU seconds.
#   bench/llama_build.sh SCRATCH_DIR [VERSION]
set -euo pipefail
scratch=$(realpath "${1:?usage: bench/llama_build.sh SCRATCH_DIR [VERSION]}")
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
version=${2:-$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('llama_cpp_python'))")}
mkdir -p "$scratch"
.venv/bin/python -m pip download -q --no-binary :all: --no-deps -d "$scratch" "llama-cpp-python==$version"
sdist=$scratch/llama_cpp_python-$version.tar.gz
base="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF"
one() {  # NAME CMAKE_ARGS
  TIMEFORMAT="$1: wall %R s, CPU %U s user + %S s sys"
  time CMAKE_ARGS="$2" .venv/bin/python -m pip wheel -q --no-cache-dir --no-deps "$sdist" \
    -w "$scratch/$1" >"$scratch/$1.log" 2>&1
}
echo "start $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
one with-common "$base" &
one without-common "$base -DCMAKE_PROJECT_llama.cpp_INCLUDE=$repo/scripts/llama-cpp-no-common.cmake" &
wait
echo "end, load average $(cut -d' ' -f1-3 /proc/loadavg)"
