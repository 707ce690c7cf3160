#!/usr/bin/env bash
# Browser tests of the approval console (crates/approvals/e2e): Debian's chromium, driven by
# playwright-core from npm, at a phone-sized viewport. Installs what it needs; a missing
# browser is a failure, never a skip. Leaves target/console-e2e/console.png behind.
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
rm -rf "$out"/state-* "$out"/profile-*
PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 node crates/approvals/e2e/console.test.cjs \
  "$target/debug/examples/console_fixture" "$chromium_bin" "$(cd "$out/node" && pwd)" "$(cd "$out" && pwd)"
