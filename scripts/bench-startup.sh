#!/usr/bin/env bash
# Start-up overhead, measured side by side in one hyperfine run:
#   plain /bin/true, cordon run -- /bin/true (full isolation, default policy), the same with
#   the allow-list proxy (--allow-domain example.com: proxy listener and runtime), the same
#   with limits (--memory 1G --pids 512 --cpu 1: a cgroup made, filled and removed), and
#   bwrap --unshare-all --die-with-parent --new-session --ro-bind / / --dev /dev --proc /proc /bin/true
# Writes the raw table to target/bench-startup.md; docs/BENCHMARKS.md records the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "install hyperfine (apt-get install hyperfine)" >&2; exit 1; }
command -v bwrap >/dev/null || { echo "install bubblewrap (apt-get install bubblewrap)" >&2; exit 1; }
cargo build --release -q -p cordon-cli
ws=$(mktemp -d /var/tmp/cordon-bench.XXXXXX)
trap 'rm -rf "$ws"' EXIT
cd "$ws"
hyperfine -N --warmup 50 --runs "${RUNS:-1000}" --export-markdown "$OLDPWD/target/bench-startup.md" \
  -n plain '/bin/true' \
  -n cordon "$OLDPWD/target/release/cordon run --audit $ws/audit.jsonl -- /bin/true" \
  -n cordon-allow "$OLDPWD/target/release/cordon run --audit $ws/audit.jsonl --allow-domain example.com -- /bin/true" \
  -n cordon-limits "$OLDPWD/target/release/cordon run --audit $ws/audit.jsonl --memory 1G --pids 512 --cpu 1 -- /bin/true" \
  -n bwrap 'bwrap --unshare-all --die-with-parent --new-session --ro-bind / / --dev /dev --proc /proc /bin/true'
