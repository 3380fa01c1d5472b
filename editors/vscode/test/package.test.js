// Checks the extension manifest and the files it points to. Run with
// `npm run test:client` (after `tsc`).
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const read = (file) => JSON.parse(fs.readFileSync(path.join(root, file), 'utf8'));
const pkg = read('package.json');
let passed = 0;
function test(name, body) {
  body();
  passed += 1;
  console.log(`ok - ${name}`);
}

test('language pmf for .pmf files', () => {
  const [language] = pkg.contributes.languages;
  assert.equal(language.id, 'pmf');
  assert.deepEqual(language.extensions, ['.pmf']);
  assert.ok(fs.existsSync(path.join(root, language.configuration)));
});

test('TextMate grammar source.pmf', () => {
  const [grammar] = pkg.contributes.grammars;
  assert.equal(grammar.language, 'pmf');
  assert.equal(grammar.scopeName, 'source.pmf');
  assert.equal(read(grammar.path).scopeName, 'source.pmf');
});

test('snippets for pmf', () => {
  const [snippets] = pkg.contributes.snippets;
  assert.equal(snippets.language, 'pmf');
  const body = read(snippets.path);
  for (const name of ['Policy header', 'Migration type', 'Compatibility rules', 'Validation checks', 'Health block', 'Flow']) {
    assert.ok(body[name], `snippet ${name}`);
  }
});

test('setting pmf.serverPath defaults to pmf', () => {
  const setting = pkg.contributes.configuration.properties['pmf.serverPath'];
  assert.equal(setting.type, 'string');
  assert.equal(setting.default, 'pmf');
});

test('Restricted Mode: pmf.serverPath from user settings only', () => {
  // A folder opened to read it cannot set the program the extension starts.
  const trust = pkg.capabilities.untrustedWorkspaces;
  assert.equal(trust.supported, 'limited');
  assert.deepEqual(trust.restrictedConfigurations, ['pmf.serverPath']);
  assert.ok(trust.description.length > 0);
});

test('activation on the language, client entry point built', () => {
  assert.ok(pkg.activationEvents.includes('onLanguage:pmf'));
  assert.ok(fs.existsSync(path.join(root, pkg.main)), `${pkg.main} (run tsc first)`);
  assert.match(pkg.dependencies['vscode-languageclient'], /^\^?11\./);
});

test('language configuration', () => {
  const config = read('language-configuration.json');
  assert.equal(config.comments.lineComment, '//');
  assert.deepEqual(config.comments.blockComment, ['/*', '*/']);
  const pairs = config.autoClosingPairs.map((p) => p.open + p.close);
  for (const pair of ['{}', '[]', '()', '""']) assert.ok(pairs.includes(pair), pair);
  const increase = new RegExp(config.indentationRules.increaseIndentPattern);
  const decrease = new RegExp(config.indentationRules.decreaseIndentPattern);
  for (const line of ['partner {', 'override health {', '  permission {', '  a: len(', '  b: [']) {
    assert.ok(increase.test(line), `indent after ${JSON.stringify(line)}`);
  }
  for (const line of ['partner {}', '  a: { b: number }', '// {', 'rite a "{"', 'policy p']) {
    assert.ok(!increase.test(line), `no indent after ${JSON.stringify(line)}`);
  }
  assert.ok(decrease.test('}') && decrease.test('  }') && !decrease.test('  a: x'));
  new RegExp(config.wordPattern);
  for (const rule of config.onEnterRules) new RegExp(rule.beforeText);
});

console.log(`package: ${passed} tests passed`);
