// chibi_meta artist preview: a browser client of the bridge (protocol v1, docs/protocol.md).
// It connects to the websocket on the host that served it, builds the form from the server's
// `hello`, sends `generate`, checks the asset's SHA-256 and shows it with three.js / three-vrm; VRM
// avatars play the idle clip (three-vrm-animation). Sliders drive every expression and morph target,
// and Say moves the mouth with visemes read from a typed sentence (speech.js).
// Everything the server sends is shown with textContent, never parsed as HTML.
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { VRMLoaderPlugin, VRMUtils } from '@pixiv/three-vrm';
import { VRMAnimationLoaderPlugin, VRMLookAtQuaternionProxy, createVRMAnimationClip } from '@pixiv/three-vrm-animation';
import { VISEMES, VISEME_TO_VRM, VRM_MOUTH, textToVisemes } from './speech.js';

const $ = (id) => document.getElementById(id);
const BACKGROUND = '#eef0f5';
const VIEW_FORMATS = ['glb', 'vrm'];
const IDLE_URL = 'animations/idle.vrma';
const LOOK_AT_PROXY = 'lookAtQuaternionProxy';
// VRM 1.0 expression presets that move the face (chibi_meta/avatar/names.py), in its order
const VRM_PRESETS = ['happy', 'angry', 'sad', 'relaxed', 'surprised', 'aa', 'ih', 'ou', 'ee', 'oh',
  'blink', 'blinkLeft', 'blinkRight', 'lookUp', 'lookDown', 'lookLeft', 'lookRight'];
const VISEME_TARGETS = VISEMES.map((v) => `viseme_${v}`);
const ATTACK = 0.035, DECAY = 0.07; // s: time constants of the mouth weights rising and falling
const BLINK = { min: 2, max: 6, close: 0.06, hold: 0.04, open: 0.1 }; // s: interval, then the blink itself
const SAMPLE_BONES = ['hips', 'spine', 'chest', 'neck', 'head', 'leftUpperArm', 'rightUpperArm'];
const state = { ws: null, hello: null, pending: null, header: null, nextId: 1, failed: false };
const view = { renderer: null, scene: null, camera: null, controls: null, root: null, vrm: null, head: null,
  url: null, mixer: null, clip: null, idle: null, dirty: true };
const face = { raw: new Map(), exprs: [], slider: new Map(), chan: new Map(), mouth: null, blink: [],
  nextBlink: 0, blinkStart: -Infinity, blinkHeld: true, blinks: 0, speech: null };

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
  view.controls.addEventListener('change', () => { view.dirty = true; });
  new ResizeObserver(resize).observe($('stage'));
  resize();
  view.renderer.setAnimationLoop(tick);
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
  view.dirty = false;
}

function clearModel() {
  stopSpeech();
  if (view.mixer) {
    view.mixer.stopAllAction();
    view.mixer.uncacheRoot(view.mixer.getRoot());
  }
  view.mixer = null;
  view.clip = null;
  if (view.root) {
    view.scene.remove(view.root);
    VRMUtils.deepDispose(view.root);
  }
  view.root = null;
  view.vrm = null;
  view.head = null;
  buildFace(null, null);
  $('face').hidden = true;
}

async function showModel(data, isVrm) {
  if (!view.renderer) return { shown: false };
  const loader = new GLTFLoader();
  if (isVrm) loader.register((parser) => new VRMLoaderPlugin(parser));
  const gltf = await loader.parseAsync(data, '');
  clearModel();
  const vrm = isVrm ? gltf.userData.vrm : null;
  if (isVrm && !vrm) throw new Error('the file has no VRM extension');
  view.root = vrm ? vrm.scene : gltf.scene;
  view.vrm = vrm;
  view.head = findHead(view.root);
  view.scene.add(view.root);
  if (vrm) vrm.update(0); // applies the look-at once (its expressions start at 0), then the sliders own them
  let note = '';
  if (vrm && vrm.humanoid) {
    try {
      await startIdle(vrm);
    } catch (e) {
      note = `; idle clip not loaded (${e && e.message ? e.message : e})`;
    }
    if (view.vrm !== vrm) return { shown: true, note }; // another model replaced this one meanwhile
  }
  buildFace(view.root, vrm);
  $('face').hidden = false;
  applyView();
  applyFace(0);
  render();
  return { shown: true, note };
}

