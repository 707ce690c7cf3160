<#
.SYNOPSIS
  Checks cordon's guarantees on a real Windows machine, judged by the state afterwards.

.DESCRIPTION
  Wine runs cordon's Win32 calls but enforces neither tokens nor ACLs, so what the sandbox
  refuses can only be checked here. Each check runs one command in the sandbox and then looks
  at the machine: a file absent, a file unchanged, an ACL unchanged, a process gone.
  A check prints PASS or FAIL; the script exits with the number of failures.

  Run it as your ordinary (unelevated) user, in a scratch folder it creates under %TEMP%.
  By default it drives the backend's minimal runner (built with
  `cargo build -p cordon-windows --example cordon-windows-run`); pass -Runner to check the
  real CLI (`cargo build -p cordon-cli`):  -Runner 'target\debug\cordon.exe','run'

.EXAMPLE
  powershell -ExecutionPolicy Bypass -File scripts\windows-smoke.ps1 -Runner 'target\debug\examples\cordon-windows-run.exe'
#>
param(
    [string[]]$Runner = @('target\debug\examples\cordon-windows-run.exe'),
    # Elevated mode's checks (deny-read, network, runs as the account) need `cordon setup
    # --elevated` first, and the real CLI as the runner (-Runner 'target\debug\cordon.exe','run').
    [switch]$Elevated,
    # Last, and destructive: `cordon setup --elevated`, one elevated run (a broker left
    # running), then `cordon setup --elevated --remove`, judged by the machine (accounts,
    # group, logon-screen values, passwords, firewall rules, WFP objects, user rights, ACEs,
    # brokers all gone), then a second removal that must succeed with nothing to do. Needs
    # the real CLI as the runner; best run from an administrator PowerShell (otherwise each
    # setup, removal and WFP read asks UAC).
    [switch]$Remove
)

# Native commands write to stderr; under 'Stop' Windows PowerShell would turn that into errors.
$ErrorActionPreference = 'Continue'
$script:failures = 0
$script:passes = 0

function Check([string]$name, [bool]$ok, [string]$detail = '') {
    if ($ok) {
        $script:passes++
        Write-Host "PASS  $name"
    } else {
        $script:failures++
        Write-Host "FAIL  $name  $detail" -ForegroundColor Red
    }
}

# A PowerShell string literal for $s (paths may hold spaces or apostrophes).
function Q([string]$s) { "'" + $s.Replace("'", "''") + "'" }

$exe = $Runner[0]
$pre = @()
# @() keeps a single extra word (`run`) an array, so `+` appends instead of concatenating.
if ($Runner.Length -gt 1) { $pre = @($Runner[1..($Runner.Length - 1)]) }

# Runs one PowerShell script in the sandbox; returns its exit status. -EncodedCommand carries
# the script as base64 UTF-16, so no quoting layer (cmd.exe's least of all) can change it.
function Sandboxed([string]$ws, [string]$body, [string[]]$extra = @(), [switch]$NoWeaker) {
    $b64 = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($body))
    $weaker = @('--allow-weaker')
    if ($NoWeaker) { $weaker = @() }
    $cmdArgs = $pre + @('-w', $ws) + $weaker + $extra + @('--', 'powershell.exe', '-NoProfile', '-NonInteractive', '-EncodedCommand', $b64)
    & $exe @cmdArgs 2>&1 | Out-Host
    return $LASTEXITCODE
}

function New-Workspace([string]$name) {
    $ws = Join-Path $root $name
    New-Item -ItemType Directory -Path $ws | Out-Null
    if ($git) {
        & git -C $ws init -q 2>&1 | Out-Null
        & git -C $ws config user.email smoke@example.invalid
        & git -C $ws config user.name smoke
        Set-Content -LiteralPath (Join-Path $ws 'a.txt') -Value 'one'
        & git -C $ws add a.txt
        & git -C $ws commit -q -m first 2>&1 | Out-Null
    } else {
        New-Item -ItemType Directory -Path (Join-Path $ws '.git\hooks') -Force | Out-Null
        New-Item -ItemType Directory -Path (Join-Path $ws '.git\objects') -Force | Out-Null
        Set-Content -LiteralPath (Join-Path $ws '.git\config') -Value '[core]'
    }
    return $ws
}

function Unique([string]$dir, [string]$ext = '.txt') {
    Join-Path $dir ('cordon-smoke-' + [guid]::NewGuid().ToString('N') + $ext)
}

$git = [bool](Get-Command git -ErrorAction SilentlyContinue)
$root = Join-Path $env:TEMP ('cordon smoke ' + [guid]::NewGuid().ToString('N').Substring(0, 8))
New-Item -ItemType Directory -Path $root | Out-Null
$outside = Join-Path $root 'outside'
New-Item -ItemType Directory -Path $outside | Out-Null
Write-Host "scratch folder (with a space on purpose): $root"

# --- fail closed -------------------------------------------------------------------------
if (-not $Elevated) {
    $ws = New-Workspace 'failclosed'
    $marker = Join-Path $ws 'ran.txt'
    $rc = Sandboxed $ws "Set-Content -LiteralPath $(Q $marker) -Value x" -NoWeaker
    Check 'the default policy fails closed unelevated (125, command not run)' ($rc -eq 125 -and -not (Test-Path $marker)) "exit $rc"
}

# --- legitimate work ---------------------------------------------------------------------
$ws = New-Workspace 'legit'
$rc = Sandboxed $ws "Set-Content -LiteralPath inside.txt -Value made"
Check 'a write inside the workspace works' ((Test-Path (Join-Path $ws 'inside.txt')) -and $rc -eq 0) "exit $rc"
$rc = Sandboxed $ws 'exit 7'
Check 'the exit code is relayed' ($rc -eq 7) "exit $rc"
$rc = Sandboxed $ws 'New-Item -ItemType Directory sub\deeper -Force | Out-Null; Set-Content sub\deeper\f.txt x; Remove-Item -Recurse sub; if (Test-Path sub) { exit 1 }'
Check 'files and folders inside can be made and removed' ($rc -eq 0 -and -not (Test-Path (Join-Path $ws 'sub'))) "exit $rc"
$rc = Sandboxed $ws 'cmd /c "echo x> nul"; if ($LASTEXITCODE) { exit 1 }; Set-Content (Join-Path $env:TEMP t.txt) x; if (-not (Test-Path (Join-Path $env:TEMP t.txt))) { exit 2 }'
Check 'NUL and the sandbox TEMP are writable' ($rc -eq 0) "exit $rc"
if ($git) {
    $before = [int](& git -C $ws rev-list --count HEAD)
    $rc = Sandboxed $ws 'Set-Content a.txt two; git add a.txt; git commit -q -m second; exit $LASTEXITCODE'
    $after = [int](& git -C $ws rev-list --count HEAD)
    Check 'git add and commit work inside' ($rc -eq 0 -and $after -eq $before + 1) "exit $rc, commits $before -> $after"
}

