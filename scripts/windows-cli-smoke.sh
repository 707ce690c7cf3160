#!/usr/bin/env bash
# cordon.exe run under Wine, judged by exit statuses and the audit log: the default policy is
# refused in the unelevated mode (125, naming what it cannot enforce), the weaker mode runs
# the command and relays its exit status, a missing program is 127, a subcommand the Windows
# backend lacks is 125, `cordon console` serves the paired caller only, [commands] rules judge the command line
# (forbid 126; prompt answered in the console, or on cordon's own console with the question's
# code, the command never seeing the answer), each run writes acl_applied, command_start and command_exit, `setup --elevated
# --dry-run` prints the steps and `doctor` says the elevated mode is not set up (a fresh
# Wine prefix has no sandbox accounts), `setup --elevated --remove` undoes a half-finished
# setup and a second one succeeds with nothing to do. Elevated runs: with setup incomplete
# the refusal names `cordon setup --elevated` besides --allow-weaker, `--net allow` is
# refused (no proxy on Windows), the hidden `__as-account` is absent from --help and refuses
# a missing request with 125, and so is `__broker` without its start frame (the hand-off and
# the broker themselves are tested in crates/windows under Wine, the logon only on real
# Windows).
# Usage: windows-cli-smoke.sh WINE CORDON_EXE (run by scripts/windows-test.sh).
set -uo pipefail
wine=$1 exe=$2
here=$(cd "$(dirname "$0")" && pwd)
ws=$(mktemp -d /tmp/cordon-win-smoke.XXXXXX)
trap 'rm -rf "$ws"' EXIT
mkdir -p "$ws/project"
cd "$ws/project"
audit="$ws/audit.jsonl"
failed=0

expect() { # expect STATUS WHAT -- ARGS...
  local want=$1 what=$2; shift 3
  "$wine" "$exe" "$@" >"$ws/out" 2>"$ws/err" </dev/null
  local got=$?
  if [ "$got" -eq "$want" ]; then
    echo "ok   $what (exit $got)"
  else
    echo "FAIL $what: exit $got, wanted $want"; sed 's/^/     /' "$ws/err"; failed=1
  fi
}

expect 125 "the default policy is refused unelevated" -- run --audit "$audit" -- cmd /c exit 0
grep -q "cannot be enforced" "$ws/err" || { echo "FAIL the refusal names nothing"; cat "$ws/err"; failed=1; }
grep -q "cordon setup --elevated" "$ws/err" && grep -q -- "--allow-weaker" "$ws/err" \
  || { echo "FAIL the refusal does not name both ways forward"; cat "$ws/err"; failed=1; }
grep -q "elevated mode is not set up" "$ws/err" || { echo "FAIL the refusal does not say what setup lacks"; cat "$ws/err"; failed=1; }
expect 125 "--net allow is refused unelevated (it needs the elevated mode)" -- run --allow-weaker --net allow --audit "$audit" -- cmd /c exit 0
grep -q "needs the elevated mode" "$ws/err" || { echo "FAIL the --net allow refusal does not say why"; cat "$ws/err"; failed=1; }
# terminate_on_violation = ["network"] is built (the job is ended at the first refusal): with
# --net allow unelevated the only refusal left is the elevated mode's.
expect 125 "--kill-on-violation network is refused only for the mode" -- run --allow-weaker --net allow --kill-on-violation network --audit "$audit" -- cmd /c exit 0
grep -q "needs the elevated mode" "$ws/err" && ! grep -q "not built" "$ws/err" \
  || { echo "FAIL --kill-on-violation network: $(cat "$ws/err")"; failed=1; }
expect 125 "__as-account refuses without a request" -- __as-account
grep -q "cordon-handoff" "$ws/out" || { echo "FAIL __as-account answered no frame"; cat "$ws/out"; failed=1; }
expect 125 "__broker refuses to serve without a start" -- __broker
grep -q "cordon-handoff" "$ws/out" && grep -q "failed" "$ws/out" \
  || { echo "FAIL __broker answered no refusal frame"; cat "$ws/out"; failed=1; }
