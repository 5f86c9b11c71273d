// Play VRM Animation clips on a VRM in headless Chromium (three.js + three-vrm + three-vrm-animation).
// Usage: node anim.mjs JOBS.json   where JOBS.json = {"files": {NAME: PATH, ...}, "jobs": [{"model": NAME,
//   "anim": NAME, "frames": N, "shot": SECONDS, "yaw": DEG, "png": PATH|null}]}.
// Serves this folder (anim.html + node_modules) and only the named files, on 127.0.0.1; prints one JSON
// line per job with what the page reported and its console errors and warnings.
import { readFile } from 'node:fs/promises';
import { launch, serve } from './harness.mjs';

const spec = JSON.parse(await readFile(process.argv[2], 'utf8'));
const { server, port } = await serve('anim.html', (rel) => spec.files[decodeURIComponent(rel)] || null);
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: spec.width || 320, height: spec.height || 400 } });
  const errors = [];
  const warnings = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
    if (m.type() === 'warning') warnings.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  for (const job of spec.jobs) {
    errors.length = 0;
    warnings.length = 0;
    const qs = new URLSearchParams({ model: `/files/${job.model}`, anim: `/files/${job.anim}`,
      frames: String(job.frames || 24), shot: String(job.shot || 0), yaw: String(job.yaw || 0),
      w: String(spec.width || 320), h: String(spec.height || 400) });
    await page.goto(`http://127.0.0.1:${port}/anim.html?${qs}`);
    await page.waitForFunction(() => document.title === 'done' || document.title === 'error', null, { timeout: 120000 });
    const result = await page.evaluate(() => window.result);
    if (job.png) await page.screenshot({ path: job.png });
    console.log(JSON.stringify({ model: job.model, anim: job.anim, ...result, errors: errors.slice(0, 5),
      warnings: warnings.slice(0, 5) }));
  }
} finally {
  await browser.close();
  server.close();
}
