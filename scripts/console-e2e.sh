#!/usr/bin/env bash
# Browser tests of the approval console (crates/approvals/e2e): Debian's chromium, driven by
# playwright-core from npm, at a phone-sized viewport. console.test.cjs drives a fixture (broker
# and console in one process); run.test.cjs drives the real target/debug/cordon (`cordon run`
# held on a prompt rule, answered in `cordon console`). Installs what it needs; a missing
# browser is a failure, never a skip. Leaves target/console-e2e/console.png and
# console-run.png behind.
set -euo pipefail
cd "$(dirname "$0")/.."

target=${CARGO_TARGET_DIR:-target}
out="$target/console-e2e"
chromium_bin=/usr/bin/chromium
playwright_version=1.65.1

source scripts/lib/apt.sh

need=()
[ -x "$chromium_bin" ] || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then apt_install "${need[@]}"; else
    echo "console-e2e: FAIL: missing ${need[*]} and not root to install them" >&2; exit 1
  fi
fi
if [ ! -x "$chromium_bin" ]; then
  echo "console-e2e: FAIL: no browser at $chromium_bin" >&2
  exit 1
fi

mkdir -p "$out/node"
if [ ! -f "$out/node/node_modules/playwright-core/package.json" ]; then
  tries=0
  until npm install --prefix "$out/node" --no-audit --no-fund --loglevel=error \
      "playwright-core@$playwright_version"; do
    tries=$((tries + 1))
    if [ "$tries" -ge 5 ]; then echo "console-e2e: FAIL: npm install failed" >&2; exit 1; fi
    sleep 10
  done
fi

cargo build -q -p cordon-approvals --example console_fixture
cargo build -q -p cordon-cli
rm -rf "$out"/state-* "$out"/profile-*
node_dir=$(cd "$out/node" && pwd)
out_abs=$(cd "$out" && pwd)
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
status=0
node crates/approvals/e2e/console.test.cjs \
  "$target/debug/examples/console_fixture" "$chromium_bin" "$node_dir" "$out_abs" || status=1
node crates/approvals/e2e/run.test.cjs \
  "$(cd "$target/debug" && pwd)/cordon" "$chromium_bin" "$node_dir" "$out_abs" || status=1
if [ "$status" -ne 0 ]; then echo "console-e2e: FAIL after ${SECONDS} s" >&2; exit 1; fi
echo "console-e2e: ok in ${SECONDS} s"