// The idle clip (VRM Animation), fetched once from this server and retargeted onto each VRM.
function idleAnimation() {
  if (!view.idle) {
    const loader = new GLTFLoader();
    loader.register((parser) => new VRMAnimationLoaderPlugin(parser));
    view.idle = loader.loadAsync(IDLE_URL).then((gltf) => {
      const anims = gltf.userData.vrmAnimations;
      if (!anims || !anims.length) throw new Error(`${IDLE_URL} has no VRM animation`);
      return anims[0];
    });
    view.idle.catch(() => { view.idle = null; }); // try again with the next avatar
  }
  return view.idle;
}

async function startIdle(vrm) {
  const anim = await idleAnimation();
  if (view.vrm !== vrm) return;
  if (vrm.lookAt && !vrm.scene.getObjectByName(LOOK_AT_PROXY)) {
    const proxy = new VRMLookAtQuaternionProxy(vrm.lookAt); // created here, so createVRMAnimationClip does not warn
    proxy.name = LOOK_AT_PROXY;
    vrm.scene.add(proxy);
  }
  view.clip = createVRMAnimationClip(anim, vrm);
  view.mixer = new THREE.AnimationMixer(vrm.scene);
  view.mixer.clipAction(view.clip).play();
  view.mixer.update(0); // the clip's first pose, also while the animation is off
  vrm.update(0);
}

function findHead(root) {
  let head = root.getObjectByName('AvatarHead');
  if (head && !head.isMesh) head.traverse((o) => { if (o.isMesh && !head.isMesh) head = o; });
  if (head && head.isMesh) return head;
  let best = null;
  root.traverse((o) => {
    const n = o.isMesh && o.morphTargetDictionary ? Object.keys(o.morphTargetDictionary).length : 0;
    if (n && (!best || n > Object.keys(best.morphTargetDictionary).length)) best = o;
  });
  return best;
}

function frameBox(box) {
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
  view.dirty = true;
}

function headBox() {
  if (!view.head) return null;
  view.root.updateMatrixWorld(true);
  const box = new THREE.Box3().setFromObject(view.head, true); // true: skinned and morphed, as drawn
  return box.isEmpty() ? null : box;
}

function applyView() {
  if (!view.root) return;
  const box = $('view').value === 'face' ? headBox() : null;
  frameBox(box || new THREE.Box3().setFromObject(view.root));
}

// The head's bounding box on the canvas, in CSS pixels from its top left corner.
function faceRect() {
  const box = headBox();
  if (!box) return null;
  const canvas = $('canvas');
  const w = canvas.clientWidth, h = canvas.clientHeight;
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (let i = 0; i < 8; i++) {
    const p = new THREE.Vector3(i & 1 ? box.max.x : box.min.x, i & 2 ? box.max.y : box.min.y, i & 4 ? box.max.z : box.min.z);
    p.project(view.camera);
    const x = (p.x + 1) / 2 * w, y = (1 - p.y) / 2 * h;
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
  }
  x0 = Math.max(0, Math.floor(x0)); y0 = Math.max(0, Math.floor(y0));
  x1 = Math.min(w, Math.ceil(x1)); y1 = Math.min(h, Math.ceil(y1));
  return x1 > x0 && y1 > y0 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : null;
}

// -- face: expressions, visemes, speech, blinks -----------------------------------------------------
// Weights by key: 'x:<name>' a VRM expression (expressionManager), 'm:<name>' morph targets of that
// name on the model's meshes (morphTargetInfluences). What is applied is the larger of the slider
// and the animation (speech, blinks).

