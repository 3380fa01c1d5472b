#!/usr/bin/env node
// Differential test of the two PMF grammars on generated input: random
// policies built from the grammar (with keywords and reserved words used as
// names, comments and line breaks between tokens) and random token-level
// mutations of the repository's .pmf files. For every file, pest (`pmf check`,
// syntax codes PMF001-PMF004) and tree-sitter (`tree-sitter parse`, no ERROR or
// MISSING node) must agree. The seed is fixed, so a run is reproducible.
//
// Usage: node fuzz-agreement.js PATH/TO/pmf [CASES] [SEED]
// Needs `tree-sitter` on PATH and the parser generated (`tree-sitter generate`).
'use strict';

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const [pmfArg, casesArg = '2000', seedArg = '1'] = process.argv.slice(2);
if (!pmfArg) {
  console.error('usage: node fuzz-agreement.js PATH/TO/pmf [CASES] [SEED]');
  process.exit(2);
}
const pmf = path.resolve(pmfArg);
const cases = Number(casesArg);
const grammarDir = __dirname;
const root = path.resolve(grammarDir, '..', '..');

// mulberry32: a small deterministic PRNG.
let state = Number(seedArg) >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
const pick = (list) => list[Math.floor(random() * list.length)];

// ------------------------------------------------------------------ generator
const KEYWORDS = [
  'policy', 'override', 'authority', 'category', 'partner', 'migration', 'order',
  'compatibility', 'sustainability', 'validation', 'health', 'flow', 'ceiling', 'rite',
  'key', 'extends', 'governs', 'covers', 'when', 'reversible', 'backward_compatible', 'requires',
  'mapping', 'approve', 'by', 'governing', 'touches', 'to', 'previous_stable', 'else',
  'factor', 'weight', 'from', 'band', 'phase', 'fallible', 'fail', 'max', 'set', 'and', 'or',
  'not', 'in', 'true', 'false', 'len', 'min', 'abs',
  'test', 'target', 'observed', 'approved', 'expect', 'none', 'null', 'type', 'action', 'outcome',
  'approvals', 'fixture', 'like',
];
const name = () => (random() < 0.35 ? pick(KEYWORDS) : pick(['a', 'b', 'x_1', 'TSC', 'soft', 'detection', 'fallback', 'region']));
function sep() {
  const r = random();
  if (r < 0.7) return ' ';
  if (r < 0.8) return '\n  ';
  if (r < 0.85) return '\n';
  if (r < 0.9) return ' /* c */ ';
  if (r < 0.95) return ' // c\n  ';
  return '';
}
const J = (...parts) => parts.reduce((acc, p, i) => (i ? acc + sep() + p : p), '');
function list(item, n = int(1, 3)) {
  const items = Array.from({ length: n }, item);
  return J(...items.flatMap((it, i) => (i ? [',', it] : [it])));
}
const string = () => pick(['"s"', '"a b"', '"q\\"x"', '']);
const pathExpr = () => Array.from({ length: int(1, 3) }, name).join('.');
function expr(depth = 0) {
  const r = random();
  if (depth > 3 || r < 0.35) return pick([pathExpr(), pathExpr(), '1', '0.5', '1.2.3', '1.2.3-rc.1', '"s"', 'true', 'false']);
  if (r < 0.6) return J(expr(depth + 1), pick(['and', 'or', '==', '!=', '<', '<=', '>', '>=', 'in', 'not in', '+', '-', '*', '/']), expr(depth + 1));
  if (r < 0.7) return J(pick(['not', '-']), expr(depth + 1));
  if (r < 0.8) return J('(', expr(depth + 1), ')');
  if (r < 0.9) return J(name(), '(', list(() => expr(depth + 1)), ')');
  return J('[', list(() => expr(depth + 1)), ']');
}
function type(depth = 0) {
  const r = random();
  if (depth > 2 || r < 0.6) return name();
  if (r < 0.8) return J('set', '<', type(depth + 1), '>');
  return J('{', ...Array.from({ length: int(0, 2) }, () => J(name(), ':', type(depth + 1))), '}');
}
const num = () => pick(['1', '0.35', '-1', '10', '100']);
// A test block's record: `{ name: value, ... }`, a value being a record, `null`
// or an expression.
function record(depth = 0) {
  return J('{', ...Array.from({ length: int(0, 3) }, () => {
    const r = random();
    const value = depth < 2 && r < 0.2 ? record(depth + 1) : r < 0.35 ? 'null' : expr(1);
    return J(name(), ':', value) + pick(['', ',', ',']);
  }), '}');
}
const repeat = (lo, hi, f) => Array.from({ length: int(lo, hi) }, f);
function declaration() {
  const ov = random() < 0.2 ? 'override ' : '';
  switch (int(0, 15)) {
    case 0: return ov + J('authority', name(), string(), ...(random() < 0.7 ? ['governs', list(name)] : []));
    case 1: return ov + J('category', name(), string(), ...(random() < 0.7 ? ['covers', list(pathExpr)] : []));
    case 2: return ov + J('partner', '{', ...repeat(0, 3, () => J(name(), ':', type()) + pick(['', ','])), '}');
    case 3: return ov + J('migration', name(), string(), '{', ...repeat(0, 4, () => pick([
      () => J('when', expr()), () => 'reversible', () => 'backward_compatible', () => J('requires', 'mapping'),
      () => J('approve', 'by', random() < 0.5 ? 'governing' : list(name)), () => J('touches', list(name)),
      () => J('to', pick(['previous_stable', '1.2.3'])),
    ])()), '}');
    case 4: return ov + J('order', list(name));
    case 5:
    case 6: return ov + J(pick(['compatibility', 'sustainability']), '{', ...repeat(0, 3, () => J(name(), ':', expr(), 'else', name())), '}');
    case 7: return ov + J('validation', '{', ...repeat(0, 2, () => J(name(), '{', ...repeat(0, 3, () => J(name(), ':', expr())), '}')), '}');
    case 8: return ov + J('health', '{', ...repeat(0, 4, () => (random() < 0.5
      ? J('factor', name(), 'weight', num(), 'from', expr())
      : J('band', num(), '..=', num(), name(), string(), '->', name(), string()))), '}');
    case 9: {
      const bound = () => (random() < 0.5 ? '' : J('max', '2'));
      return ov + J('flow', name(), '{', ...repeat(0, 5, () => {
        const r = random();
        if (r < 0.4) return J('phase', name(), pick(['', 'fallible']), string());
        if (r < 0.6) return J(name(), 'fail', '->', name(), bound());
        return J(name(), ...repeat(1, 3, () => J('->', J(name(), bound()))));
      }), '}');
    }
    case 10: return ov + J('ceiling', pathExpr(), pick(['<', '<=', '==']), expr());
    case 11: return ov + J('rite', name(), '"w"');
    case 13: return ov + J('key', name(), pick(['"ed25519:00"', string()]), ...(random() < 0.5 ? [string()] : []));
    case 12: return ov + J('test', pick(['"t"', '"t"', string()]), '{', ...Array.from({ length: int(0, 5) }, () => {
      const r = random();
      if (r < 0.4) return J(pick(['partner', 'target', 'observed']), ...(random() < 0.4 ? ['like', name()] : []), record());
      if (r < 0.6) return J('approved', random() < 0.3 ? 'none' : list(name));
      return J('expect', pick(['type', 'band', 'action', 'outcome', 'validation', 'approvals']),
        random() < 0.2 ? 'none' : list(name));
    }), '}');
    case 14: return ov + J('fixture', name(), ...(random() < 0.4 ? ['like', name()] : []), record());
    default: return J('policy', name(), ...(random() < 0.5 ? ['extends', list(name)] : []));
  }
}
const generated = () => `${J('policy', name())}\n${repeat(1, 3, () => pick(['', '\n', '// c\n']) + declaration() + '\n').join('')}`;

