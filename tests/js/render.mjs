// Load exported avatars in headless Chromium with three.js + three-vrm and screenshot them.
// Usage: node render.mjs JOBS.json   where JOBS.json = {"files_dir": DIR, "jobs": [{"file": NAME,
//   "vrm": bool, "expr": "happy"|null, "yaw": deg, "shot": PATH|null}]}.
// Serves this folder (page + node_modules) and files_dir on 127.0.0.1 only; prints one JSON line
// per job with what the page reported.
import { readFile } from 'node:fs/promises';
import { launch, safeJoin, serve } from './harness.mjs';

const spec = JSON.parse(await readFile(process.argv[2], 'utf8'));
const { server, port } = await serve('page.html', (rel) => safeJoin(spec.files_dir, rel));
const browser = await launch();
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