# --- the console: cordon on a console gives the command a pseudo console (exec::conpty) -----
# Needs this script to run in a console window: cordon is started on that same console
# (Start-Process -NoNewWindow), not through a pipe as Sandboxed does. The command sees a
# console (its output not redirected) as wide as this one, but a console of its own: the
# only process attached to it is the command (on this console there would be this script,
# cordon and the command). Its exit status comes back. Elevated too: there the broker makes
# the pseudo console, over pipes cordon hands it, and cordon relays them (docs/windows.md).
if (-not [Console]::IsOutputRedirected) {
    $cws = New-Workspace 'conpty'
    $cbody = @'
Add-Type -Namespace CordonSmoke -Name Con -MemberDefinition '[DllImport("kernel32.dll")] public static extern uint GetConsoleProcessList(uint[] list, uint count);'
$n = [CordonSmoke.Con]::GetConsoleProcessList((New-Object 'uint32[]' 64), 64)
Set-Content -LiteralPath conpty.txt -Value ("{0} {1} {2}" -f [Console]::WindowWidth, [Console]::IsOutputRedirected, $n)
exit 5
'@
    $cb64 = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($cbody))
    # Start-Process joins its arguments with spaces: the workspace (with a space) is quoted.
    $cline = ($pre + @('-w', ('"' + $cws + '"'), '--allow-weaker', '--', 'powershell.exe', '-NoProfile', '-NonInteractive', '-EncodedCommand', $cb64)) -join ' '
    $cp = Start-Process -FilePath $exe -ArgumentList $cline -NoNewWindow -Wait -PassThru
    $cseen = Get-Content -LiteralPath (Join-Path $cws 'conpty.txt') -ErrorAction SilentlyContinue
    $cmode = if ($Elevated) { 'elevated (the broker''s)' } else { 'unelevated' }
    Check "on a console, $($cmode): the command gets a pseudo console of its own (one process attached), as wide as this one, and its exit status is relayed" ($cp.ExitCode -eq 5 -and $cseen -eq "$([Console]::WindowWidth) False 1") "exit $($cp.ExitCode), saw '$cseen' (width, redirected, processes attached)"
} else {
    Write-Host "note  not on a console: the pseudo-console check is skipped"
}

# A command cannot attach itself to the user's console (this script's), through which it
# could type into the user's shell after the run (WriteConsoleInput): judged by what
# AttachConsole answered inside. Unelevated, the restricted token is the user's own, so this
# is the check that says whether the weaker mode keeps it out.
if (-not [Console]::IsOutputRedirected) {
    $aws = New-Workspace 'attach-console'
    $abody = @"
Add-Type -Namespace CordonSmoke -Name Att -MemberDefinition '[DllImport("kernel32.dll")] public static extern bool FreeConsole(); [DllImport("kernel32.dll")] public static extern bool AttachConsole(uint pid);'
[void][CordonSmoke.Att]::FreeConsole()
`$ok = [CordonSmoke.Att]::AttachConsole($PID)
Set-Content -LiteralPath attach.txt -Value "`$ok"
"@
    $null = Sandboxed $aws $abody
    $attached = Get-Content -LiteralPath (Join-Path $aws 'attach.txt') -ErrorAction SilentlyContinue
    Check "a command cannot attach to the user's console (AttachConsole of this script's process)" ("$attached".Trim() -eq 'False') "AttachConsole answered '$attached'"
}

# --- writes outside ----------------------------------------------------------------------
function Refused([string]$name, [string]$target) {
    $rc = Sandboxed $ws "Set-Content -LiteralPath $(Q $target) -Value x"
    $present = Test-Path -LiteralPath $target
    Check $name (-not $present) "exit $rc"
    if ($present) { Remove-Item -LiteralPath $target -Force }
}
Refused 'a write outside the workspace is refused' (Unique $outside)
Refused 'a write into the home folder is refused' (Unique $env:USERPROFILE)
Refused "a write into the user's own %TEMP% is refused" (Unique $env:TEMP)
Refused 'a Startup-folder script cannot be planted' (Unique (Join-Path $env:APPDATA 'Microsoft\Windows\Start Menu\Programs\Startup') '.cmd')
Refused 'a PowerShell profile cannot be planted' (Join-Path ([Environment]::GetFolderPath('MyDocuments')) ('WindowsPowerShell\cordon-smoke-' + [guid]::NewGuid().ToString('N') + '.ps1'))
# Everyone-writable folders are found by the audit and denied (exec::audit).
Refused 'a write into C:\Users\Public (Everyone-writable) is refused' (Unique $env:PUBLIC)

# --- protected paths ---------------------------------------------------------------------
$hook = Join-Path $ws '.git\hooks\pre-commit'
$rc = Sandboxed $ws 'Set-Content .git\hooks\pre-commit evil'
Check '.git\hooks cannot be written' (-not (Test-Path $hook)) "exit $rc"
$config = Join-Path $ws '.git\config'
$config_before = Get-Content -Raw $config
$rc = Sandboxed $ws 'Add-Content .git\config "[core]`n  fsmonitor = calc"'
Check '.git\config cannot be changed' ((Get-Content -Raw $config) -eq $config_before) "exit $rc"
if ($git) {
    $rc = Sandboxed $ws 'git config core.hooksPath evil'
    Check 'git config cannot set core.hooksPath' ((Get-Content -Raw $config) -eq $config_before) "exit $rc"
}
$rc = Sandboxed $ws 'Set-Content .git\info\attributes x'
Check '.git\info cannot be written' (-not (Test-Path (Join-Path $ws '.git\info\attributes'))) "exit $rc"
$rc = Sandboxed $ws 'Remove-Item -Recurse -Force .cordon.toml; Set-Content .cordon.toml "[sandbox]`nallow_weaker = true"'
Check '.cordon.toml cannot be planted' (-not (Test-Path -PathType Leaf (Join-Path $ws '.cordon.toml'))) "exit $rc"
$rc = Sandboxed $ws 'Set-Content .git\commondir ..\elsewhere'
Check '.git\commondir cannot be planted' ((Get-Content -Raw (Join-Path $ws '.git\commondir')).Trim() -eq '.') "exit $rc"
$rc = Sandboxed $ws 'Rename-Item .git git-old'
Check '.git cannot be renamed' ((Test-Path (Join-Path $ws '.git\config')) -and -not (Test-Path (Join-Path $ws 'git-old'))) "exit $rc"
$rc = Sandboxed $ws 'Remove-Item -Recurse -Force .git'
Check '.git cannot be removed' (Test-Path (Join-Path $ws '.git\config')) "exit $rc"
$rc = Sandboxed $ws 'Rename-Item .git\hooks hooks-old; New-Item -ItemType Directory .git\hooks | Out-Null; Set-Content .git\hooks\pre-commit evil'
Check '.git\hooks cannot be swapped' (-not (Test-Path $hook)) "exit $rc"
$rc = Sandboxed $ws 'Set-Content .git. x; Set-Content ".git\hooks .\pre-commit" evil'
Check 'trailing dots and spaces give no way round' (-not (Test-Path $hook) -and (Test-Path (Join-Path $ws '.git\config'))) "exit $rc"
$acl_before = (icacls (Join-Path $ws '.git\hooks')) -join "`n"
$rc = Sandboxed $ws 'icacls .git\hooks /reset; icacls .git\hooks /grant "*S-1-1-0:(OI)(CI)F"'
$acl_after = (icacls (Join-Path $ws '.git\hooks')) -join "`n"
Check "the sandbox cannot rewrite a protected path's ACL" ($acl_before -eq $acl_after) "exit $rc"
$rc = Sandboxed $ws "Rename-Item -LiteralPath $(Q $ws) moved"
Check 'the workspace itself cannot be renamed' (Test-Path $ws) "exit $rc"