// ------------------------------------------------------------------ mutations
const TOKEN = /\/\/[^\n]*|\/\*[\s\S]*?\*\/|"(?:[^"\\\n]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*|\d+(?:\.\d+)*(?:[-+][0-9A-Za-z.-]+)*|\.\.=|->|==|!=|<=|>=|\n[ \t]*|[ \t]+|[\s\S]/g;
const VOCAB = [...KEYWORDS, 'not in', '{', '}', '(', ')', '[', ']', '<', '>', '<=', '>=', '==', '!=', '+', '-', '*', '/',
  ',', ':', '.', '..=', '->', '"s"', '"a\\"b"', '1', '1.5', '-2', '1.2.3', '1.2.3-rc.1', 'x', 'a.b', '\n', '\n  ', ' ',
  '//c\n', '/*c*/', '/*\nc\n*/'];
const seeds = [];
function collect(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) collect(full);
    // PMF002 is rejected for its depth, which tree-sitter does not limit.
    else if (entry.name.endsWith('.pmf') && !entry.name.startsWith('PMF002')) seeds.push(fs.readFileSync(full, 'utf8'));
  }
}
for (const dir of ['stdlib', 'examples', 'tests/fixtures/valid', 'tests/fixtures/diagnostics']) {
  if (fs.existsSync(path.join(root, dir))) collect(path.join(root, dir));
}
// A test block and fixtures, so that mutations reach the constructs whatever
// files exist.
seeds.push(`policy fuzz extends kwanus

fixture routine {
  id: "p-1"
  metrics: { stability: 88, compatibility: 86 }
}
fixture weak like routine { metrics: { stability: 20 } }

test "guided partner needs TSC" {
  partner {
    id: "p-1",
    version: 1.4.0
    capabilities: ["route", "sense"]
    metrics: { stability: 90, compatibility: 88, sustainability: 85, ecosystem: 80 }
  }
  target like routine { version: 2.0.0 }
  observed like weak { metrics: { compatibility: null }, ok: partner.version >= 1.0.0 and compatible }
  approved TSC, ERC
  expect type guided
  expect band reliable
  expect action monitor
  expect outcome completed
  expect validation passed
  expect approvals none
}
`);
function mutated() {
  const tokens = pick(seeds).match(TOKEN) ?? [];
  for (let k = pick([1, 1, 1, 2, 3]); k > 0 && tokens.length > 0; k--) {
    const i = int(0, tokens.length - 1);
    switch (int(0, 7)) {
      case 0: tokens.splice(i, 1); break;
      case 1: tokens.splice(i, 0, tokens[i]); break;
      case 2: if (i + 1 < tokens.length) [tokens[i], tokens[i + 1]] = [tokens[i + 1], tokens[i]]; break;
      case 3: tokens[i] = pick(VOCAB); break;
      case 4: tokens.splice(i, 0, pick(VOCAB) + pick(['', ' '])); break;
      case 5: if (tokens[i].startsWith('\n')) tokens[i] = tokens[i].length > 1 ? '\n' : '\n  '; break;
      case 6: tokens.splice(i, 0, '\n'); break;
      default: tokens.splice(i, 0, '\n', pick(VOCAB)); break;
    }
  }
  return tokens.join('');
}

