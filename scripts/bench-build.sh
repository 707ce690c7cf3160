#!/usr/bin/env bash
# A real build inside cordon vs outside, side by side in one hyperfine run: a clean debug
# build of the cordon-policy crate and its dependencies (serde, toml, sha2, syn, …) from a copy
# of this repository, offline, with its own CARGO_HOME (a copy of ~/.cargo/registry), so both
# sides compile exactly the same thing. Three commands:
#   outside:        cargo build
#   cordon:         cordon run -- cargo build            (default policy: filter on)
#   cordon-limits:  cordon run --memory 8G --pids 4096 --cpu 2 -- cargo build
#   cordon-tx:      cordon run --transaction bench -- cargo build   (every write into the overlay)
# Writes the raw table to target/bench-build.md; docs/BENCHMARKS.md records the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
command -v hyperfine >/dev/null || { echo "install hyperfine (apt-get install hyperfine)" >&2; exit 1; }
cargo build --release -q -p cordon-cli
cargo fetch -q
ws=$(mktemp -d /var/tmp/cordon-bench-build.XXXXXX)
trap 'rm -rf "$ws"' EXIT
# Everything inside the workspace copy: the sandbox's /var/tmp is private, so a CARGO_HOME
# beside the workspace would look empty from inside.
mkdir -p "$ws/src/.bench-cargo-home"
tar --exclude=./target --exclude=./.git -cf - . | tar -xf - -C "$ws/src"
cp -r "${CARGO_HOME:-$HOME/.cargo}/registry" "$ws/src/.bench-cargo-home/"
cd "$ws/src"
build="cargo build --offline -q -j 2 -p cordon-policy"
export CARGO_HOME="$ws/src/.bench-cargo-home" CARGO_TARGET_DIR="$ws/src/target"
# The transaction is discarded before each run, so each one starts from an empty upper layer.
export XDG_STATE_HOME="$ws/state"
cordon="$repo/target/release/cordon"
hyperfine --runs "${RUNS:-5}" --warmup 1 \
  --prepare "rm -rf $ws/src/target; $cordon tx discard bench >/dev/null 2>&1 || true" \
  --export-markdown "$repo/target/bench-build.md" \
  -n outside "$build" \
  -n cordon "$repo/target/release/cordon run --audit $ws/audit.jsonl -- $build" \
  -n cordon-limits "$repo/target/release/cordon run --audit $ws/audit.jsonl --memory 8G --pids 4096 --cpu 2 -- $build" \
  -n cordon-tx "$repo/target/release/cordon run --audit $ws/audit.jsonl --transaction bench -- $build"
