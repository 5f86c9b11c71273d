// Render VRM expressions in headless Chromium with three.js + three-vrm: for each file, the head node
// (AvatarHead) from the front, orthographic and unlit (MeshBasicMaterial with the file's texture),
// framing a world box exactly, on a transparent background; once neutral and once per expression set
// to 1 through vrm.expressionManager.setValue (three-vrm applies the expression's morphTargetBinds).
// Usage: node expressions.mjs SPEC.json   SPEC = {"files": {NAME: PATH}, "out_dir": DIR, "size": 128,
//   "box": [x0, y0, x1, y1], "exprs": ["blink", ...]}. Writes DIR/NAME.EXPR.rgba (size*size*4 bytes,
// rows top to bottom, as the canvas holds them: premultiplied by coverage) and prints one JSON line per
// file: {file, ok, expressions (what three-vrm found), errors}.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { launch, serve } from './harness.mjs';

const spec = JSON.parse(await readFile(process.argv[2], 'utf8'));
const { server, port } = await serve('expressions.html', (rel) => spec.files[decodeURIComponent(rel)] || null);
const browser = await launch();
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
