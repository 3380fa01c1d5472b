// VS Code client for the PMF language server (`pmf lsp`, over stdio).
//
// The server is `<pmf.serverPath> lsp`; `pmf.serverPath` defaults to `pmf`,
// looked up on PATH. Changing the setting restarts the server, and so does the
// command "PMF: Restart Language Server".

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
  );
  await start();
}

export async function deactivate(): Promise<void> {
  await stop();
}

/** The server executable: the setting, with `~` and relative paths resolved. */
export function resolveServerPath(
  configured: string | undefined,
  workspaceRoot: string | undefined,
  home: string = os.homedir(),
): string {
  const value = (configured ?? '').trim();
  if (value === '') {
    return 'pmf';
  }
  if (value === '~' || value.startsWith('~/')) {
    return path.join(home, value.slice(1));
  }
  // A bare name (`pmf`) is looked up on PATH; a relative path with a directory
  // part (`target/debug/pmf`) is taken from the first workspace folder.
  if (!path.isAbsolute(value) && value.includes('/') && workspaceRoot !== undefined) {
    return path.join(workspaceRoot, value);
  }
  return value;
}

async function start(): Promise<void> {
  const configured = vscode.workspace.getConfiguration('pmf').get<string>('serverPath');
  const root = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
  const command = resolveServerPath(configured, root);

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
