// Browser tests of the approval console against a fixture (broker, control socket and
// console in one process), in headless Chromium at a phone-sized viewport.
// Run by scripts/console-e2e.sh: node console.test.cjs FIXTURE CHROMIUM NODE_DIR OUT_DIR
'use strict';
const { spawn } = require('child_process');
const fs = require('fs');
const http = require('http');
const path = require('path');
const readline = require('readline');
const { checker, launchPhone } = require('./lib.cjs');

const [fixtureBin, chromiumBin, nodeDir, outDir] = process.argv.slice(2);
const check = checker('console (fixture)');

function startFixture(state) {
  const child = spawn(fixtureBin, [state], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = [];
  readline.createInterface({ input: child.stdout }).on('line', (l) => {
    lines.push(l);
    for (const w of waiters.splice(0)) w();
  });
  async function next(prefix, ms = 20000) {
    const end = Date.now() + ms;
    for (;;) {
      const i = lines.findIndex((l) => l.startsWith(prefix));
      if (i >= 0) return lines.splice(i, 1)[0];
      if (Date.now() > end) throw new Error('fixture did not print ' + prefix);
      await new Promise((r) => { waiters.push(r); setTimeout(r, 200); });
    }
  }
  const send = (l) => child.stdin.write(l + '\n');
  return { child, next, send };
}

async function main() {
  if (!fs.existsSync(chromiumBin)) throw new Error('no browser at ' + chromiumBin);
  fs.mkdirSync(outDir, { recursive: true });
  const state = fs.mkdtempSync(path.join(outDir, 'state-'));
  const fx = startFixture(state);
  const url = (await fx.next('URL ')).slice(4);
  const origin = new URL(url).origin;
  const token = new URL(url).searchParams.get('token');

  const browser = await launchPhone(chromiumBin, nodeDir, outDir);
  try {
    const page = browser.pages()[0] || await browser.newPage();

    // Unpaired: the page and the API refuse.
    let res = await page.goto(origin + '/');
    check(res.status() === 401, 'unpaired page is refused (401)');
    res = await page.goto(origin + '/pair?token=' + '0'.repeat(64));
    check(res.status() === 401, 'a wrong pairing token is refused (401)');
    res = await page.goto(origin + '/api/pending');
    check(res.status() === 401, 'the API without a token is refused (401)');

    // Pair, then approve a request by tapping.
    await page.goto(url);
    check(new URL(page.url()).search === '', 'pairing redirects to a URL without the token');
    fx.send('ask git push origin main GITHUB_TOKEN=fixture-secret-value');
    const card = page.locator('article.card').first();
    await card.waitFor({ timeout: 15000 });
    const text = await card.innerText();
    check(text.includes('git push origin main'), 'the card shows the command');
    check(text.includes('/home/dev/project') && text.includes('publishes'), 'the card shows cwd and reason');
    check(!text.includes('fixture-secret-value'), 'the secret is masked');
    check(await card.locator('pre.tail').isVisible(), 'the terminal output tail is shown');
    const box = await card.locator('button.allow_once').boundingBox();
    check(box && box.width >= 120 && box.height >= 44 && box.x + box.width <= 390,
      'buttons are thumb-sized and fit a 390 px screen');
    await page.screenshot({ path: path.join(outDir, 'console.png') });
    await card.locator('button.allow_once').tap();
    const first = await fx.next('ANSWER ');
    check(/ allow_once console$/.test(first), 'the broker got allow_once through the console: ' + first);

    // A second request, denied.
    fx.send('ask npm publish');
    await page.locator('article.card:not([data-answered]) button.deny').first().waitFor({ timeout: 15000 });
    await page.locator('article.card:not([data-answered]) button.deny').first().tap();
    const second = await fx.next('ANSWER ');
    check(/ deny console$/.test(second), 'the broker got deny through the console: ' + second);

    // Cross-site: a page on another origin posts to the console with the browser's cookie
    // jar; SameSite=Strict keeps the cookie off and the CSRF check refuses, so nothing is
    // decided.
    fx.send('ask git push --force');
    await page.locator('article.card:not([data-answered])').first().waitFor({ timeout: 15000 });
    const pending = await (await page.request.get(origin + '/api/pending')).json();
    const open = pending.pending.find((p) => p.subject.includes('--force'));
    const evil = http.createServer((req, res2) => {
      res2.setHeader('Content-Type', 'text/html');
      res2.end(`<form id=f method=POST action="${origin}/api/decide" enctype="text/plain">
        <input name='{"run":"e2e","id":"${open.id}","choice":"allow_once","x":"' value='"}'></form>
        <script>fetch("${origin}/api/decide",{method:"POST",credentials:"include",mode:"no-cors",
        body:JSON.stringify({run:"e2e",id:"${open.id}",choice:"allow_once"})})
        .finally(()=>document.getElementById("f").submit())</script>`);
    });
    await new Promise((r) => evil.listen(0, '127.0.0.2', r));
    const evilPage = await browser.newPage();
    const seen = [];
    evilPage.on('response', (r) => { if (r.url().includes('/api/decide')) seen.push(r.status()); });
    await evilPage.goto(`http://127.0.0.2:${evil.address().port}/`);
    await evilPage.waitForTimeout(1500);
    evil.close();
    fx.send('pending');
    check((await fx.next('PENDING ')) === 'PENDING 1', 'a cross-site post decided nothing');
    check(seen.length > 0 && seen.every((s) => s === 401 || s === 403),
      'cross-site posts were refused: ' + JSON.stringify(seen));

    // Same-origin, but without the CSRF header, and with a foreign Origin.
    const noCsrf = await page.evaluate(async (id) => (await fetch('/api/decide', {
      method: 'POST', body: JSON.stringify({ run: 'e2e', id, choice: 'allow_once' }) })).status, open.id);
    check(noCsrf === 403, 'a post without the CSRF token is refused (' + noCsrf + ')');
    const foreign = await page.request.post(origin + '/api/decide', {
      headers: { Origin: 'https://evil.example', 'X-Cordon-CSRF': 'x' },
      data: { run: 'e2e', id: open.id, choice: 'allow_once' } });
    check(foreign.status() === 403, 'a post from another origin is refused (' + foreign.status() + ')');
    const bearerWrong = await page.request.post(origin + '/api/decide', {
      headers: { Authorization: 'Bearer ' + token.replace(/.$/, (c) => (c === '0' ? '1' : '0')), Cookie: '' },
      data: { run: 'e2e', id: open.id, choice: 'allow_once' } });
    check(bearerWrong.status() === 401 || bearerWrong.status() === 403, 'a near-miss token is refused');
    fx.send('pending');
    check((await fx.next('PENDING ')) === 'PENDING 1', 'still nothing decided');

    // Deny the last one from the page, then read the history and filter it.
    await page.locator('article.card:not([data-answered]) button.deny').first().tap();
    await fx.next('ANSWER ');
    await page.locator('#tab-history').tap();
    await page.locator('#events li').first().waitFor({ timeout: 10000 });
    const all = await page.locator('#events li').count();
    await page.fill('#f-command', 'npm publish');
    await page.selectOption('#f-decision', 'deny');
    await page.locator('#filters button[type=submit]').tap();
    await page.waitForFunction((n) => document.querySelectorAll('#events li').length < n, all);
    const filtered = await page.locator('#events li').allInnerTexts();
    check(filtered.length >= 1 && filtered.every((t) => t.includes('npm publish') && t.includes('deny')),
      'history filters by command and decision: ' + JSON.stringify(filtered));
    const history = await page.locator('#events').innerText();
    check(!history.includes('fixture-secret-value'), 'history masks the secret');
    await page.locator('#tab-pending').tap();
  } finally {
    await browser.close();
    fx.send('quit');
  }
  check.done();
}

main().catch((e) => { console.error('FAIL ' + (e && e.stack || e)); process.exit(1); });
