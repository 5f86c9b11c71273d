// Render VRM expressions in headless Chromium with three.js + three-vrm: for each file, the head node
// (AvatarHead) from the front, orthographic and unlit (MeshBasicMaterial with the file's texture),
// framing a world box exactly, on a transparent background; once neutral and once per expression set
// to 1 through vrm.expressionManager.setValue (three-vrm applies the expression's morphTargetBinds).
// Usage: node expressions.mjs SPEC.json   SPEC = {"files": {NAME: PATH}, "out_dir": DIR, "size": 128,
//   "box": [x0, y0, x1, y1], "exprs": ["blink", ...]}. Writes DIR/NAME.EXPR.rgba (size*size*4 bytes,
// rows top to bottom, as the canvas holds them: premultiplied by coverage) and prints one JSON line per
// file: {file, ok, expressions (what three-vrm found), errors}.
import { createServer } from 'node:http';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join, normalize, extname, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const spec = JSON.parse(await readFile(process.argv[2], 'utf8'));
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript' };

function safeJoin(root, rel) {
  const p = normalize(join(root, decodeURIComponent(rel)));
  return p.startsWith(normalize(root)) ? p : null;
}
const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  let path = null;
  if (url.pathname === '/favicon.ico') { res.writeHead(204); res.end(); return; }
  if (url.pathname === '/expressions.html') path = join(here, 'expressions.html');
  else if (url.pathname.startsWith('/js/')) path = safeJoin(here, url.pathname.slice(4));
  else if (url.pathname.startsWith('/files/')) path = spec.files[decodeURIComponent(url.pathname.slice(7))] || null;
  try {
    if (!path || !(await stat(path)).isFile()) throw new Error('nf');
    res.writeHead(200, { 'content-type': TYPES[extname(path)] || 'application/octet-stream' });
    res.end(await readFile(path));
  } catch {
    res.writeHead(404); res.end();
  }
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const port = server.address().port;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--use-angle=swiftshader',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage({ viewport: { width: spec.size, height: spec.size } });
  const errors = [];
  page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  page.on('pageerror', (e) => errors.push(String(e)));
  for (const name of Object.keys(spec.files)) {
    errors.length = 0;
    const qs = new URLSearchParams({ file: `/files/${name}`, size: String(spec.size), box: spec.box.join(',') });
    await page.goto(`http://127.0.0.1:${port}/expressions.html?${qs}`);
    await page.waitForFunction(() => document.title === 'ready' || document.title === 'error', null, { timeout: 60000 });
    const info = await page.evaluate(() => window.info);
    if (info.ok) {
      for (const expr of ['neutral', ...spec.exprs]) {
        const b64 = await page.evaluate((e) => window.renderExpression(e), expr);
        await writeFile(join(spec.out_dir, `${name}.${expr}.rgba`), Buffer.from(b64, 'base64'));
      }
    }
    console.log(JSON.stringify({ file: name, ...info, errors: errors.slice(0, 5) }));
  }
} finally {
  await browser.close();
  server.close();
}
