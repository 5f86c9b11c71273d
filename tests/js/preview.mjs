// Drive the bridge's artist preview page (chibi_meta/preview) in headless Chromium, as an artist would:
// generate, download, move every expression slider (pixels of the face region), say a sentence
// (viseme weights sampled from the page through window.chibiPreview), watch the idle clip and blinks,
// and choose the morph-target sets.
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

// Pixels that differ (as countDiff, with its 12 px margin) inside and outside a rectangle
// {x, y, width, height} of the image.
function diffInOut(img, ref, rect) {
  let inside = 0, outside = 0;
  for (let y = 12; y < img.height - 12; y++) {
    for (let x = 12; x < img.width - 12; x++) {
      const i = (y * img.width + x) * img.channels, j = (y * ref.width + x) * ref.channels;
      const d = Math.max(Math.abs(img.data[i] - ref.data[j]), Math.abs(img.data[i + 1] - ref.data[j + 1]),
        Math.abs(img.data[i + 2] - ref.data[j + 2]));
      if (d <= 8) continue;
      if (x >= rect.x && x < rect.x + rect.width && y >= rect.y && y < rect.y + rect.height) inside++;
      else outside++;
    }
  }
  return { inside, outside };
}

const frames = (page, n = 2) => page.evaluate((k) => window.chibiPreview.frames(k), n);

// Set sliders (id -> value) as a drag does (value + input event), then wait for the frame that draws them.
const setSliders = (page, values) => page.evaluate((vals) => {
  for (const [id, v] of Object.entries(vals)) {
    const el = document.getElementById(id);
    el.value = String(v);
    el.dispatchEvent(new Event('input', { bubbles: true }));
  }
  return window.chibiPreview.frames(1);
}, values);

// Each slider of a group ('expr', 'viseme') at 1, one at a time, in the face view with the animation
// off: the pixels that changed in the face region (the head's box on the canvas); then all at 1 at
// once: whether anything changed outside it; then Reset: whether the first picture came back.
async function sliderPixels(page, group) {
  if (await page.isChecked('#animate')) await page.uncheck('#animate');
  await page.selectOption('#view', 'face');
  await page.evaluate(() => window.scrollTo(0, 0)); // the canvas whole in the viewport, for clipped shots
  await frames(page, 3);
  const rect = await page.evaluate(() => window.chibiPreview.faceRect());
  const box = await page.locator('#canvas').boundingBox();
  const clip = { x: box.x + rect.x, y: box.y + rect.y, width: rect.width, height: rect.height };
  const faceShot = async () => decodePng(await page.screenshot({ clip }));
  const base = await shot(page, `${group}_base`);
  const baseFace = await faceShot();
  const ids = await page.$$eval(`#${group}-list input`, (els) => els.map((e) => e.id));
  const changed = {};
  let prev = null;
  for (const id of ids) {
    await setSliders(page, { ...(prev ? { [prev]: 0 } : {}), [id]: 1 });
    changed[id.slice(2)] = countDiff(await faceShot(), baseFace);
    prev = id;
  }
  await setSliders(page, Object.fromEntries(ids.map((id) => [id, 1])));
  const all = diffInOut(await shot(page, `${group}_all`), base, rect);
  await page.click('#reset');
  await frames(page, 1);
  const restored = countDiff(await shot(page, null), base);
  const after = await page.evaluate(() => window.chibiPreview.sample());
  const nonZero = [...Object.entries(after.expressions), ...Object.entries(after.morphs)].filter(([, v]) => v !== 0).map(([k]) => k);
  const slidersAtZero = await page.$$eval('#sliders input[type=range]', (els) => els.every((e) => e.value === '0'));
  return { rect, size: [base.width, base.height], changed, allAtOnce: all, restored, nonZeroAfterReset: nonZero, slidersAtZero };
}

// Every slider of a group at once, each at its own value: the morph-target influence of its name
// (read from the page) must be that value, and nothing else may move; then Reset.
async function sliderWiring(page, group) {
  const ids = await page.$$eval(`#${group}-list input`, (els) => els.map((e) => e.id));
  const set = Object.fromEntries(ids.map((id, i) => [id, Math.round(100 * (i + 1) / (ids.length + 1)) / 100]));
  await setSliders(page, set);
  const s = await page.evaluate(() => window.chibiPreview.sample());
  await page.click('#reset');
  await frames(page, 1);
  const after = await page.evaluate(() => window.chibiPreview.sample());
  return { set: Object.fromEntries(Object.entries(set).map(([id, v]) => [id.slice(2), v])), morphs: s.morphs,
    expressions: s.expressions, zeroAfterReset: Object.values(after.morphs).every((v) => v === 0) };
}

