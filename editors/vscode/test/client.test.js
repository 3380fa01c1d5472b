// Unit test of the VS Code client (out/extension.js) without VS Code: the
// `vscode` and `vscode-languageclient/node` modules are replaced by fakes that
// record what the extension asks of them. Run with `npm run test:client`.
'use strict';

const assert = require('node:assert/strict');
const Module = require('node:module');
const path = require('node:path');

const log = [];
let settings = {};
let configListener;
let failNextStart = false;
let errorChoice;
let warningChoice;
let trustListener;

class FakeLanguageClient {
  constructor(id, name, serverOptions, clientOptions) {
    Object.assign(this, { id, name, serverOptions, clientOptions });
    log.push({ event: 'construct', client: this });
  }
  async start() {
    log.push({ event: 'start', client: this });
    if (failNextStart) {
      failNextStart = false;
      throw new Error('spawn pmf ENOENT');
    }
  }
  async dispose() {
    log.push({ event: 'dispose', client: this });
  }
}

const fakeVscode = {
  window: {
    createOutputChannel: (name, options) => ({
      name,
      options,
      error: (line) => log.push({ event: 'log', line }),
      warn: (line) => log.push({ event: 'log', line }),
      show: () => log.push({ event: 'show-log' }),
      dispose() {},
    }),
    showErrorMessage: async (message, ...items) => {
      log.push({ event: 'error', message, items });
      return errorChoice;
    },
    showWarningMessage: async (message, ...items) => {
      log.push({ event: 'warning', message, items });
      return warningChoice;
    },
  },
  commands: {
    registerCommand: (command, callback) => {
      log.push({ event: 'command', command, callback });
      return { dispose() {} };
    },
    executeCommand: async (...args) => log.push({ event: 'execute', args }),
  },
  workspace: {
    isTrusted: true,
    onDidGrantWorkspaceTrust: (listener) => {
      trustListener = listener;
      return { dispose() {} };
    },
    workspaceFolders: [{ uri: { fsPath: '/ws' } }],
    getConfiguration: (section) => ({
      get: (key) => settings[`${section}.${key}`],
    }),
    onDidChangeConfiguration: (listener) => {
      configListener = listener;
      return { dispose() {} };
    },
    createFileSystemWatcher: (glob) => ({ glob }),
  },
};

const fakeClientModule = {
  LanguageClient: FakeLanguageClient,
  TransportKind: { stdio: 0, ipc: 1, pipe: 2, socket: 3 },
};

const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === 'vscode') return fakeVscode;
  if (request === 'vscode-languageclient/node') return fakeClientModule;
  return load.call(this, request, ...rest);
};

const extension = require(path.join(__dirname, '..', 'out', 'extension.js'));

const tick = () => new Promise((resolve) => setImmediate(resolve));
const constructed = () => log.filter((e) => e.event === 'construct').map((e) => e.client);

let passed = 0;
async function test(name, body) {
  await body();
  passed += 1;
  console.log(`ok - ${name}`);
}

