// Runs the real `beuss` executable (bin/beuss.js) as a user would, directly or
// through `sh -c` with `beuss` on PATH, and collects its output and exit code.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { beforeAll } from 'vitest';
import { CLI_BIN, type ServerOptions, type SharedServer, useServer } from '../helpers/server.js';

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Returns the environment for a child: this process's, without B* variables, plus `env`. */
export function childEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^B[A-Z]+$/.test(k)) out[k] = v;
  return { ...out, ...env };
}

/**
 * Returns the block's shared server (see useServer) and the two ways of pointing
 * `beuss` at it: the flags `at` (`--host H --port P`) and the environment `env`
 * (BHOST, BPORT), both filled in once the server is up.
 */
export function useCliServer(opts: ServerOptions = {}): { srv: SharedServer; at: string[]; env: Record<string, string> } {
  const srv = useServer(opts);
  const at: string[] = [];
  const env: Record<string, string> = {};
  beforeAll(() => {
    at.push('--host', srv.host, '--port', String(srv.port));
    Object.assign(env, { BHOST: srv.host, BPORT: String(srv.port) });
  });
  return { srv, at, env };
}

/** Resolves with the outcome of `beuss ...args`, fed `input` on stdin (closed at once when absent). */
export function beuss(args: string[], opts: { input?: Buffer | string; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI_BIN, ...args], { env: childEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] });
  return collect(child, opts.input, opts.timeoutMs);
}

/** Resolves with the outcome of `sh -c script`, where `beuss` on PATH is the project's CLI. */
export function sh(script: string, opts: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const env = childEnv(opts.env);
  env.PATH = `${shimDir()}${path.delimiter}${env.PATH ?? ''}`;
  const child = spawn('sh', ['-c', script], { env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  return collect(child, undefined, opts.timeoutMs);
}

let shim: string | undefined;
/** Returns a directory holding a `beuss` command that runs bin/beuss.js with this Node. */
export function shimDir(): string {
  if (shim) return shim;
  shim = fs.mkdtempSync(path.join(os.tmpdir(), 'beuss-cli-'));
  fs.writeFileSync(path.join(shim, 'beuss'), `#!/bin/sh\nexec "${process.execPath}" "${CLI_BIN}" "$@"\n`, { mode: 0o755 });
  return shim;
}

/** Returns a fresh temporary directory. */
export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'beuss-test-'));
}

/** Resolves with the outcome of an already spawned child. */
export function collect(child: ChildProcess, input?: Buffer | string, timeoutMs = 30_000, keepStdinOpen = false): Promise<CliResult> {
  const out: Buffer[] = [];
  let err = '';
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin?.on('error', () => {});
  if (input !== undefined) child.stdin!.end(input);
  else if (!keepStdinOpen) child.stdin?.end();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`command did not finish in ${timeoutMs} ms; stderr: ${err}`));
    }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(t);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: err });
    });
  });
}
