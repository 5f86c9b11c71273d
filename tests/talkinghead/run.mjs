// TalkingHead 1.7.0 in headless Chromium on exported avatars (tests/test_talkinghead.py).
// Usage: node run.mjs SPEC.json   where SPEC.json = {"files_dir": DIR, "hide": HIDE_M, "jobs": [{"file": NAME,
//   "mode": "loop"|"step", "blob": bool, "speech": {words, wtimes, wdurations} | null, "shot": PATH | null,
//   "shot_after_ms": MS | null (screenshot MS after it starts speaking, else at the end)}], "width": W, "height": H}.
// Serves page.html, this folder's node_modules and files_dir on 127.0.0.1 only; any request to
// another host is aborted and reported. Prints one JSON line per job: what page.html reported, plus
// console errors, the paths the page fetched and the remote requests it tried.
import { readFile } from 'node:fs/promises';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, safeJoin, serveFiles } from '../js/harness.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const spec = JSON.parse(await readFile(process.argv[2], 'utf8'));
const { server, port } = await serveFiles((p) => {
  if (p === '/page.html') return join(here, 'page.html');
  if (p.startsWith('/node_modules/')) return safeJoin(join(here, 'node_modules'), p.slice(14));
  if (p.startsWith('/files/')) return safeJoin(spec.files_dir, p.slice(7));
  return null;
});
const origin = `http://127.0.0.1:${port}`;
const browser = await launch(['--autoplay-policy=no-user-gesture-required']);
async function runJob(job) {  // one page per job: its own console, requests and result
  const page = await browser.newPage({ viewport: { width: spec.width || 480, height: spec.height || 540 } });
  const consoleErrors = [], consoleLog = [], fetched = [], remote = [], notFound = [];
  page.on('console', (m) => (m.type() === 'error' ? consoleErrors : consoleLog).push(m.text()));
  page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e}`));
  page.on('response', (r) => { if (r.status() === 404) notFound.push(r.url().replace(origin, '')); });
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(origin + '/')) { fetched.push(u.slice(origin.length)); return route.continue(); }
    if (u.startsWith('data:') || u.startsWith('blob:')) return route.continue();
    remote.push(u);
    return route.abort();
  });
  const qs = new URLSearchParams({ avatar: `/files/${job.file}`, mode: job.mode || 'loop' });
  if (job.speech) qs.set('speech', JSON.stringify(job.speech)); else qs.set('speak', '0');
  if (job.blob) qs.set('blob', '1');
  if (spec.hide) qs.set('hide', String(spec.hide));
  const t0 = Date.now();
  await page.goto(`${origin}/page.html?${qs}`);
  let shotAt = null;
  if (job.shot && job.shot_after_ms != null) {  // a frame while it speaks
    await page.waitForFunction(() => ['speaking', 'done', 'error'].includes(document.title), null, { timeout: 90000 });
    await page.waitForTimeout(job.shot_after_ms);
    // and 3 frames drawn since (its loop runs at 1-8 fps here; on a loaded machine the wait alone
    // has caught a frame from before the head was framed)
    await page.evaluate(() => new Promise((r) => {
      let n = 3; const f = () => (--n <= 0 ? r() : requestAnimationFrame(f)); requestAnimationFrame(f);
    }));
    shotAt = Date.now() - t0;
    await page.screenshot({ path: job.shot });
  }
  await page.waitForFunction(() => document.title === 'done' || document.title === 'error', null, { timeout: 90000 });
  const result = await page.evaluate(() => window.result);
  if (job.shot && shotAt === null) await page.screenshot({ path: job.shot });
  const out = { file: job.file, title: await page.title(), ms: Date.now() - t0, ...result,
    console: consoleErrors.slice(0, 10), log: consoleLog.slice(0, 10), fetched: [...new Set(fetched)], notFound, remote };
  await page.close();
  return out;
}

try {
  // Jobs run side by side (each is mostly waiting for its sentence to be spoken); "serial": true in
  // the spec runs them one after the other.
  const results = spec.serial ? [] : await Promise.all(spec.jobs.map(runJob));
  if (spec.serial) for (const job of spec.jobs) results.push(await runJob(job));
  for (const r of results) console.log(JSON.stringify(r));
} finally {
  await browser.close();
  server.close();
}