expect 0 "--help" -- --help
if grep -q "as-account" "$ws/out"; then echo "FAIL --help shows the internal __as-account"; failed=1; else echo "ok   __as-account is hidden from --help"; fi
if grep -q "__broker" "$ws/out"; then echo "FAIL --help shows the internal __broker"; failed=1; else echo "ok   __broker is hidden from --help"; fi
expect 3 "the weaker mode runs the command and relays its status" -- run --allow-weaker --audit "$audit" -- cmd /c exit 3
expect 127 "a missing program" -- run --allow-weaker --audit "$audit" -- no-such-program-here
expect 125 "a subcommand Windows lacks" -- tx list
expect 0 "setup --elevated --dry-run prints the steps" -- setup --elevated --dry-run
grep -q "CordonSandboxOffline" "$ws/out" || { echo "FAIL the dry run names no account"; failed=1; }
# `setup --elevated --remove` (Wine's cordon is elevated, so no UAC): what a setup that
# stopped early leaves (a stored password, the logon-screen value) is removed and said so,
# everything else is reported absent; a second removal does nothing and succeeds too.
expect 0 "setup --elevated --remove --dry-run prints the steps" -- setup --elevated --remove --dry-run
grep -q "delete the account CordonSandboxOffline" "$ws/out" || { echo "FAIL the removal's dry run names no account"; cat "$ws/out"; failed=1; }
userlist='HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\SpecialAccounts\UserList'
"$wine" reg add "$userlist" /v CordonSandboxOffline /t REG_DWORD /d 0 /f >/dev/null 2>&1
local_appdata=$("$wine" cmd /c 'echo %LOCALAPPDATA%' 2>/dev/null | tr -d '\r')
state=$("$wine" winepath -u "$local_appdata\\cordon\\state" 2>/dev/null | tr -d '\r')
[ -n "$local_appdata" ] && [ -n "$state" ] || { echo "FAIL no state folder from Wine's %LOCALAPPDATA%"; failed=1; state=$ws/no-state; }
mkdir -p "$state/elevated" && echo x > "$state/elevated/CordonSandboxOffline.dpapi"
expect 0 "setup --elevated --remove after a half-finished setup" -- setup --elevated --remove
grep -Eq '^ ?[0-9]+\. done +delete the stored password of CordonSandboxOffline' "$ws/out" \
  && grep -Eq '^ ?[0-9]+\. done +remove HKLM.*UserList\\CordonSandboxOffline' "$ws/out" \
  && grep -Eq '^ ?[0-9]+\. absent +delete the account CordonSandboxOffline: no such account' "$ws/out" \
  || { echo "FAIL the removal does not report what it removed and what was absent"; cat "$ws/out"; failed=1; }
if "$wine" reg query "$userlist" /v CordonSandboxOffline >/dev/null 2>&1; then echo "FAIL the logon-screen value is still there"; failed=1; fi
[ -e "$state/elevated/CordonSandboxOffline.dpapi" ] && { echo "FAIL the stored password is still there"; failed=1; }
expect 0 "a second setup --elevated --remove succeeds" -- setup --elevated --remove
if grep -Eq '^ ?[0-9]+\. (done|FAILED|kept)' "$ws/out"; then echo "FAIL the second removal did something"; cat "$ws/out"; failed=1; fi
grep -q "the elevated mode is removed" "$ws/out" || { echo "FAIL the second removal does not say it is removed"; cat "$ws/out"; failed=1; }
expect 0 "doctor reports the elevated mode's state" -- doctor
grep -q "elevated mode: not set up" "$ws/out" || { echo "FAIL doctor: $(cat "$ws/out")"; failed=1; }
grep -q '"backend":"windows-restricted-token"' "$audit" || { echo "FAIL no command_start in $audit"; failed=1; }
grep -q '"event":"command_exit".*"status":3' "$audit" || { echo "FAIL no command_exit with status 3"; cat "$audit"; failed=1; }
grep -q '"event":"command_exit".*"status":127' "$audit" || { echo "FAIL no command_exit for the missing program (127)"; failed=1; }
# The ACLs the run rests on are logged before command_start: under Wine, which keeps no DACL,
# every run writes its edits again (on Windows the second run skips them, windows-smoke.ps1).
grep -q '"event":"acl_applied".*"ace":"deny".*"reason":"protected"' "$audit" \
  || { echo "FAIL no acl_applied event with a protected path's deny ACE"; cat "$audit"; failed=1; }
