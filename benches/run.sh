#!/usr/bin/env bash
# Produces the whole comparison table of BENCHMARKS.md in one command:
# lockstep (trace off / summary / full) against tokio (paused clock), madsim,
# shuttle and futures' LocalPool on W1-W6, then the network workload against
# turmoil.
#
# madsim simulates only when compiled with `--cfg madsim`, so the benches are
# built with that flag, in their own target directory (the flag changes
# every crate's fingerprint; sharing a target dir would rebuild everything
# back and forth).
#
# Usage: benches/run.sh [--rounds N] [--only W1,W2] [--runtimes tokio,lockstep-off]
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="${RUSTFLAGS:-} --cfg madsim"
export CARGO_TARGET_DIR="${LOCKSTEP_BENCH_TARGET:-target/bench-madsim}"
cargo bench -p lockstep-benches --bench runtime -- "$@"
cargo bench -p lockstep-benches --bench net
