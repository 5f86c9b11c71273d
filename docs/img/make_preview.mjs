// Regenerate docs/img/preview.png: a screenshot of the preview page after generating seed 7 as a VRM,
// with the idle clip run for a moment and then paused, and the `happy` expression slider at 1.
//   chibi-meta serve --port 8798 &   # the shipped model
//   node docs/img/make_preview.mjs http://127.0.0.1:8798/preview/
// Uses playwright-core from tests/js (npm ci --prefix tests/js) and /usr/bin/chromium.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '..', '..', 'tests', 'js', 'package.json'));
const { chromium } = require('playwright-core');
const url = process.argv[2] || 'http://127.0.0.1:8765/preview/';
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1040 } });
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.state === 'ready');
  await page.fill('#seed', '7');
  await page.selectOption('#format', 'vrm');
  await page.click('button:has-text("Generate")');
  await page.waitForFunction(() => document.body.dataset.state === 'loaded', null, { timeout: 120000 });
  await page.waitForTimeout(1500); // the idle clip plays
  await page.uncheck('#animate'); // and holds its pose for the picture
  await page.fill('#x-happy', '1');
  await page.evaluate(() => window.chibiPreview.frames(3));
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: join(here, 'preview.png') });
} finally {
  await browser.close();
}
