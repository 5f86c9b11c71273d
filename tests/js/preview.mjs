// Drive the bridge's artist preview page (chibi_meta/preview) in headless Chromium, as an artist would.
// Usage: node preview.mjs SPEC.json  where SPEC = {"open_url": URL of /preview/ on a server without
//   a token, "token_url": the same on a server with one, "token": that token, "shots": DIR or null}.
// Prints one JSON line with what it saw; tests/test_preview.py judges it.
import { readFile, writeFile } from 'node:fs/promises';
import { inflateSync } from 'node:zlib';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const spec = JSON.parse(await readFile(process.argv[2], 'utf8'));
const WAIT = 120000;

// A small PNG decoder (8-bit RGB/RGBA, not interlaced: what Chromium's screenshots are).
function decodePng(buf) {
  let pos = 8, width = 0, height = 0, channels = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const body = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const depth = body[8], ctype = body[9], interlace = body[12];
      if (depth !== 8 || interlace !== 0 || (ctype !== 2 && ctype !== 6)) throw new Error(`unsupported PNG ${depth}/${ctype}/${interlace}`);
      channels = ctype === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(body);
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels, out = Buffer.alloc(stride * height);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)], src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? out[y * stride + x - channels] : 0;
      const b = y > 0 ? out[(y - 1) * stride + x] : 0;
      const c = x >= channels && y > 0 ? out[(y - 1) * stride + x - channels] : 0;
      let p = src[x];
      if (f === 1) p += a;
      else if (f === 2) p += b;
      else if (f === 3) p += (a + b) >> 1;
      else if (f === 4) {
        const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
        p += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      out[y * stride + x] = p & 255;
    }
  }
  return { width, height, channels, data: out };
}

function pixel(img, i) { return [img.data[i * img.channels], img.data[i * img.channels + 1], img.data[i * img.channels + 2]]; }

// The most frequent colour of an image.
function modeColour(img) {
  const counts = new Map();
  for (let i = 0; i < img.width * img.height; i++) {
    const k = pixel(img, i).join(',');
    counts.set(k, (counts.get(k) || 0) + 1);
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0].split(',').map(Number);
}

// Pixels whose colour differs from `ref` (an [r,g,b] or another image of the same size) by more than 8,
// leaving out a 12 px margin (the stage's rounded corners and border).
function countDiff(img, ref) {
  let n = 0;
  for (let y = 12; y < img.height - 12; y++) {
    for (let x = 12; x < img.width - 12; x++) {
      const i = y * img.width + x;
      const p = pixel(img, i), q = Array.isArray(ref) ? ref : pixel(ref, i);
      if (Math.max(Math.abs(p[0] - q[0]), Math.abs(p[1] - q[1]), Math.abs(p[2] - q[2])) > 8) n++;
    }
  }
  return n;
}

async function shot(page, name) {
  const buf = await page.locator('#canvas').screenshot();
  if (spec.shots) await writeFile(join(spec.shots, `${name}.png`), buf);
  return decodePng(buf);
}

async function openPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 }, acceptDownloads: true });
  const page = await context.newPage();
  const seen = { console: [], warnings: [], pageErrors: [], csp: [], badResponses: [], failedRequests: [] };
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  page.on('console', (m) => {
    if (m.type() === 'error') seen.console.push(m.text());
    // SwiftShader reports a "GPU stall due to ReadPixels" when the test takes a screenshot: not the page's
    else if (m.type() === 'warning' && !m.text().includes('GL Driver Message')) seen.warnings.push(m.text());
  });
  page.on('pageerror', (e) => seen.pageErrors.push(String(e)));
  page.on('response', (r) => { if (r.status() >= 400) seen.badResponses.push(`${r.status()} ${r.url()}`); });
  page.on('requestfailed', (r) => seen.failedRequests.push(`${r.url()} ${r.failure()?.errorText}`));
  await page.goto(url);
  return { context, page, seen };
}

async function waitState(page, states, timeout = WAIT) {
  await page.waitForFunction((s) => s.includes(document.body.dataset.state), states, { timeout });
  return page.evaluate(() => document.body.dataset.state);
}