// Press Say with `text` and sample the page every frame until the sentence is over (and, with
// needBlink, a blink was seen), at least minMs and at most maxMs: the largest weight each expression
// and morph target reached, the largest rotation of each sampled bone from the first frame, blinks.
async function sayAndRecord(page, text, { minMs = 0, maxMs = 10000, needBlink = false, animate = false } = {}) {
  await page.fill('#say-text', text);
  if (animate) await page.check('#animate'); // (after filling: Playwright waits longer on a page that animates)
  await page.click('#say');
  const rec = await page.evaluate(async ({ minMs, maxMs, needBlink }) => {
    const P = window.chibiPreview, first = P.sample(), t0 = first.t;
    const maxExpr = {}, maxMorph = {}, boneDeg = {};
    let n = 0, last = first, sawSpeaking = first.speaking, blinkAt = null;
    const angle = (a, b) => 2 * Math.acos(Math.min(1, Math.abs(a[0] * b[0] + a[1] * b[1] + a[2] * b[2] + a[3] * b[3]))) * 180 / Math.PI;
    await new Promise((resolve) => {
      const step = () => {
        const s = P.sample();
        n += 1;
        last = s;
        sawSpeaking = sawSpeaking || s.speaking;
        for (const [k, v] of Object.entries(s.expressions)) maxExpr[k] = Math.max(maxExpr[k] || 0, v);
        for (const [k, v] of Object.entries(s.morphs)) maxMorph[k] = Math.max(maxMorph[k] || 0, v);
        for (const [b, q] of Object.entries(s.bones)) boneDeg[b] = Math.max(boneDeg[b] || 0, angle(q, first.bones[b]));
        const el = s.t - t0;
        if (blinkAt === null && s.blinks > first.blinks) blinkAt = s.t;
        const blinked = blinkAt !== null && s.t - blinkAt > 400; // the whole blink (200 ms), and a frame more
        if ((el >= minMs && !s.speaking && (!needBlink || blinked)) || el >= maxMs) resolve();
        else requestAnimationFrame(step);
      };
      requestAnimationFrame(step);
    });
    return { frames: n, seconds: (last.t - t0) / 1000, sawSpeaking, speakingAtEnd: last.speaking,
      blinks: last.blinks - first.blinks, clipSeconds: first.time === null ? null : last.time - first.time,
      maxExpr, maxMorph, boneDeg, endExpr: last.expressions, endMorph: last.morphs };
  }, { minMs, maxMs, needBlink });
  rec.sayStatus = await page.textContent('#say-status');
  return rec;
}

function glbJson(bytes) {
  const len = bytes.readUInt32LE(12);
  return JSON.parse(bytes.subarray(20, 20 + len).toString('utf8'));
}

async function download(page) {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  const bytes = await readFile(await dl.path());
  return { name: dl.suggestedFilename(), bytes };
}

async function shot(page, name) {
  const buf = await page.locator('#canvas').screenshot();
  if (spec.shots && name) await writeFile(join(spec.shots, `${name}.png`), buf);
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
      faceShown: !document.getElementById('face').hidden,
      info: window.chibiPreview.info(),
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
      morphSets: [...document.querySelectorAll('#morph-sets input')].map((i) => [i.value, i.checked]),
      conn: document.getElementById('conn').textContent,
      title: document.title,
    }));
    const empty = await shot(page, 'empty');
    const bg = modeColour(empty);
    out.background = { rgb: bg, nonBackground: countDiff(empty, bg), size: [empty.width, empty.height] };

    out.glb = await generate(page, { seed: 42, attrs: { hair_color: 'pink' }, format: 'glb' });
    out.glb.nonBackground = countDiff(await shot(page, 'glb'), bg);
    if (spec.shots) await page.screenshot({ path: join(spec.shots, 'page_glb.png'), fullPage: true });
    const { name, bytes } = await download(page);
    out.glb.downloaded = { name, magic: bytes.subarray(0, 4).toString('latin1'),
      sha256: createHash('sha256').update(bytes).digest('hex') };
    let t = Date.now();
    out.glb.exprPixels = await sliderPixels(page, 'expr');
    out.glb.visemeWiring = await sliderWiring(page, 'viseme');
    out.glb.sliderSeconds = (Date.now() - t) / 1000;
    t = Date.now();
    out.glb.say = await sayAndRecord(page, 'Hello there, I am a little chibi avatar');
    out.glb.sayWallSeconds = (Date.now() - t) / 1000;
    await page.selectOption('#view', 'body');

    out.vrm = await generate(page, { seed: 7, attrs: { outfit: 'dress' }, format: 'vrm' });
    const plain = await shot(page, 'vrm');
    out.vrm.nonBackground = countDiff(plain, bg);
    t = Date.now();
    out.vrm.exprPixels = await sliderPixels(page, 'expr');
    out.vrm.sliderSeconds = (Date.now() - t) / 1000;
    t = Date.now();
    out.vrm.say = await sayAndRecord(page, 'The quick brown fox jumps over the lazy dog.',
      { minMs: 2500, maxMs: 9000, needBlink: true, animate: true });
    out.vrm.sayWallSeconds = (Date.now() - t) / 1000;
    await page.selectOption('#view', 'body');
    await page.uncheck('#animate');

    // no morph targets: every set unchecked sends ["none"]
    t = Date.now();
    for (const set of ['vrm', 'oculus', 'arkit']) await page.uncheck(`#morph-${set}`);
    out.none = await generate(page, { seed: 5, format: 'glb' });
    const noneFile = (await download(page)).bytes;
    const none = glbJson(noneFile);
    out.none.sha256 = createHash('sha256').update(noneFile).digest('hex');
    out.none.targetNames = none.meshes.flatMap((m) => (m.extras && m.extras.targetNames) || []);
    out.none.primitivesWithTargets = none.meshes.flatMap((m) => m.primitives).filter((p) => p.targets && p.targets.length).length;
    out.none.sayDisabled = await page.isDisabled('#say');
    for (const set of ['vrm', 'oculus', 'arkit']) await page.check(`#morph-${set}`);
    out.none.seconds = (Date.now() - t) / 1000;

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
