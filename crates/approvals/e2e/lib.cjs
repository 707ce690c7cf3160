// What both browser tests share: the checks they count, and Chromium at a phone's size.
'use strict';
const fs = require('fs');
const path = require('path');

/** Counts checks; `done()` prints the tally and exits 1 unless something passed and nothing failed. */
function checker(name) {
  let passes = 0;
  let failures = 0;
  function check(cond, what) {
    if (cond) { passes++; console.log('ok   ' + what); } else { failures++; console.log('FAIL ' + what); }
  }
  check.ok = () => failures === 0 && passes > 0;
  check.done = () => {
    console.log(`${name}: ${passes} passed, ${failures} failed`);
    if (!check.ok()) process.exit(1);
  };
  return check;
}

/** Headless Chromium with a fresh profile in OUT_DIR, as a 390x844 touch phone. A missing
 * browser is an error: the tests fail, they never skip. */
async function launchPhone(chromiumBin, nodeDir, outDir) {
  if (!fs.existsSync(chromiumBin)) throw new Error('no browser at ' + chromiumBin);
  const { chromium } = require(path.join(nodeDir, 'node_modules', 'playwright-core'));
  fs.mkdirSync(outDir, { recursive: true });
  const userDir = fs.mkdtempSync(path.join(outDir, 'profile-'));
  return chromium.launchPersistentContext(userDir, {
    executablePath: chromiumBin,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 390, height: 844 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
}

module.exports = { checker, launchPhone };
