// The approval path end to end with the real binary (issue 6): `cordon run` holds a sandboxed
// command on a `prompt` rule, a human answers in `cordon console` on a phone-sized page, and
// the command runs (allow once) or fails with the rule's reason (deny). Judged by what the
// host sees afterwards: exit statuses, stderr, marker files in the workspace, the audit log.
// Run by scripts/console-e2e.sh: node run.test.cjs CORDON CHROMIUM NODE_DIR OUT_DIR
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { checker, launchPhone } = require('./lib.cjs');

const [cordonBin, chromiumBin, nodeDir, outDir] = process.argv.slice(2);
const check = checker('cordon run + cordon console');
let browser;

const REASON = 'deploys need a human';
const POLICY = `[[commands.rules]]
prefix = ["deploy"]
decision = "prompt"
reason = "${REASON}"
`;
// Writes a marker named after its argument in the workspace (its working directory).
const DEPLOY = `#!/bin/sh
printf 'deployed %s\\n' "$1" > "deployed-$1"
echo "deploy $1 done"
`;

/** Starts a process in its own session (as `setsid` would: no controlling terminal, so
 * cordon gives the command no pty), keeping what it prints. */
function start(args, opts) {
  const child = spawn(args[0], args.slice(1), { ...opts, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  const got = { out: '', err: '' };
  child.stdout.on('data', (d) => { got.out += d; });
  child.stderr.on('data', (d) => { got.err += d; });
  const exited = new Promise((resolve, reject) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
    child.on('error', (e) => { got.err += String(e); reject(e); });
  });
  exited.catch(() => {}); // reported by `wait` or `running`
  // The timer is unref'd: it must not keep node alive once the test is done.
  const wait = (ms) => Promise.race([exited,
    new Promise((_, reject) => setTimeout(() => reject(new Error(
      `${args.slice(0, 3).join(' ')}… still running after ${ms} ms; stderr: ${got.err}`)), ms).unref())]);
  const stop = () => { if (child.exitCode === null && child.signalCode === null) {
    try { process.kill(-child.pid, 'SIGTERM'); } catch (_) { /* already gone */ }
  } };
  const running = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null;
  return { child, got, wait, stop, running };
}

async function until(what, ms, test) {
  const end = Date.now() + ms;
  for (;;) {
    const v = test();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function auditEvents(file) {
  if (!fs.existsSync(file)) return [];
  return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function main() {
  if (!path.isAbsolute(cordonBin) || !fs.existsSync(cordonBin)) {
    throw new Error('no cordon binary at ' + cordonBin + ' (an absolute path)');
  }
  // The browser first: without one the test fails before anything is started.
  browser = await launchPhone(chromiumBin, nodeDir, outDir);
  // Short on purpose: the run's control socket lives under it, and a Unix socket's path
  // must fit in 107 bytes.
  const state = fs.mkdtempSync('/tmp/ce2e-');
  const workspace = fs.mkdtempSync('/tmp/ce2e-ws-');
  const policy = path.join(state, 'policy.toml');
  fs.writeFileSync(policy, POLICY);
  fs.writeFileSync(path.join(workspace, 'deploy'), DEPLOY, { mode: 0o755 });
  // The same state folder for the console and the runs; an empty config folder so the
  // user's own rules (an "allow always" for deploy, say) cannot decide for the test.
  const env = { ...process.env, XDG_STATE_HOME: state, XDG_CONFIG_HOME: path.join(state, 'config') };
  const audit = path.join(state, 'cordon', 'audit.jsonl');
  const procs = [];
  let finished = false;

  try {
    // Port 0: the kernel picks a free one, and the pairing URL names it.
    const console_ = start([cordonBin, 'console', '--bind', '127.0.0.1:0'], { cwd: state, env });
    procs.push(console_);
    const url = await until('the pairing URL on the console\'s stderr', 20000, () => {
      if (!console_.running()) throw new Error('cordon console exited: ' + console_.got.err);
      const m = console_.got.err.match(/http:\/\/127\.0\.0\.1:[1-9][0-9]*\/pair\?token=[0-9a-f]+/);
      return m && m[0];
    });
    check(true, 'cordon console printed a pairing URL on a free port: ' + new URL(url).port);

    const page = browser.pages()[0] || await browser.newPage();
    await page.goto(url);
    check(new URL(page.url()).pathname === '/' && new URL(page.url()).search === '',
      'pairing with the printed URL lands on the console without the token');

    const run = (name) => {
      const r = start([cordonBin, 'run', '--policy', policy, '--', './deploy', name], { cwd: workspace, env });
      procs.push(r);
      return r;
    };
    const open = (name) => page.locator('article.card:not([data-answered])', { hasText: './deploy ' + name });
    const marker = (name) => path.join(workspace, 'deployed-' + name);

    // Allowed once: held until the tap, then it runs and leaves its marker.
    const approved = run('approved');
    const card = open('approved');
    await card.waitFor({ timeout: 30000 });
    const text = await card.innerText();
    check(text.includes(REASON) && text.includes(workspace) && text.includes(policy),
      'the card shows the rule\'s reason, the cwd and where the rule is');
    check(approved.running() && !fs.existsSync(marker('approved')),
      'the command waits for a human: still running, no marker yet');
    const box = await card.locator('button.allow_once').boundingBox();
    check(box && box.x >= 0 && box.x + box.width <= 390 && box.height >= 44,
      'Allow once is thumb-sized and on a 390 px screen');
    await page.screenshot({ path: path.join(outDir, 'console-run.png') });
    await card.locator('button.allow_once').tap();
    const a = await approved.wait(30000);
    check(a.code === 0, 'the approved run exits 0 (got ' + JSON.stringify(a) + ')');
    check(fs.existsSync(marker('approved')) &&
      fs.readFileSync(marker('approved'), 'utf8') === 'deployed approved\n',
      'the approved command wrote its marker in the workspace');
    check(approved.got.out.includes('deploy approved done'), 'the approved command\'s output reached cordon\'s stdout');
    await page.locator('article.card[data-answered="allow_once"]').first().waitFor({ timeout: 5000 })
      .then(() => check(true, 'the page marks the card answered'),
        () => check(false, 'the page marks the card answered'));

    // Denied: the exec fails, cordon says why, nothing is written.
    const denied = run('denied');
    const card2 = open('denied');
    await card2.waitFor({ timeout: 30000 });
    check(denied.running(), 'the second command waits too');
    await card2.locator('button.deny').tap();
    const d = await denied.wait(30000);
    check(d.code === 126, 'the denied run exits 126 (got ' + JSON.stringify(d) + ')');
    check(denied.got.err.includes(REASON) && /denied/.test(denied.got.err),
      'stderr gives the rule\'s reason and the denial: ' + JSON.stringify(denied.got.err));
    check(!fs.existsSync(marker('denied')), 'the denied command wrote no marker');
    check(!denied.got.out.includes('done'), 'the denied command printed nothing');

    // The page has nothing left to answer.
    await page.waitForFunction(() => document.querySelectorAll('article.card:not([data-answered])').length === 0,
      null, { timeout: 10000 }).then(() => check(true, 'no request is left open in the page'),
      () => check(false, 'no request is left open in the page'));

    // Every request and decision is in the audit log, decided by the console.
    const events = auditEvents(audit);
    const about = (name, kind) => events.filter((e) => e.event === kind &&
      JSON.stringify(e.subject) === JSON.stringify(['./deploy', name]));
    for (const [name, decision] of [['approved', 'allow_once'], ['denied', 'deny']]) {
      const asked = about(name, 'approval_requested');
      check(asked.length === 1 && asked[0].reason === REASON,
        `audit: one approval_requested for ${name}, with the reason`);
      const decided = about(name, 'approval_decided');
      check(decided.length === 1 && decided[0].decision === decision && decided[0].channel === 'console' &&
        decided[0].id === asked[0]?.id && !!decided[0].by,
        `audit: approval_decided ${decision} via console for ${name}: ` + JSON.stringify(decided));
    }
    const exits = events.filter((e) => e.event === 'command_exit').map((e) => e.status);
    check(JSON.stringify(exits) === '[0,126]', 'audit: the runs ended 0 and 126: ' + JSON.stringify(exits));
    finished = true;
  } finally {
    for (const p of procs) p.stop();
    await browser.close();
    if (finished && check.ok()) {
      fs.rmSync(state, { recursive: true, force: true });
      fs.rmSync(workspace, { recursive: true, force: true });
    } else {
      console.log(`left for a look: state ${state}, workspace ${workspace}`);
    }
  }
  check.done();
}

main().catch((e) => { console.error('FAIL ' + (e && e.stack || e)); process.exit(1); });