function buildFace(root, vrm) {
  face.raw = new Map();
  face.exprs = [];
  face.slider = new Map();
  face.chan = new Map();
  face.mouth = null;
  face.blink = [];
  face.nextBlink = 0;
  face.blinkStart = -Infinity;
  face.blinkHeld = true;
  const lists = { expr: [], viseme: [], other: [] };
  if (root) {
    root.traverse((o) => {
      if (!o.isMesh || !o.morphTargetDictionary || !o.morphTargetInfluences) return;
      for (const [name, idx] of Object.entries(o.morphTargetDictionary)) {
        if (!face.raw.has(name)) face.raw.set(name, []);
        face.raw.get(name).push({ mesh: o, idx });
      }
    });
    const em = vrm && vrm.expressionManager;
    if (em) {
      const names = em.expressions.map((e) => e.expressionName).filter((n) => n !== 'neutral');
      const rank = (n) => (VRM_PRESETS.includes(n) ? VRM_PRESETS.indexOf(n) : VRM_PRESETS.length);
      face.exprs = names.sort((a, b) => rank(a) - rank(b));
      // the expressions' own targets are theirs (three-vrm rewrites them every update): no raw sliders
      if (face.exprs.length) for (const n of VRM_PRESETS) face.raw.delete(n);
      lists.expr = face.exprs.map((n) => [`x:${n}`, n]);
    } else {
      lists.expr = VRM_PRESETS.filter((n) => face.raw.has(n)).map((n) => [`m:${n}`, n]);
    }
    lists.viseme = VISEME_TARGETS.filter((n) => face.raw.has(n)).map((n) => [`m:${n}`, n]);
    const listed = new Set([...lists.expr, ...lists.viseme].map(([k]) => k));
    lists.other = [...face.raw.keys()].filter((n) => !listed.has(`m:${n}`)).map((n) => [`m:${n}`, n]);
    face.mouth = mouthDriver();
    face.blink = ['x:blink', 'm:blink', 'm:eyesClosed'].filter(has).slice(0, 1);
    if (!face.blink.length && has('m:eyeBlinkLeft') && has('m:eyeBlinkRight')) face.blink = ['m:eyeBlinkLeft', 'm:eyeBlinkRight'];
    scheduleBlink(performance.now());
  }
  for (const [group, list] of Object.entries(lists)) {
    $(`${group}-list`).replaceChildren(...list.map(([key, name]) => sliderRow(key, name)));
  }
  $('expr-group').hidden = !lists.expr.length;
  $('viseme-group').hidden = !lists.viseme.length;
  $('other-group').hidden = !lists.other.length;
  $('other-count').textContent = String(lists.other.length);
  const none = root && !lists.expr.length && !lists.viseme.length && !lists.other.length;
  $('say-status').textContent = none ? 'This file has no morph targets or expressions (see Morph targets).'
    : face.mouth ? `Say moves the mouth with ${face.mouth.kind} read from the text (English rules, no sound).`
      : 'Say needs viseme morph targets (oculus) or mouth expressions (vrm): this file has neither.';
  $('say').disabled = !face.mouth;
}

function has(key) {
  return key.startsWith('x:') ? face.exprs.includes(key.slice(2)) : face.raw.has(key.slice(2));
}

// How the visemes of a sentence reach this model: VRM mouth expressions, Oculus viseme morph
// targets, or morph targets named after the VRM mouth presets (a GLB without the oculus set).
function mouthDriver() {
  const toVrm = (prefix) => Object.fromEntries(VISEMES.map((v) => [v, VISEME_TO_VRM[v] ? [prefix + VISEME_TO_VRM[v][0], VISEME_TO_VRM[v][1]] : null]));
  let mouth = null;
  if (VRM_MOUTH.every((n) => face.exprs.includes(n))) mouth = { kind: 'the VRM expressions aa, ih, ou, ee, oh', map: toVrm('x:') };
  else if (VISEME_TARGETS.every((n) => face.raw.has(n))) {
    mouth = { kind: 'the Oculus viseme morph targets', map: Object.fromEntries(VISEMES.map((v) => [v, [`m:viseme_${v}`, 1]])) };
  } else if (VRM_MOUTH.every((n) => face.raw.has(n))) mouth = { kind: 'the morph targets aa, ih, ou, ee, oh', map: toVrm('m:') };
  if (mouth) mouth.keys = [...new Set(Object.values(mouth.map).filter(Boolean).map(([k]) => k))];
  return mouth;
}

function sliderRow(key, name) {
  const label = document.createElement('label');
  label.className = 'slider';
  const text = document.createElement('span');
  text.textContent = name;
  const input = document.createElement('input');
  input.type = 'range';
  input.min = '0';
  input.max = '1';
  input.step = '0.01';
  input.value = '0';
  input.id = `${key[0]}-${name}`;
  input.dataset.key = key;
  const out = document.createElement('output');
  out.htmlFor = input.id;
  out.textContent = '0.00';
  input.addEventListener('input', guard('slider', () => {
    const v = Math.min(1, Math.max(0, Number(input.value) || 0));
    face.slider.set(key, v);
    out.textContent = v.toFixed(2);
    view.dirty = true;
  }));
  label.append(text, input, out);
  return label;
}

function weight(key) {
  return Math.max(face.slider.get(key) || 0, face.chan.get(key) || 0);
}

function applyFace(dt) {
  const vrm = view.vrm;
  if (vrm && vrm.expressionManager) for (const n of face.exprs) vrm.expressionManager.setValue(n, weight(`x:${n}`));
  if (vrm) vrm.update(dt);
  for (const [name, binds] of face.raw) {
    const w = weight(`m:${name}`);
    for (const { mesh, idx } of binds) mesh.morphTargetInfluences[idx] = w;
  }
}

