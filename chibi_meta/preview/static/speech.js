// chibi_meta preview: text -> Oculus visemes with a small rule-based English grapheme table, timed at
// a fixed speaking rate. No network, no TTS: it only moves the mouth, it makes no sound.
// Pure functions (no DOM), so node can import this file too.

// The 15 Oculus visemes, in their usual order (the morph targets are named `viseme_<name>`).
export const VISEMES = ['sil', 'PP', 'FF', 'TH', 'DD', 'kk', 'CH', 'SS', 'nn', 'RR', 'aa', 'E', 'I', 'O', 'U'];

// A VRM has five mouth expressions: each viseme becomes one of them at a weight, or a closed mouth.
// Weight 1 throughout: the avatars' mouths are drawn states shown by morph targets, which are still
// mostly hidden at half weight, so a partial weight would read as a closed mouth.
export const VISEME_TO_VRM = {
  sil: null, PP: null, // lips closed
  FF: ['ih', 1], TH: ['ih', 1], DD: ['ih', 1], kk: ['aa', 1], CH: ['ou', 1], SS: ['ih', 1],
  nn: ['ih', 1], RR: ['ou', 1], aa: ['aa', 1], E: ['ee', 1], I: ['ih', 1], O: ['oh', 1], U: ['ou', 1],
};
export const VRM_MOUTH = ['aa', 'ih', 'ou', 'ee', 'oh'];

// The speaking rate: seconds per viseme (vowels are held longer) and per pause.
export const TIMING = { consonant: 0.075, vowel: 0.12, word: 0.05, comma: 0.22, stop: 0.4 };
const VOWELS = new Set(['aa', 'E', 'I', 'O', 'U']);

// Graphemes, longest first within each starting letter; each gives zero or more visemes.
const RULES = [
  ['tch', 'CH'], ['sch', 'SS kk'], ['igh', 'aa I'], ['ough', 'O'], ['augh', 'O'], ['eigh', 'E'],
  ['tion', 'CH nn'], ['sion', 'CH nn'], ['ture', 'CH RR'],
  ['th', 'TH'], ['sh', 'CH'], ['ch', 'CH'], ['ph', 'FF'], ['gh', ''], ['ng', 'nn'], ['ck', 'kk'], ['qu', 'kk U'],
  ['wh', 'U'], ['wr', 'RR'], ['kn', 'nn'], ['gn', 'nn'], ['mb', 'PP'], ['dg', 'CH'],
  ['ee', 'I'], ['ea', 'I'], ['ie', 'I'], ['ei', 'E'], ['ey', 'E'], ['ai', 'E'], ['ay', 'E'], ['oo', 'U'],
  ['ou', 'aa U'], ['ow', 'O'], ['oa', 'O'], ['oi', 'O I'], ['oy', 'O I'], ['au', 'O'], ['aw', 'O'], ['ew', 'U'],
  ['ue', 'U'], ['ui', 'U'], ['er', 'RR'], ['ir', 'RR'], ['ur', 'RR'], ['ar', 'aa RR'], ['or', 'O RR'],
  ['a', 'aa'], ['e', 'E'], ['i', 'I'], ['o', 'O'], ['u', 'U'], ['y', 'I'],
  ['b', 'PP'], ['m', 'PP'], ['p', 'PP'], ['f', 'FF'], ['v', 'FF'], ['d', 'DD'], ['t', 'DD'], ['l', 'nn'],
  ['n', 'nn'], ['k', 'kk'], ['g', 'kk'], ['c', 'kk'], ['q', 'kk'], ['x', 'kk SS'], ['s', 'SS'], ['z', 'SS'],
  ['j', 'CH'], ['r', 'RR'], ['w', 'U'], ['h', ''],
].map(([g, v]) => [g, v ? v.split(' ') : []]);
const DIGITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

// The visemes of one word (lower-case letters a-z only).
export function wordToVisemes(word) {
  const out = [];
  // a final silent e ("make", "time"), but not in short words ("the", "be") or after a vowel
  let w = word;
  if (w.length > 3 && w.endsWith('e') && !/[aeiouy]e$/.test(w)) w = w.slice(0, -1);
  for (let i = 0; i < w.length;) {
    const next = word[i + 1] || ''; // from the whole word: the c of "nice" sees its silent e
    let vis = null, len = 1;
    if (w[i] === 'c' && 'eiy'.includes(next) && next) vis = ['SS'];        // city, cent
    else if (w[i] === 'g' && 'eiy'.includes(next) && next && i > 0) vis = ['CH']; // page, magic ("get" keeps k)
    else if (w[i] === next && !'aeiou'.includes(w[i])) { len = 2; }          // doubled consonant: once
    if (vis === null) {
      for (const [g, v] of RULES) {
        if (w.startsWith(g, i)) {
          vis = v;
          len = Math.max(len, g.length);
          break;
        }
      }
    }
    for (const v of vis || []) if (out[out.length - 1] !== v || VOWELS.has(v)) out.push(v);
    i += len;
  }
  return out;
}

// The text's visemes and pauses, timed: [{viseme, start, end}] in seconds from 0 (viseme 'sil' for pauses).
export function textToVisemes(text) {
  const norm = String(text).normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase()
    .replace(/[0-9]/g, (d) => ` ${DIGITS[Number(d)]} `);
  const out = [];
  let t = 0;
  const push = (viseme, dur) => {
    const last = out[out.length - 1];
    if (viseme === 'sil' && last && last.viseme === 'sil') last.end += dur; // pauses merge
    else out.push({ viseme, start: t, end: t + dur });
    t += dur;
  };
  for (const token of norm.match(/[a-z']+|[.!?]+|[,;:\u2013\u2014-]+|\s+|./g) || []) {
    if (/^[a-z']+$/.test(token)) {
      if (out.length && out[out.length - 1].viseme !== 'sil') push('sil', TIMING.word);
      for (const v of wordToVisemes(token.replace(/'/g, ''))) push(v, VOWELS.has(v) ? TIMING.vowel : TIMING.consonant);
    } else if (/^[.!?]+$/.test(token)) push('sil', TIMING.stop);
    else if (/^[,;:\u2013\u2014-]+$/.test(token)) push('sil', TIMING.comma);
  }
  if (out.length && out[out.length - 1].viseme !== 'sil') push('sil', TIMING.word);
  return out;
}
