#!/usr/bin/env bash
# Cross-builds cordon-windows for x86_64-pc-windows-gnu with Debian's own Rust and mingw, then
# runs its clippy (-D warnings) and its tests under Wine. Works as root on a fresh Debian 12:
# it installs what it needs. Wine runs the Win32 calls but does not enforce tokens or ACLs, so
# these tests check what cordon builds and reads back, not what Windows refuses: that is
# scripts/windows-smoke.ps1's job, on real Windows (see docs/windows.md).
#
# Everything it makes lives under target/windows (build, the Wine prefix, the helper DLL), so a
# second run is warm and the host build (target/) is never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/target/windows
triple=x86_64-pc-windows-gnu

source "$root/scripts/lib/apt.sh"

# Debian's rustc-web 1.96 finds its own library sources (rust-web-src) for -Zbuild-std, which
# is how std is built for a target Debian ships no prebuilt std for.
need=()
for pkg in rustc-web cargo-web rust-web-src rust-web-clippy gcc-mingw-w64-x86-64 wine wine64; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = installed ] || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt_install "${need[@]}"
fi

wine=/usr/lib/wine/wine64
[ -x "$wine" ] || wine=$(command -v wine64)
mkdir -p "$out"

# Wine 8 has no bcryptprimitives.dll, whose ProcessPrng Rust's std calls for random numbers
# (HashMap seeds). This stand-in forwards to RtlGenRandom (advapi32's SystemFunction036),
# which Wine implements. It is a test fixture for Wine only and never ships.
dll=$out/bcryptprimitives.dll
if [ ! -f "$dll" ]; then
  echo "== building $dll"
  cat > "$out/bcryptprimitives.c" <<'EOF'
#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
EOF
  x86_64-w64-mingw32-gcc -shared -O2 -Wl,--kill-at -o "$dll" "$out/bcryptprimitives.c" -ladvapi32
fi

export WINEPREFIX=$out/wine-prefix
export WINEDEBUG=-all
# Tells the executor tests which Win32 behaviours Wine lacks (see crates/windows/src/exec/tests.rs).
export CORDON_UNDER_WINE=1
# No Mono or Gecko prompts: the tests need neither.
export WINEDLLOVERRIDES="mscoree,mshtml="
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  echo "== creating the Wine prefix"
  "$wine" wineboot -i >/dev/null 2>&1 || true
  /usr/lib/wine/wineserver -w 2>/dev/null || true
fi
cp "$dll" "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"

# Debian's toolchain, not a rustup one that may sit first on PATH.
export PATH=/usr/bin:$PATH
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=$out/build
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=$wine
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
unset RUSTFLAGS RUSTC_WRAPPER

echo "== cargo clippy -D warnings ($triple)"
cargo clippy -Zbuild-std --target "$triple" -p cordon-windows --all-targets -- -D warnings
echo "== cargo test ($triple, under Wine)"
cargo test -Zbuild-std --target "$triple" -p cordon-windows

# --- cordon-proxy (the allow-list proxy, `--net allow`) ---
# Its own lints and tests for the Windows target, under Wine, which implements Winsock: the
# tests' loopback servers, the portable tunnel relay (splice(2) is Linux's) and the bulk
# transfers run for real (about 5 s). Wine enforces no firewall, so what the offline account
# can reach is checked by scripts/windows-smoke.ps1 -Elevated on real Windows.
echo "== cordon-proxy: cargo clippy -D warnings ($triple)"
cargo clippy -Zbuild-std --target "$triple" -p cordon-proxy --all-targets -- -D warnings
echo "== cordon-proxy: cargo test ($triple, under Wine)"
cargo test -Zbuild-std --target "$triple" -p cordon-proxy
# cordon.exe's own unit tests, under Wine: windows_net starts the proxy on a free port and
# sends an allowed and a refused request through it, with the audit events read back.
echo "== cordon-approvals: cargo clippy -D warnings ($triple)"
cargo clippy -Zbuild-std --target "$triple" -p cordon-approvals --all-targets -- -D warnings
echo "== cordon-approvals: cargo test ($triple, under Wine: the control pipe, the broker, persistence)"
cargo test -Zbuild-std --target "$triple" -p cordon-approvals
echo "== cordon.exe: unit tests ($triple, under Wine)"
cargo test -Zbuild-std --target "$triple" -p cordon-cli --bin cordon
# --- end cordon-proxy ---

# The real CLI for Windows: its lints, then cordon.exe run end to end under Wine (what Wine
# runs: the plan, the job, the token's creation, exit statuses, the audit log; not what
# Windows would refuse).
echo "== cordon.exe: cargo clippy -D warnings ($triple)"
cargo clippy -Zbuild-std --target "$triple" -p cordon-cli --all-targets -- -D warnings
cargo build -Zbuild-std --target "$triple" -p cordon-cli
bash "$root/scripts/windows-cli-smoke.sh" "$wine" "$CARGO_TARGET_DIR/$triple/debug/cordon.exe"
/usr/lib/wine/wineserver -k 2>/dev/null || true

# The smoke script for real Windows cannot run here; it is at least parsed, with tree-sitter's
# PowerShell grammar (from PyPI, into target/windows: nothing system-wide), so a syntax
# error fails here instead of on a Windows user's machine.
echo "== scripts/windows-smoke.ps1: PowerShell syntax (a parse, not a run)"
pydeps=$out/pydeps
for try in 1 2 3; do
  [ -d "$pydeps/tree_sitter_powershell" ] && break
  pip3 install --quiet --disable-pip-version-check --target "$pydeps" \
    tree-sitter==0.26.1 tree-sitter-powershell==0.26.4 || { rm -rf "$pydeps"; sleep $((try * 5)); }
done
PYTHONPATH=$pydeps python3 "$root/scripts/ps-syntax.py" "$root/scripts/windows-smoke.ps1"
