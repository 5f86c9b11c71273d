// Shared by the headless-Chromium runners (render.mjs, anim.mjs, expressions.mjs here, and
// ../talkinghead/run.mjs): a file server on 127.0.0.1 and Chromium launched the way that works here
// (SwiftShader). `serve` serves one page of this folder, this folder under /js/ (node_modules
// included) and the files a runner names under /files/; `serveFiles` serves what a resolver names.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { join, normalize, extname, dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const here = dirname(fileURLToPath(import.meta.url));
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript',
  '.glb': 'model/gltf-binary', '.vrm': 'model/gltf-binary', '.vrma': 'model/gltf-binary', '.json': 'application/json' };

export function safeJoin(root, rel) {
  const p = normalize(join(root, decodeURIComponent(rel)));
  return p === normalize(root) || p.startsWith(normalize(root) + sep) ? p : null;
}

// Serve the file resolve(pathname) names (a path, or null for 404). Resolves to {server, port}.
export async function serveFiles(resolve) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/favicon.ico') { res.writeHead(204); res.end(); return; }
    const path = resolve(url.pathname);
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

// Serve /PAGE from this folder, /js/... from this folder, /files/NAME from fileFor(NAME) (a path or null).
export function serve(page, fileFor) {
  return serveFiles((p) => {
    if (p === `/${page}`) return join(here, page);
    if (p.startsWith('/js/')) return safeJoin(here, p.slice(4));
    if (p.startsWith('/files/')) return fileFor(p.slice(7));
    return null;
  });
}

export function launch(extraArgs = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-swiftshader', '--use-angle=swiftshader',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}