// ------------------------------------------------------------------ run
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pmf-fuzz-'));
const files = [];
for (let i = 0; i < cases; i++) {
  const file = path.join(dir, `case${String(i).padStart(5, '0')}.pmf`);
  fs.writeFileSync(file, i % 2 === 0 ? generated() : mutated());
  files.push(file);
}

const pestOut = spawnSync(pmf, ['check', dir, '--format', 'json'], { encoding: 'utf8', maxBuffer: 1 << 30 });
let report;
try {
  report = JSON.parse(pestOut.stdout);
} catch {
  console.error(`fuzz: \`pmf check\` did not print JSON (exit ${pestOut.status}):\n${pestOut.stderr}`);
  process.exit(1);
}
const pestRejects = new Set(report.diagnostics
  .filter((d) => /^PMF00[1-4]$/.test(d.code))
  .map((d) => path.resolve(d.file)));

const list_ = path.join(dir, 'paths.txt');
fs.writeFileSync(list_, files.join('\n'));
const tsOut = spawnSync('tree-sitter', ['parse', '-q', '-j', '--paths', list_], { cwd: grammarDir, encoding: 'utf8', maxBuffer: 1 << 30 });
const json = tsOut.stdout.slice(tsOut.stdout.indexOf('{\n'));
let summary;
try {
  summary = JSON.parse(json);
} catch {
  console.error(`fuzz: \`tree-sitter parse\` did not print JSON (exit ${tsOut.status}):\n${tsOut.stderr}`);
  process.exit(1);
}
const tsRejects = new Set(summary.parse_summaries.filter((s) => !s.successful).map((s) => path.resolve(s.file)));

const differ = files.filter((f) => pestRejects.has(f) !== tsRejects.has(f));
console.log(`fuzz: ${files.length} files (seed ${seedArg}), pest rejects ${pestRejects.size}, tree-sitter rejects ${tsRejects.size}, ${differ.length} disagree`);
if (differ.length > 0) {
  for (const f of differ.slice(0, 5)) {
    console.log(`\nDISAGREE ${f}: pest ${pestRejects.has(f) ? 'rejects' : 'accepts'}, tree-sitter ${tsRejects.has(f) ? 'rejects' : 'accepts'}`);
    console.log(fs.readFileSync(f, 'utf8'));
  }
  console.log(`(cases kept in ${dir})`);
  process.exit(1);
}
fs.rmSync(dir, { recursive: true, force: true });
