#!/usr/bin/env bash
# The test command from README.md: format, lints, unit tests, then the sandbox suite twice,
# as the current user (root in CI) and as an unprivileged user with its own copy of the
# binaries and its own workspaces. Builds once; both passes share the target dir.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== build"
cargo build --workspace --all-targets
cargo test --workspace --no-run 2>&1 | tee /tmp/cordon-test-build.log >/dev/null

# No test writes a file near 2 GiB: a runaway one (a size computed wrong) dies of SIGXFSZ
# instead of filling the disk, which a test once did. Builds are done; the rest inherits it.
ulimit -f $((2 * 1024 * 1024))

echo "== tests as $(id -un)"
# Not under /tmp or /var/tmp: the sandbox replaces those with private, empty ones, so the
# tests' fake homes there would be invisible inside and the read tests would test nothing.
mkdir -p /var/lib/cordon-ci 2>/dev/null || true
work=$(mktemp -d "$( [ -w /var/lib/cordon-ci ] && echo /var/lib/cordon-ci || echo "$PWD/target" )/run.XXXXXX")
chmod 755 "$work"
mkdir -p "$work/root-tests"
CORDON_TEST_DIR="$work/root-tests" cargo test --workspace

# The Windows backend, cross-built and tested under Wine, and the approval console in a
# headless browser: both install what they need (as root) and fail rather than skip.
windows_and_console() {
  echo "== Windows backend (x86_64-pc-windows-gnu under Wine)"
  bash scripts/windows-test.sh
  echo "== approval console in headless Chromium"
  bash scripts/console-e2e.sh
}

if [ "$(id -u)" -ne 0 ]; then
  echo "== not root: the unprivileged pass was the run above"
  rm -rf "$work"
  windows_and_console
  exit 0
fi

user=cordon-ci
id -u "$user" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$user"
home=$(getent passwd "$user" | cut -d: -f6)
# The unprivileged user cannot enter the clone; give it its own binaries and workspaces.
suite=$(ls -t target/debug/deps/sandbox-* | grep -v '\.d$' | head -n 1)
install -d -o "$user" "$work/user" "$work/user/tests"
install -m 755 target/debug/cordon "$work/user/cordon"
install -m 755 "$suite" "$work/user/sandbox-suite"
echo "== sandbox suite as $user (uid $(id -u "$user"))"
runuser -u "$user" -- env -i HOME="$home" PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 \
  CORDON_BIN="$work/user/cordon" CORDON_TEST_DIR="$work/user/tests" TMPDIR="$work/user/tests" \
  "$work/user/sandbox-suite" --test-threads 2
rm -rf "$work"
windows_and_console
