#!/bin/sh
# The fuzz stage: berth-fuzz's targets (fuzz/tests/fuzz_*.rs: layer unpack, archive load,
# config.json, the Engine API's create and exec bodies, the API's body readers, Dockerfiles and
# .dockerignore) with ten
# times the cases `cargo test` runs, from another fixed seed, each target capped at a minute.
# Deterministic: a failure is a bug to turn into a regression test, not noise. Run as root.
# BERTH_FUZZ_SCALE, BERTH_FUZZ_SEED (a number or "random") and BERTH_FUZZ_SECONDS override.
set -eu
cd "$(dirname "$0")/.."
export BERTH_FUZZ_SCALE="${BERTH_FUZZ_SCALE:-10}"
export BERTH_FUZZ_SEED="${BERTH_FUZZ_SEED:-20}"
export BERTH_FUZZ_SECONDS="${BERTH_FUZZ_SECONDS:-60}"
# --workspace: the features `cargo test --workspace` built with, so nothing is rebuilt.
exec cargo test --workspace --locked --test 'fuzz_*' -- --nocapture
