// Entry point of the `beuss` command: parse, run one command, map the outcome
// to an exit code. The client library is loaded only once a command needs it.
import { ConnectionError, InvalidArgumentError, ServerError } from '../client/errors.js';
import { CliExit, EXIT, parseArgs, type ParsedArgs, usageError } from './args.js';
import { usage, verbUsage, VERBS } from './usage.js';

/** Runs the CLI with `argv` (arguments after the script) and exits the process with the command's exit code. */
export function main(argv: string[]): void {
  run(argv).then(exit, (err: unknown) => exit(report(err)));
}

/** Resolves with the exit code of the command line `argv`; prints results on stdout and problems on stderr. */
export async function run(argv: string[]): Promise<number> {
  let parsed: ParsedArgs;
  try {
    parsed = parseArgs(argv);
  } catch (err) {
    return report(err);
  }
  const { verb, opts } = parsed;
  if (opts.has('version')) {
    const { version } = await import('./version.js');
    process.stdout.write(`beuss ${version()}\n`);
    return EXIT.OK;
  }
  if (verb === undefined) {
    if (opts.has('help')) {
      process.stdout.write(usage());
      return EXIT.OK;
    }
    process.stderr.write(usage());
    return EXIT.USAGE;
  }
  if (!Object.hasOwn(VERBS, verb)) return report(usageError(`unknown command '${verb}'`));
  if (opts.has('help')) {
    process.stdout.write(verbUsage(verb));
    return EXIT.OK;
  }
  const { runCommand } = await import('./commands.js');
  try {
    return await runCommand(verb, parsed);
  } catch (err) {
    return report(err);
  }
}

// Prints the error the way a user should see it and returns its exit code.
function report(err: unknown): number {
  if (err instanceof CliExit) {
    if (err.message) process.stderr.write(`beuss: ${err.message}\n`);
    if (err.exitCode === EXIT.USAGE) process.stderr.write("Run 'beuss --help' for usage.\n");
    return err.exitCode;
  }
  if (err instanceof InvalidArgumentError) {
    process.stderr.write(`beuss: ${err.message}\nRun 'beuss --help' for usage.\n`);
    return EXIT.USAGE;
  }
  if (err instanceof ConnectionError) {
    process.stderr.write(`beuss: ${err.message}\n`);
    return EXIT.UNREACHABLE;
  }
  if (err instanceof ServerError) {
    process.stderr.write(`beuss: refused by the server: ${err.code} ${err.serverText}\n`);
    return EXIT.REFUSED;
  }
  const e = err as { message?: string } | undefined;
  process.stderr.write(`beuss: ${e?.message ?? String(err)}\n`);
  return EXIT.FAILED;
}

// Exits once stdout and stderr have taken everything written to them.
function exit(code: number): void {
  process.exitCode = code;
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}