# `cordon console` on Windows: it serves on loopback (Wine's is the host's), refuses an
# unpaired caller and answers the paired one with the runs' open requests (none here).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$wine" "$exe" console --bind "127.0.0.1:$port" >"$ws/console.out" 2>"$ws/console.err" </dev/null &
console_pid=$!
token=
for _ in $(seq 1 100); do
  token=$(grep -o 'token=[A-Za-z0-9_-]*' "$ws/console.err" 2>/dev/null | head -n 1 | cut -d= -f2)
  [ -n "$token" ] && break
  sleep 0.2
done
if [ -z "$token" ]; then
  echo "FAIL cordon console printed no pairing URL"; cat "$ws/console.err"; failed=1
else
  unpaired=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/pending")
  paired=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/pending")
  if [ "$unpaired" = 401 ] && printf '%s' "$paired" | grep -q '"pending":\[\]'; then
    echo "ok   cordon console serves the paired caller only"
  else
    echo "FAIL cordon console: unpaired $unpaired, paired: $paired"; cat "$ws/console.err"; failed=1
  fi
fi
# [commands] rules on Windows judge the command line itself (no exec inside is judged, so the
# plan needs --allow-weaker): a forbid is 126 with the rule's reason, a prompt waits for the
# console, which allows it once (the command runs) or denies it (126, the command never ran).
rules="$ws/rules.toml"
printf '[commands]\nrules = [{ prefix = ["cmd"], decision = "forbid", reason = "smoke says no" }]\n' >"$rules"
expect 125 "command rules are refused without --allow-weaker (only the command line is judged)" -- run --policy "$rules" --audit "$audit" -- cmd /c exit 0
grep -q "only the command line" "$ws/err" || { echo "FAIL the refusal does not say what is not judged"; cat "$ws/err"; failed=1; }
expect 126 "a forbidden command line is refused with 126" -- run --allow-weaker --policy "$rules" --audit "$audit" -- cmd /c "echo ran> ran.txt"
grep -q "smoke says no" "$ws/err" && [ ! -e ran.txt ] || { echo "FAIL the forbid: $(cat "$ws/err"), ran.txt $( [ -e ran.txt ] && echo present || echo absent)"; failed=1; }
# Windows' other spellings of the same program are the same program to the rules.
expect 126 "a forbidden program spelled C:\\windows\\system32\\CMD.EXE is refused too" -- run --allow-weaker --policy "$rules" --audit "$audit" -- 'C:\windows\system32\CMD.EXE' /c "echo ran> ran.txt"
grep -q "smoke says no" "$ws/err" && [ ! -e ran.txt ] || { echo "FAIL the forbid by another spelling: $(cat "$ws/err")"; failed=1; }
# A rule naming the program by its path matches what the typed name resolves to (Windows
# gives the long name back verbatim, \\?\C:\...).
by_path="$ws/by-path.toml"
printf '[commands]\nrules = [{ prefix = ['"'"'C:\\windows\\system32\\cmd.exe'"'"'], decision = "forbid", reason = "smoke says no by path" }]\n' >"$by_path"
expect 126 "a rule naming C:\\windows\\system32\\cmd.exe refuses a command line typed as cmd" -- run --allow-weaker --policy "$by_path" --audit "$audit" -- cmd /c "echo ran> ran.txt"
grep -q "smoke says no by path" "$ws/err" && [ ! -e ran.txt ] || { echo "FAIL the forbid by path: $(cat "$ws/err")"; failed=1; }
# `cordon rules check` judges as `cordon run` does here: by both names, and says what is not judged.
expect 0 "rules check on Windows" -- rules check --policy "$by_path" -- CMD.EXE /c x
grep -q "^forbid: CMD.EXE /c x" "$ws/out" && grep -q "judged as: cmd, c:/windows/system32/cmd" "$ws/out" && grep -q "only this command line is judged" "$ws/out" \
  || { echo "FAIL rules check: $(cat "$ws/out" "$ws/err")"; failed=1; }
expect 0 "rules check --json on Windows" -- rules check --json --policy "$rules" -- notepad x
python3 -c 'import json,sys; o=json.load(open(sys.argv[1])); sys.exit(0 if o["decision"]=="allow" and o["judged"]=="command_line" and len(o["names"])==2 else 1)' "$ws/out" \
  || { echo "FAIL rules check --json: $(cat "$ws/out")"; failed=1; }
