// chibi_meta artist preview: a browser client of the bridge (protocol v1, docs/protocol.md).
// It connects to the websocket on the host that served it, builds the form from the server's
// `hello`, sends `generate`, checks the asset's SHA-256 and shows it with three.js / three-vrm.
// Everything the server sends is shown with textContent, never parsed as HTML.
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { VRMLoaderPlugin, VRMUtils } from '@pixiv/three-vrm';

const $ = (id) => document.getElementById(id);
const BACKGROUND = '#eef0f5';
const VIEW_FORMATS = ['glb', 'vrm'];
const state = { ws: null, hello: null, pending: null, header: null, nextId: 1, failed: false };
const view = { renderer: null, scene: null, camera: null, controls: null, root: null, vrm: null, url: null };

function setState(s) { document.body.dataset.state = s; }

function setStatus(text, kind = 'info') {
  const el = $('status');
  el.textContent = text;
  el.className = kind;
}

function fail(where, err) {
  setStatus(`${where}: ${err && err.message ? err.message : String(err)}`, 'error');
  setState('error');
}

function setConn(text, ok) {
  const el = $('conn');
  el.textContent = text;
  el.classList.toggle('ok', Boolean(ok));
}

function setReady(ready) {
  $('attrs').disabled = !ready;
  $('options').disabled = !ready;
  $('generate').disabled = !ready || state.pending !== null;
}

// -- viewer ---------------------------------------------------------------------------------------

function initViewer() {
  const canvas = $('canvas');
  try {
    view.renderer = new THREE.WebGLRenderer({ canvas, antialias: true });
  } catch (e) {
    view.renderer = null;
    setStatus(`WebGL is not available (${e.message || e}); you can still generate and download`, 'error');
    return;
  }
  view.renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, 2));
  view.renderer.setClearColor(new THREE.Color(BACKGROUND));
  view.scene = new THREE.Scene();
  view.scene.add(new THREE.HemisphereLight(0xffffff, 0xd8c8e0, 2.0));
  const sun = new THREE.DirectionalLight(0xffffff, 1.6);
  sun.position.set(0.6, 1.5, 2.0);
  view.scene.add(sun);
  view.camera = new THREE.PerspectiveCamera(30, 1, 0.02, 50);
  view.camera.position.set(0, 0.6, 2.3);
  view.controls = new OrbitControls(view.camera, canvas);
  view.controls.target.set(0, 0.5, 0);
  view.controls.update();
  view.controls.addEventListener('change', render);
  new ResizeObserver(resize).observe($('stage'));
  resize();
}

function resize() {
  if (!view.renderer) return;
  const stage = $('stage');
  const w = Math.max(1, stage.clientWidth), h = Math.max(1, stage.clientHeight);
  view.renderer.setSize(w, h, false);
  view.camera.aspect = w / h;
  view.camera.updateProjectionMatrix();
  render();
}

function render() {
  if (view.renderer) view.renderer.render(view.scene, view.camera);
}

function clearModel() {
  if (view.root) {
    view.scene.remove(view.root);
    VRMUtils.deepDispose(view.root);
  }
  view.root = null;
  view.vrm = null;
  $('expressions').hidden = true;
}

async function showModel(data, isVrm) {
  if (!view.renderer) return false;
  const loader = new GLTFLoader();
  if (isVrm) loader.register((parser) => new VRMLoaderPlugin(parser));
  const gltf = await loader.parseAsync(data, '');
  clearModel();
  const vrm = isVrm ? gltf.userData.vrm : null;
  if (isVrm && !vrm) throw new Error('the file has no VRM extension');
  view.root = vrm ? vrm.scene : gltf.scene;
  view.vrm = vrm;
  view.scene.add(view.root);
  if (vrm) {
    $('expr-blink').checked = false;
    $('expr-happy').checked = false;
    $('expressions').hidden = false;
    vrm.update(0);
  }
  frame(view.root);
  render();
  return true;
}

function frame(obj) {
  const box = new THREE.Box3().setFromObject(obj);
  if (box.isEmpty()) return;
  const size = box.getSize(new THREE.Vector3());
  const center = box.getCenter(new THREE.Vector3());
  const fit = Math.max(size.y, size.x / view.camera.aspect) / (2 * Math.tan(THREE.MathUtils.degToRad(view.camera.fov / 2)));
  const dist = fit * 1.15 + size.z / 2;
  view.controls.target.copy(center);
  view.camera.position.set(center.x, center.y + size.y * 0.05, center.z + dist);
  view.camera.near = dist / 100;
  view.camera.far = dist * 10;
  view.camera.updateProjectionMatrix();
  view.controls.update();
}