async function generate(page, { seed, attrs = {}, format }) {
  await page.fill('#seed', seed === null ? '' : String(seed));
  for (const sel of await page.locator('#attr-list select').all()) {
    const name = await sel.getAttribute('name');
    await sel.selectOption(attrs[name] || '');
  }
  await page.selectOption('#format', format);
  await page.click('#generate');
  const state = await waitState(page, ['loaded', 'received', 'error']);
  return page.evaluate((st) => {
    const attrs = {};
    for (const dd of document.querySelectorAll('#result-list dd[data-attr]')) attrs[dd.dataset.attr] = dd.textContent;
    const a = document.getElementById('download');
    return {
      state: st, status: document.getElementById('status').textContent,
      seed: document.getElementById('out-seed')?.textContent ?? null, attrs,
      download: { name: a.download, href: a.href.slice(0, 5), hidden: a.hidden, text: a.textContent },
      expressionsShown: !document.getElementById('expressions').hidden,
      generateEnabled: !document.getElementById('generate').disabled,
    };
  }, state);
}

async function finish(page, seen) {
  seen.csp.push(...await page.evaluate(() => window.__csp));
  return seen;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--use-angle=swiftshader',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = {};
try {
  // -- a server without a token ----------------------------------------------------------------
  {
    const { context, page, seen } = await openPage(browser, spec.open_url);
    const t0 = Date.now();
    out.ready = await waitState(page, ['ready', 'error'], 30000);
    out.form = await page.evaluate(() => ({
      attributes: Object.fromEntries([...document.querySelectorAll('#attr-list select')].map(
        (s) => [s.name, [...s.options].map((o) => o.textContent)])),
      formats: [...document.querySelectorAll('#format option')].map((o) => o.value),
      textureSizes: [...document.querySelectorAll('#texture-size option')].map((o) => o.value),
      attribution: document.getElementById('attribution').textContent,
      conn: document.getElementById('conn').textContent,
      title: document.title,
    }));
    const empty = await shot(page, 'empty');
    const bg = modeColour(empty);
    out.background = { rgb: bg, nonBackground: countDiff(empty, bg), size: [empty.width, empty.height] };

    out.glb = await generate(page, { seed: 42, attrs: { hair_color: 'pink' }, format: 'glb' });
    out.glb.nonBackground = countDiff(await shot(page, 'glb'), bg);
    if (spec.shots) await page.screenshot({ path: join(spec.shots, 'page_glb.png'), fullPage: true });
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
    const bytes = await readFile(await download.path());
    out.glb.downloaded = { name: download.suggestedFilename(), magic: bytes.subarray(0, 4).toString('latin1'),
      sha256: createHash('sha256').update(bytes).digest('hex') };

    out.vrm = await generate(page, { seed: 7, format: 'vrm' });
    const plain = await shot(page, 'vrm');
    out.vrm.nonBackground = countDiff(plain, bg);
    await page.check('#expr-happy');
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => r())));
    out.vrm.happyChangedPixels = countDiff(await shot(page, 'vrm_happy'), plain);

    out.badSeed = await generate(page, { seed: 99999999999, format: 'glb' });
    out.afterError = await generate(page, { seed: 42, attrs: { hair_color: 'pink' }, format: 'glb' });
    out.openSeconds = (Date.now() - t0) / 1000;
    out.openSeen = await finish(page, seen);
    await context.close();
  }
  // -- a server with a token ------------------------------------------------------------------
  {
    const { context, page, seen } = await openPage(browser, spec.token_url);
    const status = () => page.evaluate(() => ({ state: document.body.dataset.state,
      status: document.getElementById('status').textContent, conn: document.getElementById('conn').textContent }));
    await waitState(page, ['ready', 'error']);
    out.noToken = await status();
    await page.fill('#token', `${spec.token}-wrong`);
    await page.click('#connect');
    await waitState(page, ['ready', 'error']);
    out.wrongToken = await status();
    if (spec.shots) await page.screenshot({ path: join(spec.shots, 'page_unauthorized.png'), fullPage: true });
    await page.fill('#token', spec.token);
    await page.press('#token', 'Enter');
    await waitState(page, ['ready', 'error']);
    out.rightToken = await status();
    out.tokenGlb = await generate(page, { seed: 3, format: 'glb' });
    out.tokenSeen = await finish(page, seen);
    await context.close();
  }
} catch (e) {
  out.exception = String(e && e.stack || e);
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
