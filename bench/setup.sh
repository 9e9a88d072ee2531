#!/usr/bin/env bash
# Cold and re-run times of scripts/setup (the default install), with the load average.
#   bench/setup.sh SCRATCH_DIR
# Clones this repository into SCRATCH_DIR/clone, runs scripts/setup there with an empty pip
# cache (SCRATCH_DIR/pipcache) and an empty Atlas cache (SCRATCH_DIR/atlas-cache, where the
# default label model is joined), then again; prints wall and CPU seconds of each, the load
# average before and after, and the sizes of the new .venv and of the models in the cache.
set -euo pipefail
scratch=$(realpath "${1:?usage: bench/setup.sh SCRATCH_DIR}")
repo=$(cd "$(dirname "$0")/.." && pwd)
rm -rf "$scratch/clone" "$scratch/pipcache" "$scratch/atlas-cache"
git clone -q "$repo" "$scratch/clone"
export PIP_CACHE_DIR=$scratch/pipcache ATLAS_CACHE=$scratch/atlas-cache
cd "$scratch/clone"
for run in cold re-run; do
  echo "$run: start $(date -u +%FT%TZ), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  TIMEFORMAT="$run: wall %R s, CPU %U s user + %S s sys"
  time scripts/setup 2>/dev/null
  echo "$run: end, load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
du -sh .venv "$ATLAS_CACHE/models"