printf '[commands]\nrules = [{ prefix = ["cmd"], decision = "prompt", reason = "smoke asks" }]\n' >"$rules"
prompted() { # prompted CHOICE FILE: a prompted run answered CHOICE in the console; its status
  "$wine" "$exe" run --allow-weaker --policy "$rules" --audit "$audit" -- cmd /c "echo ran> $2" \
    >"$ws/prompt.out" 2>"$ws/prompt.err" </dev/null &
  local run_pid=$! body='' id='' run=''
  for _ in $(seq 1 150); do
    body=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/pending")
    id=$(printf '%s' "$body" | python3 -c 'import json,sys; p=json.load(sys.stdin)["pending"]; print(p[0]["id"] if p else "")' 2>/dev/null)
    [ -n "$id" ] && break
    sleep 0.2
  done
  run=$(printf '%s' "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["pending"][0]["run"])' 2>/dev/null)
  [ -n "$id" ] && curl -s -o /dev/null -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    -d "{\"run\":\"$run\",\"id\":\"$id\",\"choice\":\"$1\"}" "http://127.0.0.1:$port/api/decide"
  wait "$run_pid"
}
if [ -n "$token" ]; then
  prompted allow_once allowed.txt; got=$?
  if [ "$got" -eq 0 ] && [ -e allowed.txt ]; then echo "ok   a prompted command line allowed in the console runs (exit 0)"
  else echo "FAIL the allowed prompt: exit $got"; cat "$ws/prompt.err"; failed=1; fi
  prompted deny denied.txt; got=$?
  if [ "$got" -eq 126 ] && [ ! -e denied.txt ]; then echo "ok   a prompted command line denied in the console is refused (exit 126)"
  else echo "FAIL the denied prompt: exit $got"; cat "$ws/prompt.err"; failed=1; fi
  grep -q '"event":"approval_decided".*"decision":"allow_once".*"channel":"console"' "$audit" \
    && grep -q '"event":"approval_decided".*"decision":"deny".*"channel":"console"' "$audit" \
    || { echo "FAIL the prompts' answers are not in $audit"; failed=1; }
fi
# The terminal channel: on a console (Wine gives a program on a pty one) a prompted command
# line is asked on cordon's console too, and answered there by a human who repeats the
# question's code. The command reads a line from its own (pseudo) console: what it gets is
# what is typed after it started, never the answer. A wrong code allows nothing.
tty_answer="$here/tty-answer.py"
printf '@echo off\r\necho ask-now>CON\r\nset /p x=<CON\r\necho got %%x%%> typed.txt\r\n' >read.cmd
tty_run() { # tty_run [tty-answer flags] -- : the prompted run on a pty; its status
  python3 "$tty_answer" --timeout 90 "$@" "$wine" "$exe" run --allow-weaker --policy "$rules" \
    --audit "$audit" -- cmd /c read.cmd >"$ws/tty.out" 2>&1
}
rm -f typed.txt
tty_run --answer "o @CODE" --type hello-typed --after ask-now --; got=$?
if [ "$got" -eq 0 ] && [ "$(tr -d '\r' <typed.txt 2>/dev/null)" = "got hello-typed" ]; then
  echo "ok   a prompt answered on cordon's console runs the command, which reads only what was typed after it started"
else
  echo "FAIL the terminal-channel allow: exit $got, typed.txt: $(cat typed.txt 2>&1)"; tail -c 1500 "$ws/tty.out"; failed=1
fi
grep -q '"event":"approval_decided".*"decision":"allow_once".*"channel":"terminal"' "$audit" \
  || { echo "FAIL the terminal's answer is not in $audit"; failed=1; }
rm -f typed.txt
tty_run --answer "o 0000" --answer d --; got=$?
if [ "$got" -eq 126 ] && [ ! -e typed.txt ] && grep -q "not this question's code" "$ws/tty.out" \
   && grep -q '"event":"approval_decided".*"decision":"deny".*"channel":"terminal"' "$audit"; then
  echo "ok   an allow with the wrong code is refused and asked again; the deny after it is 126 (logged), the command never ran"
else
  echo "FAIL the terminal-channel wrong code: exit $got, typed.txt $( [ -e typed.txt ] && echo present || echo absent)"; tail -c 1500 "$ws/tty.out"; failed=1
fi
kill "$console_pid" 2>/dev/null; wait "$console_pid" 2>/dev/null
[ "$failed" -eq 0 ] && echo "== cordon.exe under Wine: all checks passed"
exit "$failed"
