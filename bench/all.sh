#!/usr/bin/env bash
# Rerun every sample-sized table of docs/BENCHMARKS.md and print them as markdown, ready to paste.
#   bench/all.sh [--quick]     --quick: leave out the LLM labels table (the slowest, ~5 min per model)
# About 10 minutes on 2 quiet cores with one label model (--quick: about 6). Logs go to
# bench/out/all.log, the maps to bench/out/. Run it on a quiet machine: the tables are timings.
# Smoke run on small inputs: BENCH_SAMPLE=a-slice-of-the-sample.parquet BENCH_PLANTED=100 bench/all.sh --quick
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's atlas, whatever the venv points at
OUT=bench/out
LOG=$OUT/all.log
SAMPLE=${BENCH_SAMPLE:-sample_data/debian_packages.parquet}  # a smaller slice of it for a smoke run
PLANTED=${BENCH_PLANTED:-1000}  # dedup: planted variants among 20x as many real records
QUICK=false
[ "${1:-}" = "--quick" ] && QUICK=true
mkdir -p "$OUT"
: >"$LOG"
run() { echo "+ $*" >>"$LOG"; "$PY" "$@" 2>>"$LOG"; echo; }
section() { echo "### $1"; echo; echo "$(date -u +%F), $(nproc) cores, $("$PY" -V)"; echo; }

section "Build, per stage (the sample)"
run bench/build.py "$SAMPLE" --text description --id package --embedder static minilm --seed 42 \
  --labels keywords --out "$OUT"
MAP=$OUT/$(basename "$SAMPLE" .parquet)_minilm  # as `atlas demo` builds it, with keyword labels

TSV=$("$PY" -c "import sys; sys.path.insert(0, 'bench'); from pypi import TSV; print(TSV or '')")
if [ -n "$TSV" ]; then
  section "Reading input files"
  run bench/ingest.py "$TSV" --records 200000
  section "MiniLM backends (2,000 texts of each kind)"
  run bench/embedders.py --backends minilm-torch,minilm,minilm-onnx-int8 --limit 2000
fi

section "Duplicate detection quality"
run bench/dedup_planted.py --records $((PLANTED * 20)) --planted "$PLANTED" --embedder minilm  # needs the TSV
run bench/dedup_judged.py --embedder minilm --width 100  # precision from the verdicts in docs/dedup_judged.md

section "Serving (the sample)"
run bench/serve.py "$MAP"
run bench/semantic_recall.py "$MAP" --probe 12 24 48 96

section "Curation (the sample)"
run bench/curate.py "$MAP"
run bench/curate_api.py "$MAP"

if $QUICK; then
  echo "(topic labels left out: --quick)"
  exit 0
fi
MODELS=$("$PY" -c "from atlas.llm.models import CATALOGUE, installed_path; from atlas.settings import cache_dir
print(' '.join(name for name in CATALOGUE if installed_path(name, cache_dir())))")
if [ -z "$MODELS" ]; then
  echo "(topic labels left out: no local LLM installed; scripts/setup installs one)"
  exit 0
fi
section "Topic labels (the sample)"
# shellcheck disable=SC2086  # one argument per model name
run bench/labels.py "$MAP" --relabel $MODELS --threads 1 --contexts 2