# --- processes and limits ----------------------------------------------------------------
$t0 = Get-Date
$rc = Sandboxed $ws 'Start-Process ping.exe -ArgumentList "-n","60","127.0.0.1" -WindowStyle Hidden; exit 0'
Start-Sleep -Seconds 2
$left = @(Get-Process ping -ErrorAction SilentlyContinue | Where-Object { $_.StartTime -gt $t0 })
Check 'nothing started inside outlives the command' ($left.Count -eq 0) "$($left.Count) ping left"
$left | Stop-Process -Force -ErrorAction SilentlyContinue
$t0 = Get-Date
$rc = Sandboxed $ws 'ping.exe -n 60 127.0.0.1 | Out-Null' @('--timeout', '3s')
$took = [int]((Get-Date) - $t0).TotalSeconds
Check '--timeout ends the command with 124' ($rc -eq 124 -and $took -lt 30) "exit $rc after $took s"
$limitLog = Join-Path $root 'limits-audit.jsonl'
$rc = Sandboxed $ws '$a = New-Object byte[] (1GB); $a[0] = 1; exit 0' @('--memory', '256M', '--audit', $limitLog)
Check '--memory stops a tree that allocates more' ($rc -ne 0) "exit $rc"
$trips = @(Get-Content -LiteralPath $limitLog -ErrorAction SilentlyContinue | ForEach-Object { $_ | ConvertFrom-Json } | Where-Object { $_.event -eq 'limit_exceeded' })
Check '--memory: the refused allocation is a limit_exceeded audit event (memory)' (@($trips | Where-Object { $_.limit -eq 'memory' }).Count -ge 1) "$($trips.Count) limit events in $limitLog"
$rc = Sandboxed $ws 'cmd.exe /c "cmd.exe /c exit 0"; exit $LASTEXITCODE' @('--pids', '2', '--audit', $limitLog)
$trips = @(Get-Content -LiteralPath $limitLog -ErrorAction SilentlyContinue | ForEach-Object { $_ | ConvertFrom-Json } | Where-Object { $_.event -eq 'limit_exceeded' -and $_.limit -eq 'pids' })
Check '--pids: a process start past the limit is refused and logged (limit_exceeded pids)' ($trips.Count -ge 1) "exit $rc, $($trips.Count) pids events"
# The ACLs each run rests on are an acl_applied event (the real CLI's audit log): a new
# workspace's first run writes its ACEs, the second finds them in place and writes none.
if ($pre -contains 'run') {
    $aws = New-Workspace 'acl-audit'
    $aclLog = Join-Path $root 'acl-audit.jsonl'
    $null = Sandboxed $aws 'exit 0' @('--audit', $aclLog)
    $null = Sandboxed $aws 'exit 0' @('--audit', $aclLog)
    $acl = @(Get-Content -LiteralPath $aclLog -ErrorAction SilentlyContinue | ForEach-Object { $_ | ConvertFrom-Json } | Where-Object { $_.event -eq 'acl_applied' })
    $firstDeny = @($acl | Select-Object -First 1 | ForEach-Object { $_.written } | Where-Object { $_.ace -eq 'deny' -and $_.reason -eq 'protected' })
    Check "acl_applied: a new workspace's first run logs the ACEs it wrote (a protected path's deny among them)" ($acl.Count -eq 2 -and $firstDeny.Count -ge 1) "$($acl.Count) acl_applied events in $aclLog"
    Check 'acl_applied: the second run writes no ACE and says how many it found in place' ($acl.Count -eq 2 -and @($acl[1].written).Count -eq 0 -and $acl[1].skipped -gt 0) "second: $($acl[1] | ConvertTo-Json -Compress -Depth 4)"
}
$rc = Sandboxed $ws 'exit [Math]::Min(250, @(Get-Process).Count)'
Write-Host "note  unelevated, the sandbox sees your processes ($rc or more listed); documented in docs/windows.md"