function setExpression(name, on) {
  if (!view.vrm || !view.vrm.expressionManager) return;
  view.vrm.expressionManager.setValue(name, on ? 1.0 : 0.0);
  view.vrm.update(0);
  render();
}

// -- protocol -------------------------------------------------------------------------------------

function send(msg) {
  if (!state.ws || state.ws.readyState !== WebSocket.OPEN) throw new Error('not connected');
  state.ws.send(JSON.stringify(msg));
}

function connect() {
  if (state.ws) {
    const old = state.ws;
    state.ws = null;
    old.onopen = old.onmessage = old.onclose = old.onerror = null;
    old.close(1000);
  }
  state.hello = null;
  state.pending = null;
  state.header = null;
  state.failed = false;
  setReady(false);
  setState('connecting');
  setConn('connecting', false);
  setStatus('connecting to the server');
  const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/`;
  let ws;
  try {
    ws = new WebSocket(url);
  } catch (e) {
    fail('cannot connect', e);
    return;
  }
  ws.binaryType = 'arraybuffer';
  state.ws = ws;
  ws.onopen = () => {
    const hello = { type: 'hello', protocol: 1, client: 'chibi-meta-preview' };
    const token = $('token').value;
    if (token) hello.token = token;
    ws.send(JSON.stringify(hello));
  };
  ws.onmessage = (ev) => {
    if (ws !== state.ws) return;
    onFrame(ev.data).catch((e) => fail('error', e));
  };
  ws.onerror = () => {}; // a close event follows with the details
  ws.onclose = (ev) => {
    if (ws !== state.ws) return;
    state.ws = null;
    state.pending = null;
    setReady(false);
    setConn(state.failed ? 'unauthorized' : `disconnected (${ev.code})`, false);
    if (!state.failed) {
      setStatus(`disconnected from the server (code ${ev.code}${ev.reason ? `: ${ev.reason}` : ''}); press Connect`, 'error');
      setState('error');
    }
  };
}

async function onFrame(data) {
  if (typeof data !== 'string') {
    const header = state.header;
    state.header = null;
    if (header) await onAsset(header, data);
    return;
  }
  let msg;
  try {
    msg = JSON.parse(data);
  } catch {
    fail('the server sent something that is not JSON', '');
    return;
  }
  if (msg.type === 'hello') onHello(msg);
  else if (msg.type === 'result') state.header = msg;
  else if (msg.type === 'error') onError(msg);
  else if (msg.type === 'cancelled' && state.pending && msg.id === state.pending.id) {
    state.pending = null;
    setReady(true);
    setStatus('cancelled');
  }
}

function onError(msg) {
  const text = `${msg.code}: ${msg.message}`;
  if (msg.code === 'unauthorized') {
    state.failed = true;
    setConn('unauthorized', false);
    setStatus(`${text}. Enter the token and press Connect.`, 'error');
    setState('error');
    $('token').focus();
    return;
  }
  if (state.pending && (msg.id === state.pending.id || msg.id === null)) state.pending = null;
  setStatus(text + (msg.retry_after_ms ? ` (retry in ${msg.retry_after_ms} ms)` : ''), 'error');
  setState('error');
  setReady(true);
}

function option(value, text) {
  const o = document.createElement('option');
  o.value = value;
  o.textContent = text;
  return o;
}

function fillSelect(sel, values, keep) {
  const old = keep ? sel.value : null;
  sel.replaceChildren(...values.map((v) => option(String(v), String(v))));
  if (old && values.map(String).includes(old)) sel.value = old;
}

function onHello(msg) {
  state.hello = msg;
  setConn(`connected: ${msg.server || 'server'}`, true);
  $('model').textContent = `model ${msg.model_id}`;
  $('attribution').textContent = msg.attribution || '(the server sent no attribution)';
  const list = $('attr-list');
  const previous = {};
  for (const sel of list.querySelectorAll('select')) previous[sel.name] = sel.value;
  const rows = [];
  for (const [name, values] of Object.entries(msg.attributes || {})) {
    const id = `attr-${name}`;
    const label = document.createElement('label');
    label.htmlFor = id;
    label.textContent = name.replace(/_/g, ' ');
    const sel = document.createElement('select');
    sel.id = id;
    sel.name = name;
    sel.append(option('', 'random'), ...values.map((v) => option(v, v)));
    if (values.includes(previous[name])) sel.value = previous[name];
    rows.push(label, sel);
  }
  list.replaceChildren(...rows);
  fillSelect($('format'), (msg.formats || []).filter((f) => VIEW_FORMATS.includes(f)), true);
  fillSelect($('texture-size'), msg.texture_sizes || [256], true);
  setReady(true);
  setState('ready');
  setStatus('connected: pick attributes and press Generate', 'ok');
}

function generate() {
  if (!state.hello || state.pending) return;
  const seedText = $('seed').value.trim();
  const attributes = {};
  for (const sel of $('attr-list').querySelectorAll('select')) if (sel.value) attributes[sel.name] = sel.value;
  const format = $('format').value;
  const msg = { type: 'generate', id: `preview-${state.nextId++}`, attributes, format,
    texture_size: Number($('texture-size').value) };
  if (seedText !== '') {
    const seed = Number(seedText);
    if (!Number.isInteger(seed)) {
      setStatus(`the seed must be a whole number, got ${seedText}`, 'error');
      return;
    }
    msg.seed = seed; // range errors come back from the server as invalid_value
  }
  send(msg);
  state.pending = { id: msg.id, format };
  setReady(true);
  setState('generating');
  setStatus('generating...');
}

async function sha256Hex(data) {
  if (!window.isSecureContext || !window.crypto || !crypto.subtle) return null;
  const digest = await crypto.subtle.digest('SHA-256', data);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

async function onAsset(header, data) {
  if (!state.pending || header.id !== state.pending.id) return; // a reply to a request we dropped
  state.pending = null;
  setReady(true);
  if (data.byteLength !== header.byte_length) {
    fail('not loaded', new Error(`expected ${header.byte_length} bytes, got ${data.byteLength}`));
    return;
  }
  const hex = await sha256Hex(data);
  if (hex !== null && hex !== header.sha256) {
    fail('not loaded', new Error('the SHA-256 of the asset does not match the header'));
    return;
  }
  const check = hex === null ? 'SHA-256 not checked (needs a secure context: https or localhost)' : 'SHA-256 verified';
  const name = `chibi-${header.seed}.${header.format}`;
  const blob = new Blob([data], { type: header.media_type || 'application/octet-stream' });
  showResult(header, name, blob);
  let shown;
  try {
    shown = await showModel(data, header.format === 'vrm');
  } catch (e) {
    fail(`could not show ${name} (the download still works)`, e);
    return;
  }
  const kb = (data.byteLength / 1024).toFixed(0);
  setStatus(`${shown ? 'loaded' : 'received (no 3D view)'} ${name}, ${kb} KB${header.cached ? ', cached' : ''}; ${check}`, 'ok');
  setState(shown ? 'loaded' : 'received');
}

function showResult(header, name, blob) {
  const list = $('result-list');
  const rows = [['Seed', String(header.seed)], ...Object.entries(header.attributes || {}),
    ['format', `${header.format}, texture ${header.texture_size} px ${header.texture_format}`],
    ['sha256', String(header.sha256).slice(0, 16) + '...']];
  const out = [];
  for (const [k, v] of rows) {
    const dt = document.createElement('dt');
    dt.textContent = k.replace(/_/g, ' ');
    const dd = document.createElement('dd');
    dd.textContent = v;
    if (k === 'Seed') dd.id = 'out-seed';
    else dd.dataset.attr = k;
    out.push(dt, dd);
  }
  list.replaceChildren(...out);
  if (view.url) URL.revokeObjectURL(view.url);
  view.url = URL.createObjectURL(blob);
  const a = $('download');
  a.href = view.url;
  a.download = name;
  a.textContent = `Download ${name}`;
  a.hidden = false;
  $('result').hidden = false;
}

// -- wiring ---------------------------------------------------------------------------------------

function guard(where, fn) {
  return (ev) => {
    try {
      fn(ev);
    } catch (e) {
      fail(where, e);
    }
  };
}

window.addEventListener('unhandledrejection', (ev) => fail('error', ev.reason));
window.addEventListener('error', (ev) => fail('error', ev.error || ev.message));

$('controls').addEventListener('submit', guard('generate', (ev) => {
  ev.preventDefault();
  generate();
}));
$('connect').addEventListener('click', guard('connect', () => connect()));
$('token').addEventListener('keydown', guard('connect', (ev) => {
  if (ev.key === 'Enter') {
    ev.preventDefault();
    connect();
  }
}));
$('expr-blink').addEventListener('change', guard('expression', (ev) => setExpression('blink', ev.target.checked)));
$('expr-happy').addEventListener('change', guard('expression', (ev) => setExpression('happy', ev.target.checked)));

try {
  initViewer();
} catch (e) {
  fail('viewer', e);
}
connect();