function resetFace() {
  stopSpeech();
  face.slider.clear();
  face.chan.clear();
  for (const input of $('sliders').querySelectorAll('input[type=range]')) {
    input.value = '0';
    input.nextElementSibling.textContent = '0.00';
  }
  scheduleBlink(performance.now());
  view.dirty = true;
}

function scheduleBlink(now) {
  face.nextBlink = now + 1000 * (BLINK.min + Math.random() * (BLINK.max - BLINK.min));
}

// The blink's weight now: closing, held closed, opening. Every blink shows at least one frame fully
// closed, even when frames come slower than the blink (a software renderer).
function blinkWeight(now) {
  const e = (now - face.blinkStart) / 1000;
  if (e < 0) return 0;
  if (e < BLINK.close) return e / BLINK.close;
  if (e < BLINK.close + BLINK.hold || !face.blinkHeld) {
    if (!face.blinkHeld) face.blinkStart = now - 1000 * BLINK.close; // the hold starts now
    face.blinkHeld = true;
    return 1;
  }
  return Math.max(0, 1 - (e - BLINK.close - BLINK.hold) / BLINK.open);
}

function say() {
  if (!face.mouth) return;
  const text = $('say-text').value.trim();
  if (!text) {
    $('say-status').textContent = 'Type a sentence first.';
    return;
  }
  const seq = textToVisemes(text);
  if (!seq.some((s) => s.viseme !== 'sil')) {
    $('say-status').textContent = 'Nothing to say: the sentence has no letters.';
    return;
  }
  const dur = seq[seq.length - 1].end;
  face.speech = { seq, i: 0, t0: performance.now() };
  document.body.dataset.speaking = 'true';
  $('say-status').textContent = `saying ${seq.filter((s) => s.viseme !== 'sil').length} visemes in ${dur.toFixed(1)} s`;
}

function stopSpeech() {
  face.speech = null;
  delete document.body.dataset.speaking;
}

let lastTick = null;
function tick(now) {
  const dt = lastTick === null ? 0 : Math.min(0.25, (now - lastTick) / 1000); // no jump after a hidden tab
  lastTick = now;
  if (!view.root) {
    if (view.dirty) render();
    return;
  }
  let changed = view.dirty;
  const animate = $('animate').checked;
  if (animate && view.mixer) {
    view.mixer.update(dt);
    changed = true;
  }
  // the mouth: the current viseme's target weight, approached with attack / decay time constants
  const target = new Map();
  if (face.speech) {
    const t = (now - face.speech.t0) / 1000, seq = face.speech.seq;
    while (face.speech.i < seq.length && seq[face.speech.i].end <= t) face.speech.i++;
    const cur = seq[face.speech.i];
    if (cur && face.mouth.map[cur.viseme]) target.set(...face.mouth.map[cur.viseme]);
    if (!cur && face.mouth.keys.every((k) => (face.chan.get(k) || 0) === 0)) {
      stopSpeech();
      $('say-status').textContent = 'said it: type another sentence, or move the sliders';
    }
  }
  if (face.mouth) {
    for (const k of face.mouth.keys) {
      const c = face.chan.get(k) || 0, g = target.get(k) || 0;
      if (c === g) continue;
      let v = c + (g - c) * (1 - Math.exp(-dt / (g > c ? ATTACK : DECAY)));
      if (Math.abs(v - g) < 0.005) v = g;
      face.chan.set(k, v);
      changed = true;
    }
  }
  // blinks at random intervals while the animation is on
  if (face.blink.length) {
    if (animate && now >= face.nextBlink) {
      face.blinkStart = now;
      face.blinkHeld = false;
      face.blinks += 1;
      scheduleBlink(now);
    }
    const b = animate ? blinkWeight(now) : 0;
    for (const k of face.blink) {
      if ((face.chan.get(k) || 0) !== b) {
        face.chan.set(k, b);
        changed = true;
      }
    }
  }
  if (!changed) return;
  applyFace(animate ? dt : 0);
  render();
}

// Read-only hooks for automation and the browser console (tests/js/preview.mjs uses them).
function sample() {
  const out = { t: performance.now(), speaking: Boolean(face.speech), blinks: face.blinks, animate: $('animate').checked,
    time: view.mixer ? view.mixer.time : null, expressions: {}, morphs: {}, bones: {} };
  const vrm = view.vrm;
  if (vrm && vrm.expressionManager) for (const n of face.exprs) out.expressions[n] = vrm.expressionManager.getValue(n);
  for (const [name, binds] of face.raw) out.morphs[name] = Math.max(...binds.map(({ mesh, idx }) => mesh.morphTargetInfluences[idx]));
  if (vrm && vrm.humanoid) {
    for (const b of SAMPLE_BONES) {
      const node = vrm.humanoid.getNormalizedBoneNode(b);
      if (node) out.bones[b] = node.quaternion.toArray();
    }
  }
  return out;
}