# --- elevated mode: what `cordon setup --elevated` put in place --------------------------
# Judged from the machine (accounts, registry, firewall), then by commands started as the
# offline account itself with its stored password (Start-Process -Credential, no profile):
# the account-level guarantees hold whatever starts the command.
if ($Elevated) {
    $group = 'CordonSandboxUsers'
    $offline = 'CordonSandboxOffline'
    foreach ($name in @($offline, 'CordonSandboxOnline')) {
        $user = Get-LocalUser -Name $name -ErrorAction SilentlyContinue
        Check "account $name exists" ($null -ne $user)
        $member = Get-LocalGroupMember -Group $group -ErrorAction SilentlyContinue | Where-Object { $_.Name -like "*\$name" }
        Check "$name is in $group" ($null -ne $member)
        $hidden = Get-ItemProperty -Path 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\SpecialAccounts\UserList' -Name $name -ErrorAction SilentlyContinue
        Check "$name is hidden from the logon screen" ($null -ne $hidden -and $hidden.$name -eq 0)
    }
    $sid = (Get-LocalUser -Name $offline -ErrorAction SilentlyContinue).SID.Value
    $rules = @(Get-NetFirewallRule -DisplayName 'cordon: *' -ErrorAction SilentlyContinue)
    Check 'cordon firewall rules exist' ($rules.Count -ge 1) "$($rules.Count) rules"
    foreach ($r in $rules) {
        $scope = ($r | Get-NetFirewallSecurityFilter).LocalUser
        Check "firewall rule '$($r.DisplayName)' blocks outbound, scoped to $offline" ($r.Enabled -eq 'True' -and $r.Action -eq 'Block' -and $r.Direction -eq 'Outbound' -and $scope -like "*$sid*") "action $($r.Action), scope $scope"
    }
    $state = Join-Path $env:LOCALAPPDATA 'cordon\state\elevated'
    $pwfile = Join-Path $state "$offline.dpapi"
    if (Test-Path $pwfile) {
        Add-Type -AssemblyName System.Security
        $bytes = [Security.Cryptography.ProtectedData]::Unprotect([IO.File]::ReadAllBytes($pwfile), $null, 'CurrentUser')
        $secure = ConvertTo-SecureString ([Text.Encoding]::UTF8.GetString($bytes)) -AsPlainText -Force
        $cred = New-Object Management.Automation.PSCredential(".\$offline", $secure)
        function AsOffline([string]$body) {
            $b64 = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($body))
            $p = Start-Process -FilePath powershell.exe -Credential $cred -WorkingDirectory $env:SystemRoot -WindowStyle Hidden -Wait -PassThru -ArgumentList @('-NoProfile', '-NonInteractive', '-EncodedCommand', $b64)
            return $p.ExitCode
        }
        $rc = AsOffline 'exit 5'
        Check "a command runs as $offline (stored password, no profile)" ($rc -eq 5) "exit $rc"
        $rc = AsOffline 'try { (New-Object Net.Sockets.TcpClient).Connect("1.1.1.1", 443); exit 0 } catch { exit 3 }'
        Check "$offline cannot open TCP to the internet" ($rc -eq 3) "exit $rc"
        $rc = AsOffline 'try { $u = New-Object Net.Sockets.UdpClient; $u.Connect("1.1.1.1", 53); [void]$u.Send([byte[]](1..20), 20); $u.Client.ReceiveTimeout = 2000; $ep = $null; [void]$u.Receive([ref]$ep); exit 0 } catch { exit 3 }'
        Check "$offline cannot send DNS over UDP" ($rc -eq 3) "exit $rc"
        $rc = AsOffline 'if (Test-Connection 1.1.1.1 -Count 1 -Quiet) { exit 0 } else { exit 3 }'
        Check "$offline cannot ping" ($rc -eq 3) "exit $rc"
        # Known gap, reported not hidden: name resolution through the DNS Client service is
        # made by that service, not by the account (docs/windows.md).
        $rc = AsOffline 'try { [Net.Dns]::GetHostAddresses("example.com") | Out-Null; exit 0 } catch { exit 3 }'
        Write-Host "note  resolving a name through the DNS Client service as $offline exits $rc (0 = the gap documented in docs/windows.md is open)"
        $rc = AsOffline "try { [IO.File]::ReadAllBytes($(Q $pwfile)) | Out-Null; exit 0 } catch { exit 3 }"
        Check "$offline cannot read cordon's state folder (deny-read)" ($rc -eq 3) "exit $rc"
    } else {
        Check "the stored password of $offline exists" $false $pwfile
    }

    # Fail closed: the default policy (network off) is refused in the elevated mode too, since
    # a name lookup (the DNS Client service) and SMB to \\host\share paths get past the
    # account's block (docs/windows.md, "Known gaps"); that is the only area it names.
    $fws = New-Workspace 'elevated-failclosed'
    $marker = Join-Path $fws 'ran.txt'
    $fb64 = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes("Set-Content -LiteralPath $(Q $marker) -Value x"))
    $out = (& $exe @($pre + @('-w', $fws, '--', 'powershell.exe', '-NoProfile', '-NonInteractive', '-EncodedCommand', $fb64)) 2>&1 | Out-String)
    $rc = $LASTEXITCODE
    Check 'the default policy is refused elevated too (125), naming the DNS Client service and SMB, and nothing else' ($rc -eq 125 -and -not (Test-Path $marker) -and $out -match 'DNS Client service' -and $out -match 'SMB' -and $out -notmatch '(read|processes|limits|write|protected): ') "exit $rc, output: $out"

    # Through the runner: an elevated `cordon run`, with --allow-weaker for the network gaps
    # above (each run says so). The command is started by cordon's broker as the account
    # (`cordon __broker`, started by the first run with CreateProcessWithLogonW without a
    # profile), docs/windows.md "The broker".
    $ews = New-Workspace 'elevated'
    $b64 = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes('whoami; [Environment]::UserName | Set-Content -LiteralPath whoami.txt'))
    $out = (& $exe @($pre + @('-w', $ews, '--allow-weaker', '--', 'powershell.exe', '-NoProfile', '-NonInteractive', '-EncodedCommand', $b64)) 2>&1 | Out-String)
    $rc = $LASTEXITCODE
    $name = (Get-Content -Raw -LiteralPath (Join-Path $ews 'whoami.txt') -ErrorAction SilentlyContinue)
    Check "an elevated cordon run runs as $offline" ($rc -eq 0 -and "$name".Trim() -eq $offline) "exit $rc, user '$name', output: $out"
    Check "its standard output is relayed (whoami)" ($out -match [regex]::Escape($offline.ToLower())) "output: $out"
    $rc = Sandboxed $ews 'exit 9'
    Check 'an elevated run relays the exit status' ($rc -eq 9) "exit $rc"
    $rc = Sandboxed $ews 'exit 300'
    Check 'an elevated run relays an exit status above 255' ($rc -eq 300) "exit $rc"
    # The secret sits in the workspace, which the sandbox group may read, so only the
    # deny-read ACE can stop the read; its sibling is the control.
    $secret = Join-Path $ews 'secret.txt'
    Set-Content -LiteralPath $secret -Value 'the secret'
    Set-Content -LiteralPath (Join-Path $ews 'plain.txt') -Value 'plain'
    $rc = Sandboxed $ews 'try { Get-Content -Raw plain.txt | Set-Content -LiteralPath read-plain.txt } catch {}; try { Get-Content -Raw secret.txt | Set-Content -LiteralPath read-secret.txt } catch {}; exit 0' @('--deny-read', $secret)
    Check 'an elevated run reads an ordinary file of the workspace (control)' (Test-Path (Join-Path $ews 'read-plain.txt')) "exit $rc"
    $leak = Get-Content -Raw -LiteralPath (Join-Path $ews 'read-secret.txt') -ErrorAction SilentlyContinue
    Check 'an elevated run cannot read a --deny-read file' (-not ("$leak" -match 'the secret')) "exit $rc, read: $leak"
    # A program folder in your profile, which admits only you: the plan grants the sandbox
    # group read on it because PATH names it (docs/windows.md, "Program folders in the
    # developer's profile"), and a secret inside keeps its own deny.
    $tools = Join-Path $HOME ".cordon-smoke-tools-$PID"
    $tbin = Join-Path $tools 'bin'
    New-Item -ItemType Directory -Force -Path $tbin | Out-Null
    Set-Content -LiteralPath (Join-Path $tbin 'cordon-smoke-tool.cmd') -Value "@echo off`r`necho tool-ran> tool-ran.txt"
    $toolSecret = Join-Path $tools 'credentials.txt'
    Set-Content -LiteralPath $toolSecret -Value 'the tool secret'
    $savedPath = $env:PATH
    $env:PATH = "$tbin;$env:PATH"
    $out = (& $exe @($pre + @('-w', $ews, '--allow-weaker', '--deny-read', $toolSecret, '--', 'cmd.exe', '/c', 'cordon-smoke-tool.cmd')) 2>&1 | Out-String)
    $rc = $LASTEXITCODE
    Check 'an elevated run starts a program from a folder of your profile that PATH names' (Test-Path (Join-Path $ews 'tool-ran.txt')) "exit $rc, output: $out"
    $rc = Sandboxed $ews "try { Get-Content -Raw -LiteralPath $(Q $toolSecret) | Set-Content -LiteralPath read-tool-secret.txt } catch {}; exit 0" @('--deny-read', $toolSecret)
    $leak = Get-Content -Raw -LiteralPath (Join-Path $ews 'read-tool-secret.txt') -ErrorAction SilentlyContinue
    Check 'a --deny-read file inside that program folder stays unreadable' (-not ("$leak" -match 'the tool secret')) "exit $rc, read: $leak"
    $env:PATH = $savedPath
    Remove-Item -Recurse -Force -LiteralPath $tools -ErrorAction SilentlyContinue
    $rc = Sandboxed $ews 'Set-Content .git\hooks\pre-commit evil; exit 0'
    Check 'an elevated run cannot write .git\hooks (the account is granted the workspace, the write SID is denied)' (-not (Test-Path (Join-Path $ews '.git\hooks\pre-commit'))) "exit $rc"
    $rc = Sandboxed $ews "Set-Content -LiteralPath $(Q (Unique $outside)) -Value x; exit 0"
    Check 'an elevated run cannot write outside the workspace' (@(Get-ChildItem -LiteralPath $outside -Filter 'cordon-smoke-*').Count -eq 0) "exit $rc"
    $t0 = Get-Date
    $rc = Sandboxed $ews 'Start-Process ping.exe -ArgumentList "-n","60","127.0.0.1" -WindowStyle Hidden; exit 0'
    Start-Sleep -Seconds 2
    $left = @(Get-Process ping -ErrorAction SilentlyContinue | Where-Object { $_.StartTime -gt $t0 })
    Check 'nothing an elevated run starts outlives it' ($left.Count -eq 0) "$($left.Count) ping left"
    $rc = Sandboxed $ews 'ping.exe -n 60 127.0.0.1 | Out-Null' @('--timeout', '3s')
    Check 'an elevated run ends with 124 at --timeout' ($rc -eq 124) "exit $rc"
    $rc = Sandboxed $ews 'exit [Math]::Min(250, @(Get-Process | Where-Object { $_.Id -ne $PID -and $(try { [bool]$_.Handle } catch { $false }) }).Count)'
    Write-Host "note  an elevated run can open $rc processes with full access (its own tree only expected: your processes' DACLs do not admit the account)"

    $ssh = Join-Path $env:USERPROFILE '.ssh'
    if (Test-Path $ssh) {
        $rc = Sandboxed $ews "Get-ChildItem -Force -LiteralPath $(Q $ssh) | Out-File listing.txt"
        $listing = Get-Content -Raw (Join-Path $ews 'listing.txt') -ErrorAction SilentlyContinue
        Check '~\.ssh cannot be read' ([string]::IsNullOrWhiteSpace($listing)) "exit $rc"
    }
    $rc = Sandboxed $ews 'try { (New-Object Net.Sockets.TcpClient).Connect("1.1.1.1", 443); exit 0 } catch { exit 3 }'
    Check 'no TCP out with --net off' ($rc -eq 3) "exit $rc"
    $rc = Sandboxed $ews 'try { Resolve-DnsName example.com -Server 1.1.1.1 -ErrorAction Stop | Out-Null; exit 0 } catch { exit 3 }'
    Check 'no DNS out with --net off' ($rc -eq 3) "exit $rc"
    $rc = Sandboxed $ews 'if (Test-Connection 1.1.1.1 -Count 1 -Quiet) { exit 0 } else { exit 3 }'
    Check 'no ICMP out with --net off' ($rc -eq 3) "exit $rc"
    $t0 = Get-Date
    foreach ($i in 1..5) { $null = Sandboxed $ews 'exit 0' }
    $per = [int](((Get-Date) - $t0).TotalMilliseconds / 5)
    Write-Host "note  an elevated run of 'exit 0' (powershell.exe included) takes $per ms (docs/windows.md, per-command cost model)"

    # The long-lived broker (`cordon __broker`, docs/windows.md "The broker"): the runs above
    # went through it. One per (developer, account), kept across runs, shielded from the
    # commands it starts, its pipe closed to them.
    # Between runs the only cordon.exe left is the broker (another user's process: its id is
    # visible, its owner and command line need more than the developer holds).
    function Brokers() { @(Get-Process -Name cordon -ErrorAction SilentlyContinue | ForEach-Object Id) }
    function BrokerPipes() { @(Get-ChildItem \\.\pipe\ | Where-Object Name -like 'cordon-broker-*') }
    $first = Brokers
    $pipes = BrokerPipes
    Check "one broker runs after elevated runs (one cordon.exe, one broker pipe)" ($first.Count -eq 1 -and $pipes.Count -eq 1) "$($first.Count) cordon.exe, $($pipes.Count) pipes"
    $null = Sandboxed $ews 'exit 0'
    $again = Brokers
    Check 'the next elevated run starts no new broker (same process)' ($again.Count -eq 1 -and $first.Count -eq 1 -and $again[0] -eq $first[0]) "before: $first, after: $again"
    if ($again.Count -eq 1) {
        $bpid = $again[0]
        $probeOpen = @'
Add-Type -Namespace Cordon -Name K -MemberDefinition '[DllImport("kernel32.dll", SetLastError=true)] public static extern System.IntPtr OpenProcess(uint a, bool i, uint p);'
$open = @()
foreach ($right in 0x10, 0x20, 0x40, 0x400, 0x1000, 0x40000, 0x1) { if ([Cordon.K]::OpenProcess($right, $false, BPID) -ne [IntPtr]::Zero) { $open += ('{0:x}' -f $right) } }
$open -join ',' | Set-Content -LiteralPath broker-open.txt
'@
        $rc = Sandboxed $ews ($probeOpen.Replace('BPID', "$bpid"))
        $opened = (Get-Content -Raw -LiteralPath (Join-Path $ews 'broker-open.txt') -ErrorAction SilentlyContinue)
        Check "a command cannot open the broker's process (VM read/write, dup handle, query, WRITE_DAC, terminate)" ($rc -eq 0 -and (Test-Path (Join-Path $ews 'broker-open.txt')) -and [string]::IsNullOrWhiteSpace($opened)) "exit $rc, opened with: $opened"
        $probePipe = @'
$names = @(Get-ChildItem \\.\pipe\ | Where-Object Name -like 'cordon-broker-*' | ForEach-Object Name)
$got = @()
foreach ($n in $names) { try { $c = [IO.Pipes.NamedPipeClientStream]::new('.', $n, [IO.Pipes.PipeDirection]::InOut); $c.Connect(2000); $got += $n; $c.Dispose() } catch {} }
"$($names.Count) $($got -join ',')" | Set-Content -LiteralPath broker-pipe.txt
'@
        $rc = Sandboxed $ews $probePipe
        $pipeSeen = "$(Get-Content -Raw -LiteralPath (Join-Path $ews 'broker-pipe.txt') -ErrorAction SilentlyContinue)".Trim()
        Check "a command cannot connect to the broker's pipe" ($rc -eq 0 -and $pipeSeen -match '^[1-9]\d*$') "exit $rc, pipes and connections: '$pipeSeen'"
        Write-Host "note  the broker (pid $bpid) exits 10 minutes after its last command and with your logon session; not waited for here"
    }

    # --- begin: --net allow through cordon's proxy (crates/cli/src/windows_net.rs) ----------
    # A block of its own, kept by the proxy's owner. The only place "the offline account
    # reaches only the proxy" is checked: Wine enforces no firewall. Needs the internet
    # (example.com through the proxy). One run, judged afterwards by what it wrote, the
    # audit log, and a listener of ours on loopback that must have received nothing.
    $probe = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
    $probe.Start()
    $probePort = $probe.LocalEndpoint.Port
    $alog = Join-Path $root 'net-allow-audit.jsonl'
    $netOut = Join-Path $ews 'net-allow.txt'
    $body = @'
