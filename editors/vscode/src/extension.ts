// VS Code client for the PMF language server (`pmf lsp`, over stdio).
//
// The server is `<pmf.serverPath> lsp`; `pmf.serverPath` defaults to `pmf`,
// looked up on PATH. Changing the setting restarts the server, and so does the
// command "PMF: Restart Language Server".
//
// Workspace Trust: the extension works in Restricted Mode, where VS Code reads
// `pmf.serverPath` from the user's settings only (`restrictedConfigurations` in
// package.json), and where a relative path is never taken from the workspace:
// a folder opened to read it cannot choose the program the editor starts. Once
// the folder is trusted, the server is started again with the path as set.

import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  LanguageClient,
  type LanguageClientOptions,
  type ServerOptions,
  TransportKind,
} from 'vscode-languageclient/node';

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel('PMF Language Server', { log: true });
  context.subscriptions.push(
    output,
    vscode.commands.registerCommand('pmf.restartServer', () => restart()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('pmf.serverPath')) {
        void restart();
      }
    }),
    vscode.workspace.onDidGrantWorkspaceTrust(() => restart()),
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await stop();
}

/**
 * The server executable: the setting, with `~` and relative paths resolved;
 * `undefined` for a relative path in a workspace that is not trusted, which
 * would run a program the workspace holds.
 */
export function resolveServerPath(
  configured: string | undefined,
  workspaceRoot: string | undefined,
  home: string = os.homedir(),
  trusted = true,
): string | undefined {
  const value = (configured ?? '').trim();
  if (value === '') {
    return 'pmf';
  }
  if (value === '~' || value.startsWith('~/')) {
    return path.join(home, value.slice(1));
  }
  // A bare name (`pmf`) is looked up on PATH; a relative path with a directory
  // part (`target/debug/pmf`) is taken from the first workspace folder.
  if (!path.isAbsolute(value) && value.includes('/')) {
    if (!trusted) {
      return undefined;
    }
    if (workspaceRoot !== undefined) {
      return path.join(workspaceRoot, value);
    }
  }
  return value;
}

async function start(): Promise<void> {
  const configured = vscode.workspace.getConfiguration('pmf').get<string>('serverPath');
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const command = resolveServerPath(configured, root, os.homedir(), vscode.workspace.isTrusted);
  if (command === undefined) {
    output?.warn(`Restricted Mode: \`${configured ?? ''}\` is a path in the workspace; not started.`);
    const choice = await vscode.window.showWarningMessage(
      `PMF: this folder is not trusted, so the language server is not started from a path in it ("pmf.serverPath" is "${configured ?? ''}"). Trust the folder, or set an absolute path in your user settings.`,
      'Manage Workspace Trust',
      'Open Settings',
    );
    if (choice === 'Manage Workspace Trust') {
      await vscode.commands.executeCommand('workbench.trust.manage');
    } else if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'pmf.serverPath');
    }
    return;
  }

  const serverOptions: ServerOptions = {
    run: { command, args: ['lsp'], transport: TransportKind.stdio },
    debug: { command, args: ['lsp'], transport: TransportKind.stdio },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'pmf' },
      { scheme: 'untitled', language: 'pmf' },
    ],
    // Parents resolve across files (`extends`), so the server hears of every
    // .pmf file of the workspace changing, open or not; a `pmf.toml` created,
    // changed or deleted moves files between projects.
    synchronize: {
      fileEvents: [
        vscode.workspace.createFileSystemWatcher('**/*.pmf'),
        vscode.workspace.createFileSystemWatcher('**/pmf.toml'),
      ],
    },
    outputChannel: output,
  };

  const candidate = new LanguageClient('pmf', 'PMF Language Server', serverOptions, clientOptions);
  try {
    await candidate.start();
    client = candidate;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    output?.error(`Could not start \`${command} lsp\`: ${message}`);
    const choice = await vscode.window.showErrorMessage(
      `PMF: could not start the language server \`${command} lsp\`. Install pmf or set "pmf.serverPath".`,
      'Open Settings',
      'Show Log',
    );
    if (choice === 'Open Settings') {
      await vscode.commands.executeCommand('workbench.action.openSettings', 'pmf.serverPath');
    } else if (choice === 'Show Log') {
      output?.show();
    }
    try {
      await candidate.dispose();
    } catch {
      // The client never started; nothing more to release.
    }
  }
}

async function stop(): Promise<void> {
  const running = client;
  client = undefined;
  if (running !== undefined) {
    await running.dispose();
  }
}

async function restart(): Promise<void> {
  await stop();
  await start();
}
