// Expands every snippet of snippets/pmf.json into a complete PMF file, once per
// choice of each `${n|a,b|}` placeholder, so that the tests can check that both
// parsers accept them. Usage: node scripts/expand-snippets.js OUTDIR
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const outDir = process.argv[2];
if (!outDir) {
  console.error('usage: node scripts/expand-snippets.js OUTDIR');
  process.exit(2);
}
const snippets = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'snippets', 'pmf.json'), 'utf8'));

// Snippets that are a piece of a declaration, and what to put around them.
const WRAP = {
  Rule: (text) => `compatibility {\n  ${text}\n}\n`,
  'Test state from a fixture': (text) => `fixture routine {}\n\ntest "t" {\n  ${text}\n}\n`,
};

function expand(body, choiceIndex) {
  let text = body;
  // Innermost first, so that nested placeholders resolve.
  for (let i = 0; i < 10 && /\$\{\d+[:|]/.test(text); i++) {
    text = text
      .replace(/\$\{(\d+)\|([^|}]*)\|\}/g, (_, n, choices) => {
        const list = choices.split(',');
        return list[(choiceIndex[n] ?? 0) % list.length];
      })
      .replace(/\$\{(\d+):([^${}]*)\}/g, (_, _n, value) => value);
  }
  return text.replace(/\$\d+/g, '').replace(/\t/g, '  ');
}

fs.mkdirSync(outDir, { recursive: true });
let count = 0;
for (const [name, snippet] of Object.entries(snippets)) {
  const body = Array.isArray(snippet.body) ? snippet.body.join('\n') : snippet.body;
  const choices = [...body.matchAll(/\$\{(\d+)\|([^|}]*)\|\}/g)].map((m) => [m[1], m[2].split(',').length]);
  const variants = [{}];
  for (const [n, size] of choices) {
    for (let i = 1; i < size; i++) variants.push({ [n]: i });
  }
  variants.forEach((choiceIndex, v) => {
    let text = expand(body, choiceIndex);
    if (WRAP[name]) text = WRAP[name](text);
    if (!/^policy /.test(text)) text = `policy snippet_test extends kwanus\n\n${text}`;
    const file = path.join(outDir, `${name.replace(/[^A-Za-z0-9]+/g, '_')}_${v}.pmf`);
    fs.writeFileSync(file, text.endsWith('\n') ? text : `${text}\n`);
    count += 1;
  });
}
console.log(`expanded ${Object.keys(snippets).length} snippets into ${count} files in ${outDir}`);