window.chibiPreview = Object.freeze({
  info: () => ({
    loaded: Boolean(view.root), vrm: Boolean(view.vrm), head: view.head ? view.head.name : null,
    sliders: Object.fromEntries(['expr', 'viseme', 'other'].map((g) => [g,
      [...$(`${g}-list`).querySelectorAll('input')].map((i) => i.dataset.key.slice(2))])),
    mouth: face.mouth ? face.mouth.kind : null, blink: face.blink.slice(),
    clip: view.clip ? { name: view.clip.name, duration: view.clip.duration, tracks: view.clip.tracks.length } : null,
    time: view.mixer ? view.mixer.time : null,
  }),
  sample,
  faceRect,
  frames: (n = 2) => new Promise((resolve) => {
    const step = (k) => (k <= 0 ? resolve() : requestAnimationFrame(() => step(k - 1)));
    step(n);
  }),
});

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
  fillMorphSets(msg);
  setReady(true);
  setState('ready');
  setStatus('connected: pick attributes and press Generate', 'ok');
}

// One checkbox per morph-target set of hello.morph_target_sets ("none" is all unchecked), checked as
// hello.default_morph_targets says; a choice made before a reconnect is kept.
function fillMorphSets(msg) {
  const box = $('morph-sets');
  const sets = Array.isArray(msg.morph_target_sets) ? msg.morph_target_sets.filter((s) => s !== 'none') : [];
  const before = box.querySelectorAll('input').length
    ? new Set([...box.querySelectorAll('input:checked')].map((i) => i.value)) : null;
  const defaults = new Set(Array.isArray(msg.default_morph_targets) ? msg.default_morph_targets : sets);
  box.replaceChildren(...sets.map((set) => {
    const label = document.createElement('label');
    const input = document.createElement('input');
    input.type = 'checkbox';
    input.id = `morph-${set}`;
    input.value = set;
    input.checked = before ? before.has(set) : defaults.has(set);
    label.append(input, ` ${set}`);
    return label;
  }));
  for (const id of ['morph-sets', 'morph-label', 'morph-hint']) $(id).hidden = !sets.length;
}

function morphTargetsChoice() {
  const inputs = [...$('morph-sets').querySelectorAll('input')];
  if (!inputs.length) return null; // a server without the field: send nothing
  const chosen = inputs.filter((i) => i.checked).map((i) => i.value);
  return chosen.length ? chosen : ['none'];
}

function generate() {
  if (!state.hello || state.pending) return;
  const seedText = $('seed').value.trim();
  const attributes = {};
  for (const sel of $('attr-list').querySelectorAll('select')) if (sel.value) attributes[sel.name] = sel.value;
  const format = $('format').value;
  const msg = { type: 'generate', id: `preview-${state.nextId++}`, attributes, format,
    texture_size: Number($('texture-size').value) };
  const morphs = morphTargetsChoice();
  if (morphs) msg.morph_targets = morphs;
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
  let shown, note;
  try {
    ({ shown, note } = await showModel(data, header.format === 'vrm'));
  } catch (e) {
    fail(`could not show ${name} (the download still works)`, e);
    return;
  }
  const kb = (data.byteLength / 1024).toFixed(0);
  setStatus(`${shown ? 'loaded' : 'received (no 3D view)'} ${name}, ${kb} KB${header.cached ? ', cached' : ''}; ${check}${note}`, 'ok');
  setState(shown ? 'loaded' : 'received');
}

function showResult(header, name, blob) {
  const list = $('result-list');
  const rows = [['Seed', String(header.seed)], ...Object.entries(header.attributes || {}),
    ['format', `${header.format}, texture ${header.texture_size} px ${header.texture_format}`],
    ...(Array.isArray(header.morph_targets) ? [['morph_targets', header.morph_targets.join(', ')]] : []),
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
$('animate').addEventListener('change', guard('animation', () => { view.dirty = true; }));
$('view').addEventListener('change', guard('view', () => applyView()));
$('reset').addEventListener('click', guard('reset', () => resetFace()));
$('say-form').addEventListener('submit', guard('say', (ev) => {
  ev.preventDefault();
  say();
}));

try {
  initViewer();
} catch (e) {
  fail('viewer', e);
}
connect();
