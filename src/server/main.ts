// beuss-server's entry point (bin/beuss-server.js calls main): parse the
// configuration, start, print the one "listening on" line, stop on
// SIGINT/SIGTERM. Exit codes: 0 stopped, 1 could not start, 2 bad usage.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { engineConstants, keepFreedMemory, packageRoot, type EngineConstants } from '../native.js';
import { helpText, parseArgs, UsageError, type EngineLimits } from './config.js';
import { BeussServer } from './server.js';

/** Returns the package version from package.json. */
function version(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Writes one line to stderr, prefixed with the program name. */
function log(line: string): void {
  process.stderr.write(`beuss-server: ${line}\n`);
}

/** Returns `host:port` with an IPv6 literal bracketed. */
function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Runs beuss-server with the given arguments (without node and the script); sets process.exitCode or exits. */
export async function main(argv: readonly string[]): Promise<void> {
  let constants: EngineConstants;
  try {
    constants = engineConstants();
  } catch (err) {
    // --version works without the native engine; everything else needs its limits.
    if (argv.includes('--version') || argv.includes('-v') || argv.includes('-V')) {
      process.stdout.write(`beuss-server ${version()}\n`);
      return;
    }
    log((err as Error).message);
    process.exitCode = 1;
    return;
  }
  const limits: EngineLimits = constants;
  let parsed;
  try {
    parsed = parseArgs(argv, process.env, limits);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    log(err.message);
    process.exitCode = 2;
    return;
  }
  if (parsed.action === 'help') {
    process.stdout.write(helpText(version(), limits));
    return;
  }
  if (parsed.action === 'version') {
    process.stdout.write(`beuss-server ${version()}\n`);
    return;
  }
  const config = parsed.config;
  // A closed stdout or stderr (a supervisor that read the start line and
  // went away) must not bring the server down with EPIPE.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  // This process is the server's own: let the C library keep freed memory
  // for the next messages; the server gives it back once idle.
  keepFreedMemory();
  const server = new BeussServer(config, log);
  // Handlers go in before the start line is printed: whoever reads that
  // line may signal at once.
  const onSignal = (signal: NodeJS.Signals) => {
    const started = Date.now();
    void server.stop().then(() => {
      const s = server.stats();
      log(`stopped on ${signal} in ${Date.now() - started} ms (${s.puts} messages put, ${s.messages} left in queues)`);
      process.exit(0);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let address;
  try {
    address = await server.listen();
  } catch (err) {
    log(`cannot listen on ${hostPort(config.host, config.port)}: ${(err as Error).message}`);
    process.exitCode = 1;
    await server.stop();
    return;
  }
  process.stdout.write(
    `beuss-server ${version()} listening on ${hostPort(config.host, address.port)} ` +
      `(max message size ${config.maxMessageSize} bytes, oversize ${config.oversize})\n`,
  );
}
