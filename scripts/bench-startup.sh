#!/usr/bin/env bash
# Start-up overhead, measured side by side in one hyperfine run:
#   plain /bin/true; `cordon --version` (cordon's own exec and start, nothing else: with
#   the namespaces and the command's exec, the floor of any cordon run that makes its
#   sandbox itself); unshare(1) making the same namespaces as cordon and nothing else (the
#   kernel's floor for a fresh sandbox: user+mount+pid+net+ipc+uts, a fork, an exec);
#   cordon run -- /bin/true (full isolation, default policy); the same with the allow-list
#   proxy (--allow-domain example.com: proxy listener and runtime); the same with limits
#   (--memory 1G --pids 512 --cpu 1: a cgroup made, filled and removed); and
#   bwrap --unshare-all --die-with-parent --new-session --ro-bind / / --dev /dev --proc /proc /bin/true
# Writes the raw table to target/bench-startup.md; docs/BENCHMARKS.md records the ratios.
#   RUNS=N        runs per command (default 1000; 300 is enough for a ratio)
#   FIFO=1        run hyperfine (and so every command) under SCHED_FIFO (chrt -f 10, needs
#                 root): on a machine busy with other work, both sides then get a core when
#                 they ask instead of queueing behind it; the ratio is what to compare.
#                 A real-time task cannot join a cgroup-v1 cpu group without an RT budget
#                 (EINVAL), so cordon-limits then runs under `chrt -o 0` (normal policy,
#                 plus chrt's own exec of about 0.5 ms)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "install hyperfine (apt-get install hyperfine)" >&2; exit 1; }
command -v bwrap >/dev/null || { echo "install bubblewrap (apt-get install bubblewrap)" >&2; exit 1; }
cargo build --release -q -p cordon-cli
target=${CARGO_TARGET_DIR:-$PWD/target}
cordon="$target/release/cordon"
ws=$(mktemp -d /var/tmp/cordon-bench.XXXXXX)
trap 'rm -rf "$ws"' EXIT
out="$PWD/target/bench-startup.md"
mkdir -p "$PWD/target"
prio=()
limits_prio=""
if [ "${FIFO:-0}" = 1 ]; then prio=(chrt -f 10); limits_prio="chrt -o 0 "; fi
cd "$ws"
"${prio[@]}" hyperfine -N --warmup 50 --runs "${RUNS:-1000}" --export-markdown "$out" --export-json "${out%.md}.json" \
  -n plain '/bin/true' \
  -n cordon-start "$cordon --version" \
  -n namespaces-only 'unshare --user --map-current-user --mount --pid --fork --net --ipc --uts /bin/true' \
  -n cordon "$cordon run --audit $ws/audit.jsonl -- /bin/true" \
  -n cordon-allow "$cordon run --audit $ws/audit.jsonl --allow-domain example.com -- /bin/true" \
  -n cordon-limits "$limits_prio$cordon run --audit $ws/audit.jsonl --memory 1G --pids 512 --cpu 1 -- /bin/true" \
  -n bwrap 'bwrap --unshare-all --die-with-parent --new-session --ro-bind / / --dev /dev --proc /proc /bin/true'
