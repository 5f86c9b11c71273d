// Shared by the headless-Chromium runners (render.mjs, anim.mjs, expressions.mjs): a file server on
// 127.0.0.1 that serves one page of this folder, this folder under /js/ (node_modules included) and
// the files a runner names under /files/; and Chromium launched the way that works here (SwiftShader).
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { join, normalize, extname, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = dirname(fileURLToPath(import.meta.url));
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.glb': 'model/gltf-binary', '.vrm': 'model/gltf-binary', '.vrma': 'model/gltf-binary' };

export function safeJoin(root, rel) {
  const p = normalize(join(root, decodeURIComponent(rel)));
  return p.startsWith(normalize(root)) ? p : null;
}

// Serve /PAGE from this folder, /js/... from this folder, /files/NAME from fileFor(NAME) (a path or null).
// Resolves to {server, port}.
export async function serve(page, fileFor) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    let path = null;
    if (url.pathname === '/favicon.ico') { res.writeHead(204); res.end(); return; }
    if (url.pathname === `/${page}`) path = join(here, page);
    else if (url.pathname.startsWith('/js/')) path = safeJoin(here, url.pathname.slice(4));
    else if (url.pathname.startsWith('/files/')) path = fileFor(url.pathname.slice(7));
    try {
      if (!path || !(await stat(path)).isFile()) throw new Error('nf');
      res.writeHead(200, { 'content-type': TYPES[extname(path)] || 'application/octet-stream' });
      res.end(await readFile(path));
    } catch {
      res.writeHead(404); res.end();
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: server.address().port };
}

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--use-angle=swiftshader',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