(async () => {
  const context = { subscriptions: [] };

  await test('default server path is `pmf lsp` over stdio', async () => {
    await extension.activate(context);
    const [client] = constructed();
    assert.equal(client.id, 'pmf');
    for (const mode of ['run', 'debug']) {
      assert.equal(client.serverOptions[mode].command, 'pmf');
      assert.deepEqual(client.serverOptions[mode].args, ['lsp']);
      assert.equal(client.serverOptions[mode].transport, fakeClientModule.TransportKind.stdio);
    }
    assert.deepEqual(
      client.clientOptions.documentSelector.map((s) => s.language),
      ['pmf', 'pmf'],
    );
    assert.deepEqual(
      client.clientOptions.synchronize.fileEvents.map((w) => w.glob),
      ['**/*.pmf', '**/pmf.toml'],
    );
    assert.ok(log.some((e) => e.event === 'start' && e.client === client));
    assert.ok(log.some((e) => e.event === 'command' && e.command === 'pmf.restartServer'));
  });

  await test('changing pmf.serverPath restarts the server with the new path', async () => {
    settings['pmf.serverPath'] = 'target/debug/pmf';
    configListener({ affectsConfiguration: (s) => s === 'pmf.serverPath' });
    await tick();
    await tick();
    const clients = constructed();
    assert.equal(clients.length, 2);
    assert.ok(log.some((e) => e.event === 'dispose' && e.client === clients[0]));
    assert.equal(clients[1].serverOptions.run.command, path.join('/ws', 'target/debug/pmf'));
  });

  await test('other settings do not restart the server', async () => {
    configListener({ affectsConfiguration: (s) => s === 'editor.fontSize' });
    await tick();
    assert.equal(constructed().length, 2);
  });

  await test('a server that cannot start is reported with a way to the setting', async () => {
    settings['pmf.serverPath'] = '/nowhere/pmf';
    failNextStart = true;
    errorChoice = 'Open Settings';
    const restart = log.find((e) => e.event === 'command' && e.command === 'pmf.restartServer');
    await restart.callback();
    const error = log.filter((e) => e.event === 'error').pop();
    assert.match(error.message, /\/nowhere\/pmf lsp/);
    assert.deepEqual(error.items, ['Open Settings', 'Show Log']);
    const execute = log.filter((e) => e.event === 'execute').pop();
    assert.deepEqual(execute.args, ['workbench.action.openSettings', 'pmf.serverPath']);
  });

  await test('an untrusted folder does not choose the program started', async () => {
    // Restricted Mode: VS Code gives the user's value of pmf.serverPath; a
    // relative one would still be a program inside the folder.
    fakeVscode.workspace.isTrusted = false;
    settings['pmf.serverPath'] = 'target/debug/pmf';
    warningChoice = 'Manage Workspace Trust';
    const before = constructed().length;
    const restart = log.find((e) => e.event === 'command' && e.command === 'pmf.restartServer');
    await restart.callback();
    assert.equal(constructed().length, before, 'no server started');
    const warning = log.filter((e) => e.event === 'warning').pop();
    assert.match(warning.message, /not trusted/);
    assert.match(warning.message, /target\/debug\/pmf/);
    assert.deepEqual(warning.items, ['Manage Workspace Trust', 'Open Settings']);
    assert.deepEqual(log.filter((e) => e.event === 'execute').pop().args, ['workbench.trust.manage']);
    // A program outside the folder still starts in Restricted Mode.
    settings['pmf.serverPath'] = '/usr/local/bin/pmf';
    await restart.callback();
    assert.equal(constructed().pop().serverOptions.run.command, '/usr/local/bin/pmf');
    // Trust granted: started again, from the folder as set.
    settings['pmf.serverPath'] = 'target/debug/pmf';
    await restart.callback();
    const started = constructed().length;
    fakeVscode.workspace.isTrusted = true;
    await trustListener();
    assert.equal(constructed().length, started + 1);
    assert.equal(constructed().pop().serverOptions.run.command, path.join('/ws', 'target/debug/pmf'));
  });

  await test('resolveServerPath', async () => {
    const r = extension.resolveServerPath;
    assert.equal(r(undefined, '/ws'), 'pmf');
    assert.equal(r('  ', '/ws'), 'pmf');
    assert.equal(r('pmf-nightly', '/ws'), 'pmf-nightly');
    assert.equal(r('/usr/local/bin/pmf', '/ws'), '/usr/local/bin/pmf');
    assert.equal(r('~/bin/pmf', '/ws', '/home/u'), path.join('/home/u', 'bin/pmf'));
    assert.equal(r('target/debug/pmf', '/ws'), path.join('/ws', 'target/debug/pmf'));
    assert.equal(r('target/debug/pmf', undefined), 'target/debug/pmf');
    // Not trusted: a path in the workspace (or relative to wherever the
    // editor runs) is refused; names on PATH and absolute paths are not.
    assert.equal(r('target/debug/pmf', '/ws', '/home/u', false), undefined);
    assert.equal(r('./pmf', '/ws', '/home/u', false), undefined);
    assert.equal(r('target/debug/pmf', undefined, '/home/u', false), undefined);
    assert.equal(r('pmf', '/ws', '/home/u', false), 'pmf');
    assert.equal(r('/usr/local/bin/pmf', '/ws', '/home/u', false), '/usr/local/bin/pmf');
    assert.equal(r('~/bin/pmf', '/ws', '/home/u', false), path.join('/home/u', 'bin/pmf'));
  });

  await test('deactivate stops the running server', async () => {
    settings['pmf.serverPath'] = 'pmf';
    const restart = log.find((e) => e.event === 'command' && e.command === 'pmf.restartServer');
    await restart.callback();
    const last = constructed().pop();
    await extension.deactivate();
    assert.ok(log.some((e) => e.event === 'dispose' && e.client === last));
  });

  console.log(`client: ${passed} tests passed`);
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
