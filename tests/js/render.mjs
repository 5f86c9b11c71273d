// Load exported avatars in headless Chromium with three.js + three-vrm and screenshot them.
// Usage: node render.mjs JOBS.json   where JOBS.json = {"files_dir": DIR, "jobs": [{"file": NAME,
//   "vrm": bool, "expr": "happy"|null, "yaw": deg, "shot": PATH|null}]}.
// Serves this folder (page + node_modules) and files_dir on 127.0.0.1 only; prints one JSON line
// per job with what the page reported.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { join, normalize, extname, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
const spec = JSON.parse(await readFile(process.argv[2], 'utf8'));
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.glb': 'model/gltf-binary', '.vrm': 'model/gltf-binary' };

function safeJoin(root, rel) {
  const p = normalize(join(root, decodeURIComponent(rel)));
  return p.startsWith(normalize(root)) ? p : null;
}
const server = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  let path = null;
  if (url.pathname === '/favicon.ico') { res.writeHead(204); res.end(); return; }
  if (url.pathname === '/page.html') path = join(here, 'page.html');
  else if (url.pathname.startsWith('/js/')) path = safeJoin(here, url.pathname.slice(4));
  else if (url.pathname.startsWith('/files/')) path = safeJoin(spec.files_dir, url.pathname.slice(7));
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
  const page = await browser.newPage({ viewport: { width: spec.width || 320, height: spec.height || 400 } });
  const logs = [];
  page.on('console', (m) => { if (m.type() === 'error') logs.push(m.text()); });
  page.on('pageerror', (e) => logs.push(String(e)));
  for (const job of spec.jobs) {
    logs.length = 0;
    const qs = new URLSearchParams({ file: `/files/${job.file}`, vrm: job.vrm ? '1' : '0', yaw: String(job.yaw || 0),
      w: String(spec.width || 320), h: String(spec.height || 400) });
    if (job.expr) qs.set('expr', job.expr);
    if (job.pose) qs.set('pose', job.pose);
    await page.goto(`http://127.0.0.1:${port}/page.html?${qs}`);
    await page.waitForFunction(() => document.title === 'done' || document.title === 'error', null, { timeout: 60000 });
    const result = await page.evaluate(() => window.result);
    if (job.shot) await page.screenshot({ path: job.shot });
    console.log(JSON.stringify({ file: job.file, expr: job.expr || null, ...result, console: logs.slice(0, 5) }));
  }
} finally {
  await browser.close();
  server.close();
}