[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12
$out = @("proxy=$env:HTTPS_PROXY")
function Fetch([string]$url, [string]$proxy) {
    $r = [Net.WebRequest]::Create($url)
    $r.Proxy = New-Object Net.WebProxy($proxy)
    $r.Timeout = 30000
    try { $resp = $r.GetResponse(); $code = [int]$resp.StatusCode; $resp.Close(); return "$code" }
    catch [Net.WebException] {
        $e = $_.Exception.Response
        if ($e) { return "$([int]$e.StatusCode) $($e.Headers['X-Cordon-Refused'])" }
        return "error $($_.Exception.Message)"
    }
    catch { return "error $($_.Exception.Message)" }
}
$out += "allowed=$(Fetch 'https://example.com/' $env:HTTPS_PROXY)"
$out += "refused=$(Fetch 'http://example.org/' $env:HTTP_PROXY)"
try { (New-Object Net.Sockets.TcpClient).Connect('1.1.1.1', 443); $out += 'direct=connected' } catch { $out += 'direct=blocked' }
try { (New-Object Net.Sockets.TcpClient).Connect('127.0.0.1', PROBE_PORT); $out += 'loopback=connected' } catch { $out += 'loopback=blocked' }
# Taking over the proxy's port (SO_REUSEADDR) must fail while cordon holds it: another account.
try { $l = New-Object Net.Sockets.TcpListener([Net.IPAddress]::Loopback, ([uri]$env:HTTP_PROXY).Port); $l.Server.SetSocketOption([Net.Sockets.SocketOptionLevel]::Socket, [Net.Sockets.SocketOptionName]::ReuseAddress, $true); $l.Start(); $l.Stop(); $out += 'squat=bound' } catch { $out += 'squat=refused' }
$out | Set-Content -LiteralPath net-allow.txt
# Held open while the script outside tries the proxy from processes not in this run's job.
Set-Content -LiteralPath net-allow-ready.txt -Value 1
$t = 0; while (-not (Test-Path net-allow-probed.txt) -and $t -lt 120) { Start-Sleep -Milliseconds 500; $t++ }
exit 0
'@
    $body = $body.Replace('PROBE_PORT', "$probePort")
    $ready = Join-Path $ews 'net-allow-ready.txt'
    $probed = Join-Path $ews 'net-allow-probed.txt'
    Remove-Item -LiteralPath $ready, $probed -ErrorAction SilentlyContinue
    # The run in the background, so that while it holds the proxy, the developer's own
    # process and an offline sandboxed run (the same account, another job) try to use it:
    # each connection must be turned away with 403 foreign-client (windows_net::RunJob).
    $b64 = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($body))
    $allowArgs = $pre + @('-w', $ews, '--allow-weaker', '--allow-domain', 'example.com', '--audit', $alog, '--', 'powershell.exe', '-NoProfile', '-NonInteractive', '-EncodedCommand', $b64)
    $bg = Start-Job -ScriptBlock { param($e, $a) & $e @a 2>&1 | Out-Null; $LASTEXITCODE } -ArgumentList $exe, $allowArgs
    $t = 0; while (-not (Test-Path -LiteralPath $ready) -and $t -lt 240) { Start-Sleep -Milliseconds 500; $t++ }
    $heldBy = (@(Get-Content -LiteralPath $netOut -ErrorAction SilentlyContinue) | Where-Object { $_ -like 'proxy=*' } | Select-Object -First 1) -replace '^proxy=', ''
    if (-not $heldBy) { $heldBy = 'http://127.0.0.1:47128' }
    function ProxyAnswer {
        $r = [Net.WebRequest]::Create('http://example.com/')
        $r.Proxy = New-Object Net.WebProxy($heldBy)
        $r.Timeout = 15000
        try { $resp = $r.GetResponse(); $code = [int]$resp.StatusCode; $resp.Close(); return "$code" }
        catch [Net.WebException] {
            $e = $_.Exception.Response
            if ($e) { return "$([int]$e.StatusCode) $($e.Headers['X-Cordon-Refused'])" }
            return "error $($_.Exception.Message)"
        }
    }
    $fromDeveloper = ProxyAnswer
    $ows = New-Workspace 'elevated-offline-probe'
    $offlineBody = "try { `$r = [Net.WebRequest]::Create('http://example.com/'); `$r.Proxy = New-Object Net.WebProxy('$heldBy'); `$resp = `$r.GetResponse(); Set-Content got.txt ([int]`$resp.StatusCode) } catch [Net.WebException] { `$e = `$_.Exception.Response; if (`$e) { Set-Content got.txt ""`$([int]`$e.StatusCode) `$(`$e.Headers['X-Cordon-Refused'])"" } else { Set-Content got.txt 'error' } }"
    $null = Sandboxed $ows $offlineBody @()
    $fromOffline = Get-Content -LiteralPath (Join-Path $ows 'got.txt') -ErrorAction SilentlyContinue
    # A second allow run at the same time gets a proxy of its own, on the next port.
    $sws = New-Workspace 'elevated-second-allow'
    $null = Sandboxed $sws 'Set-Content -LiteralPath p.txt -Value $env:HTTP_PROXY' @('--allow-domain', 'example.com')
    $secondProxy = Get-Content -LiteralPath (Join-Path $sws 'p.txt') -ErrorAction SilentlyContinue
    Set-Content -LiteralPath $probed -Value 1
    $rc = Receive-Job -Job $bg -Wait -AutoRemoveJob | Select-Object -Last 1
    Check "--net allow: the developer's own process is turned away by the run's proxy (not in its job)" ($fromDeveloper -eq '403 foreign-client') "got '$fromDeveloper'"
    Check '--net allow: an offline run (same account, another job) is turned away by the run''s proxy' ($fromOffline -eq '403 foreign-client') "got '$fromOffline'"
    Check '--net allow: a second allow run at the same time gets its own proxy on another port of 47128-47135' ($secondProxy -match '^http://127\.0\.0\.1:471(2[89]|3[0-5])$' -and $secondProxy -ne $heldBy) "first '$heldBy', second '$secondProxy'"
    $got = @{}
    foreach ($line in @(Get-Content -LiteralPath $netOut -ErrorAction SilentlyContinue)) {
        $k, $v = $line -split '=', 2
        $got[$k] = $v
    }
    $pending = $probe.Pending()
    $probe.Stop()
    Check '--net allow runs elevated and points the command at a port of 127.0.0.1:47128-47135' ($rc -eq 0 -and $got['proxy'] -match '^http://127\.0\.0\.1:471(2[89]|3[0-5])$') "exit $rc, HTTPS_PROXY '$($got['proxy'])'"
    Check '--net allow: an allowed domain is reached through the proxy (https://example.com, CONNECT)' ($got['allowed'] -eq '200') "got '$($got['allowed'])'"
    Check '--net allow: a domain off the list is refused with 403 and X-Cordon-Refused' ($got['refused'] -eq '403 not-on-allow-list') "got '$($got['refused'])'"
    Check '--net allow: a direct connection out is refused (firewall)' ($got['direct'] -eq 'blocked') "got '$($got['direct'])'"
    Check '--net allow: loopback other than the proxy is refused (WFP), our listener got nothing' ($got['loopback'] -eq 'blocked' -and -not $pending) "got '$($got['loopback'])', a connection pending: $pending"
    Check "--net allow: the sandbox cannot bind the proxy's port while cordon holds it" ($got['squat'] -eq 'refused') "got '$($got['squat'])'"
    $events = @(Get-Content -LiteralPath $alog -ErrorAction SilentlyContinue | ForEach-Object { $_ | ConvertFrom-Json } | Where-Object { $_.event -eq 'network' })
    $allowedEv = @($events | Where-Object { $_.host -eq 'example.com' -and $_.decision -eq 'allowed' })
    $refusedEv = @($events | Where-Object { $_.host -eq 'example.org' -and $_.decision -eq 'refused' })
    Check '--net allow: both decisions are in the audit log' ($allowedEv.Count -ge 1 -and $refusedEv.Count -ge 1) "$($events.Count) network events in $alog"
    # --- end: --net allow through cordon's proxy ---------------------------------------------

    # --- terminate_on_violation = ["network"] (--kill-on-violation network) -------------------
    # The first refused request of the run's own ends its whole job: the command starts a
    # child that would write late.txt after 5 s, makes a refused request (held unanswered),
    # and would write after.txt if it survived it. Judged by cordon's exit (137), the files
    # afterwards, and the audit log.
    $kws = New-Workspace 'elevated-kill-on-network'
    $klog = Join-Path $root 'kill-audit.jsonl'
    $killBody = @'
