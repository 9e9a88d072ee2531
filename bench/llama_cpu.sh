#!/usr/bin/env bash
# llama-cpp-python built portable (AVX2/FMA/F16C) against built for this CPU (-march=native),
# otherwise as scripts/setup builds it; both installed side by side in SCRATCH_DIR, then
# compared in turns: bench/llama_speed.py, and (with MAP) the relabel of MAP as `atlas relabel`
# chooses, from a cold answer cache (bench/labels.py MAP --relabel default --calls).
#   bench/llama_cpu.sh SCRATCH_DIR [MAP [TURNS]]
set -euo pipefail
scratch=$(realpath "${1:?usage: bench/llama_cpu.sh SCRATCH_DIR [MAP [TURNS]]}")
map=${2:-}
turns=${3:-2}
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
version=$(.venv/bin/python -c "import importlib.metadata as m; print(m.version('llama_cpp_python'))")
base="-DLLAVA_BUILD=OFF -DCMAKE_PROJECT_llama.cpp_INCLUDE=$repo/scripts/llama-cpp-no-common.cmake"
for build in portable native; do
  if [ ! -d "$scratch/$build/llama_cpp" ]; then
    flag=$([ $build = native ] && echo ON || echo OFF)
    echo "building $build (-DGGML_NATIVE=$flag), llama-cpp-python $version"
    CMAKE_ARGS="$base -DGGML_NATIVE=$flag" .venv/bin/python -m pip wheel -q --no-cache-dir --no-deps \
      -w "$scratch/$build-wheel" "llama-cpp-python==$version" >"$scratch/$build.log" 2>&1
    .venv/bin/python -m pip install -q --no-deps --target "$scratch/$build" "$scratch/$build-wheel"/*.whl
  fi
done
for turn in $(seq "$turns"); do
  for build in portable native; do
    echo "== $build, turn $turn, $(date -u +%H:%M:%S) UTC, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    PYTHONPATH="$scratch/$build:$repo" .venv/bin/python bench/llama_speed.py 2>&1 | grep -v -i warning
    if [ -n "$map" ]; then
      rm -rf "$scratch/relabel-$build-$turn"
      PYTHONPATH="$scratch/$build:$repo" .venv/bin/python bench/labels.py "$map" --relabel default --calls \
        --keep "$scratch/relabel-$build-$turn" 2>&1 | grep -v -i warning
    fi
  done
done