Start-Process -WindowStyle Hidden powershell.exe -ArgumentList '-NoProfile','-NonInteractive','-Command','Start-Sleep 5; Set-Content -LiteralPath late.txt -Value 1'
$r = [Net.WebRequest]::Create('http://example.org/')
$r.Proxy = New-Object Net.WebProxy($env:HTTP_PROXY)
$r.Timeout = 20000
try { $r.GetResponse().Close() } catch {}
Set-Content -LiteralPath after.txt -Value 1
exit 0
'@
    $krc = Sandboxed $kws $killBody @('--allow-domain', 'example.com', '--kill-on-violation', 'network', '--audit', $klog)
    Start-Sleep -Seconds 7
    $kev = @(Get-Content -LiteralPath $klog -ErrorAction SilentlyContinue | ForEach-Object { $_ | ConvertFrom-Json })
    $kRefused = @($kev | Where-Object { $_.event -eq 'network' -and $_.host -eq 'example.org' -and $_.decision -eq 'refused' })
    $kKilled = @($kev | Where-Object { $_.event -eq 'sandbox_killed' -and $_.class -eq 'network' })
    $kExit = @($kev | Where-Object { $_.event -eq 'command_exit' }) | Select-Object -Last 1
    Check 'terminate_on_violation network: the first refused request ends the run with 137' ($krc -eq 137) "exit $krc"
    Check 'terminate_on_violation network: nothing after the refusal ran (after.txt absent)' (-not (Test-Path -LiteralPath (Join-Path $kws 'after.txt')))
    Check "terminate_on_violation network: the command's child went with the job (late.txt absent)" (-not (Test-Path -LiteralPath (Join-Path $kws 'late.txt')))
    Check 'terminate_on_violation network: the refusal, sandbox_killed and command_exit 137 are logged' ($kRefused.Count -ge 1 -and $kKilled.Count -eq 1 -and $kExit.status -eq 137 -and $kExit.ending -eq 'signaled') "$($kev.Count) events in $klog"

    # --- network.unlisted = "ask": held until a human answers in `cordon console` ------------
    # The command asks for example.org (off the list) through the proxy, and tries to open the
    # run's control pipe itself; the script, as the developer, answers allow-once through the
    # console's API. Judged by the command's status code, the pipe attempt, and the audit log.
    $qws = New-Workspace 'elevated-ask'
    $qlog = Join-Path $env:TEMP "cordon-smoke-ask-$PID.jsonl"
    $qpolicy = Join-Path $env:TEMP "cordon-smoke-ask-$PID.toml"
    Set-Content -LiteralPath $qpolicy -Value "[network]`nunlisted = `"ask`""
    $cport = 47200 + (Get-Random -Maximum 500)
    $cerr = Join-Path $env:TEMP "cordon-smoke-console-$PID.err"
    $console = Start-Process -FilePath $exe -ArgumentList @('console', '--bind', "127.0.0.1:$cport") -RedirectStandardError $cerr -PassThru -WindowStyle Hidden
    $ctoken = $null
    for ($i = 0; $i -lt 100 -and -not $ctoken; $i++) {
        Start-Sleep -Milliseconds 200
        $m = Select-String -LiteralPath $cerr -Pattern 'token=([A-Za-z0-9_-]+)' -ErrorAction SilentlyContinue | Select-Object -First 1
        if ($m) { $ctoken = $m.Matches[0].Groups[1].Value }
    }
    $approvals = Join-Path $env:LOCALAPPDATA 'cordon\state\approvals'
    $askBody = "`$pipe = (Get-Content -Raw -LiteralPath pipe.txt -ErrorAction SilentlyContinue); try { `$c = New-Object IO.Pipes.NamedPipeClientStream('.', `$pipe.Trim().Replace('\\.\pipe\', ''), [IO.Pipes.PipeDirection]::InOut); `$c.Connect(3000); Set-Content pipe-result.txt 'opened' } catch { Set-Content pipe-result.txt 'refused' }; try { `$r = [Net.WebRequest]::Create('http://example.org/'); `$r.Timeout = 120000; `$resp = `$r.GetResponse(); Set-Content got.txt ([int]`$resp.StatusCode) } catch [Net.WebException] { `$e = `$_.Exception.Response; if (`$e) { Set-Content got.txt ([int]`$e.StatusCode) } else { Set-Content got.txt 'error' } }"
    # The pipe's name is written into the workspace once the run's endpoint exists, before
    # the command reads it (it waits for the file).
    $askBody = "for (`$i = 0; `$i -lt 100 -and -not (Test-Path pipe.txt); `$i++) { Start-Sleep -Milliseconds 100 }; " + $askBody
    $qb64 = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($askBody))
    $qargs = $pre + @('-w', $qws, '--allow-weaker', '--policy', $qpolicy, '--allow-domain', 'example.com', '--audit', $qlog, '--', 'powershell.exe', '-NoProfile', '-NonInteractive', '-EncodedCommand', $qb64)
    $qjob = Start-Job -ScriptBlock { param($e, $a) & $e @a 2>&1 | Out-Null; $LASTEXITCODE } -ArgumentList $exe, $qargs
    $endpoint = $null
    for ($i = 0; $i -lt 200 -and -not $endpoint; $i++) {
        Start-Sleep -Milliseconds 200
        $endpoint = Get-ChildItem -LiteralPath $approvals -Filter '*.json' -ErrorAction SilentlyContinue | ForEach-Object { Get-Content -Raw -LiteralPath $_.FullName | ConvertFrom-Json } | Select-Object -First 1
    }
    if ($endpoint) { Set-Content -LiteralPath (Join-Path $qws 'pipe.txt') -Value $endpoint.socket }
    $answered = $false
    $headers = @{ Authorization = "Bearer $ctoken" }
    for ($i = 0; $i -lt 300 -and $ctoken -and -not $answered; $i++) {
        Start-Sleep -Milliseconds 200
        try {
            $p = Invoke-RestMethod -Uri "http://127.0.0.1:$cport/api/pending" -Headers $headers
            if (@($p.pending).Count -ge 1) {
                $q = @($p.pending)[0]
                $body = @{ run = $q.run; id = $q.id; choice = 'allow_once' } | ConvertTo-Json -Compress
                $null = Invoke-RestMethod -Method Post -Uri "http://127.0.0.1:$cport/api/decide" -Headers $headers -ContentType 'application/json' -Body $body
                $answered = $true
            }
        } catch { }
    }
    $qrc = Receive-Job -Job $qjob -Wait -AutoRemoveJob | Select-Object -Last 1
    Stop-Process -Id $console.Id -Force -ErrorAction SilentlyContinue
    $qgot = Get-Content -LiteralPath (Join-Path $qws 'got.txt') -ErrorAction SilentlyContinue
    $qpipe = Get-Content -LiteralPath (Join-Path $qws 'pipe-result.txt') -ErrorAction SilentlyContinue
    $qev = @(Get-Content -LiteralPath $qlog -ErrorAction SilentlyContinue | ForEach-Object { $_ | ConvertFrom-Json })
    $qdecided = @($qev | Where-Object { $_.event -eq 'approval_decided' -and $_.decision -eq 'allow_once' -and $_.channel -eq 'console' })
    Check 'unlisted = "ask": the run publishes its control pipe and cordon console pairs' ($null -ne $endpoint -and $ctoken) "endpoint $($endpoint.socket), token found: $([bool]$ctoken)"
    Check 'unlisted = "ask": a name off the list is held and, allowed once in the console, reached' ($answered -and $qrc -eq 0 -and "$qgot".Trim() -eq '200') "answered $answered, exit $qrc, got '$qgot'"
    Check "unlisted = `"ask`": the sandbox account cannot open the run's control pipe" ("$qpipe".Trim() -eq 'refused') "got '$qpipe'"
    Check 'unlisted = "ask": the answer is in the audit log (approval_decided allow_once by the console)' ($qdecided.Count -eq 1) "$($qev.Count) events in $qlog"
    Check 'unlisted = "ask": the endpoint goes with the run' (@(Get-ChildItem -LiteralPath $approvals -Filter '*.json' -ErrorAction SilentlyContinue).Count -eq 0)
}

# --- removing elevated mode: `cordon setup --elevated --remove` -------------------------
# Destructive, so last. Setup first (converges if it is already there), then what elevated
# runs leave (cordon.exe's grant, a workspace's ACEs, a broker running), then the removal,
# judged by the machine. WFP and user rights are read as an administrator (netsh, secedit).
if ($Remove) {
    $group = 'CordonSandboxUsers'
    $offline = 'CordonSandboxOffline'
    $online = 'CordonSandboxOnline'
    $cordon = $exe
    $isCli = ($pre -contains 'run')
    Check '-Remove runs the real CLI (-Runner cordon.exe,run)' $isCli "runner: $Runner"
    # Runs a PowerShell script as an administrator (UAC unless this one already is).
    function AsAdmin([string]$body) {
        $b64 = [Convert]::ToBase64String([Text.Encoding]::Unicode.GetBytes($body))
        $p = Start-Process -FilePath powershell.exe -Verb RunAs -Wait -PassThru -WindowStyle Hidden -ArgumentList @('-NoProfile', '-NonInteractive', '-EncodedCommand', $b64)
        return $p.ExitCode
    }
    # WFP's objects and the machine's user rights, as files under $root (named relative to
    # it: netsh's own parser does not take a quoted path, and $root holds a space).
    function MachineState([string]$tag) {
        $wfp = Join-Path $root "wfp-$tag.xml"
        $rights = Join-Path $root "rights-$tag.inf"
        $null = AsAdmin "Set-Location -LiteralPath $(Q $root); netsh wfp show state file=wfp-$tag.xml | Out-Null; secedit /export /cfg rights-$tag.inf /areas USER_RIGHTS | Out-Null"
        return @{
            wfp    = (Get-Content -Raw -LiteralPath $wfp -ErrorAction SilentlyContinue)
            rights = (Get-Content -Raw -LiteralPath $rights -ErrorAction SilentlyContinue)
        }
    }
    $guids = '6b1e7a52-4f0c-4c1e-9d0a-c0a1d0c0d00'  # cordon's provider (…d001) and sublayer (…d002)
    $userList = 'HKLM:\SOFTWARE\Microsoft\Windows NT\CurrentVersion\Winlogon\SpecialAccounts\UserList'
    $stateDir = Join-Path $env:LOCALAPPDATA 'cordon\state'
    if ($isCli) {
        & $cordon setup --elevated 2>&1 | Out-Host
        Check 'setup --elevated before the removal' ($LASTEXITCODE -eq 0) "exit $LASTEXITCODE"
        $sids = @{}
        foreach ($n in @($group, $offline, $online)) {
            try { $sids[$n] = ([Security.Principal.NTAccount]$n).Translate([Security.Principal.SecurityIdentifier]).Value } catch {}
        }
        Check 'the group and both accounts exist before the removal' ($sids.Count -eq 3) "$($sids.Keys -join ', ')"
        $rws = New-Workspace 'remove'
        $rc = Sandboxed $rws 'exit 0'
        Check 'an elevated run before the removal (it leaves a broker and ACEs)' ($rc -eq 0) "exit $rc"
        $pipesBefore = @(Get-ChildItem \\.\pipe\ | Where-Object Name -like 'cordon-broker-*')
        $before = MachineState 'before'
        Check "WFP holds cordon's provider before the removal (the check below can see it)" ("$($before.wfp)" -match $guids) 'netsh wfp show state: provider absent or unreadable'

        $out = (& $cordon setup --elevated --remove 2>&1 | Out-String)
        $rc = $LASTEXITCODE
        Write-Host $out
        Check 'setup --elevated --remove exits 0' ($rc -eq 0) "exit $rc"
        Check 'the removal reports its steps (accounts deleted, the broker stopped)' ($out -match 'done\s+delete the account CordonSandboxOffline' -and $out -match 'done\s+stop cordon''s brokers' -and $out -match 'the elevated mode is removed') 'see the report above'

        foreach ($n in @($offline, $online)) {
            Check "account $n is gone" ($null -eq (Get-LocalUser -Name $n -ErrorAction SilentlyContinue))
            $v = Get-ItemProperty -Path $userList -Name $n -ErrorAction SilentlyContinue
            Check "$n's logon-screen value is gone" ($null -eq $v)
            Check "$n's stored password is gone" (-not (Test-Path (Join-Path $stateDir "elevated\$n.dpapi")))
        }
        Check "group $group is gone" ($null -eq (Get-LocalGroup -Name $group -ErrorAction SilentlyContinue))
        $rules = @(Get-NetFirewallRule -DisplayName 'cordon:*' -ErrorAction SilentlyContinue)
        Check "no firewall rule named 'cordon:*' is left" ($rules.Count -eq 0) "$($rules.Count) left: $($rules.DisplayName -join ', ')"
        $left = @(Get-Process -Name cordon -ErrorAction SilentlyContinue)
        $pipesAfter = @(Get-ChildItem \\.\pipe\ | Where-Object Name -like 'cordon-broker-*')
        Check 'no broker is left (no cordon.exe process, no broker pipe)' ($left.Count -eq 0 -and $pipesAfter.Count -eq 0) "$($left.Count) cordon.exe, $($pipesAfter.Count) pipes (before: $($pipesBefore.Count) pipes)"
        $after = MachineState 'after'
        Check 'WFP was read after the removal' (-not [string]::IsNullOrWhiteSpace($after.wfp)) 'netsh wfp show state wrote nothing'
        Check "no WFP filter, sublayer or provider of cordon's is left" (-not ("$($after.wfp)" -match $guids)) "$guids* still in netsh wfp show state"
        foreach ($n in $sids.Keys) {
            $sid = $sids[$n]
            $named = [regex]::Escape($sid) + '(?!\d)'  # not a prefix of a longer SID
            Check "no user right names $n ($sid)" (-not ("$($after.rights)" -match $named)) 'secedit /export still lists it'
            foreach ($path in @($stateDir, (Resolve-Path $cordon).Path, $rws)) {
                $acl = (icacls $path) -join "`n"
                Check "no ACE names $n on $path" (-not ($acl -match $named)) $acl
            }
        }

        $out = (& $cordon setup --elevated --remove 2>&1 | Out-String)
        $rc = $LASTEXITCODE
        Check 'a second setup --elevated --remove succeeds' ($rc -eq 0) "exit $rc`n$out"
        Check 'the second removal finds everything absent (no done, kept or FAILED step)' (-not ($out -match '(?m)^\s*\d+\. (done|kept|FAILED)')) $out
    }
}

Write-Host ''
Write-Host "$script:passes passed, $script:failures failed (scratch folder kept: $root)"
exit $script:failures
