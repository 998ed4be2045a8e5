// Command-line parsing for `beuss`: a verb, its positional arguments and
// options anywhere on the line. No dependency, so the CLI starts fast.

/** Exit codes of the CLI (printed by `beuss --help`). */
export const EXIT = {
  OK: 0,
  EMPTY: 1,
  USAGE: 2,
  UNREACHABLE: 3,
  REFUSED: 4,
  FAILED: 5,
} as const;

/** An error that ends the CLI with `exitCode` after printing `message` on stderr. */
export class CliExit extends Error {
  /** Creates an exit with the given code and message (printed unless empty). */
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** Returns a usage error (exit code 2). */
export function usageError(message: string): CliExit {
  return new CliExit(EXIT.USAGE, message);
}

/** The parsed command line. */
export interface ParsedArgs {
  /** The verb, upper-cased, or undefined when none was given. */
  verb?: string;
  /** Positional arguments after the verb. */
  args: string[];
  /** Options by long name: a string for options with a value, true for flags. */
  opts: Map<string, string | true>;
}

const VALUE_OPTIONS = new Set(['host', 'port', 'wait', 'count', 'prefetch', 'delay', 'at', 'lease', 'exec', 'max-deliver']);
const FLAG_OPTIONS = new Set(['lines', 'null', 'json', 'help', 'version', 'ack']);
const SHORT: Record<string, string> = { '0': 'null', h: 'help', V: 'version', n: 'count', w: 'wait' };

/** Returns the parsed command line; throws a usage error for unknown options or missing values. */
export function parseArgs(argv: string[]): ParsedArgs {
  const opts = new Map<string, string | true>();
  const positional: string[] = [];
  let onlyPositional = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (onlyPositional || a === '-' || !a.startsWith('-')) {
      positional.push(a);
      continue;
    }
    if (a === '--') {
      onlyPositional = true;
      continue;
    }
    let name: string;
    let value: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      value = eq < 0 ? undefined : a.slice(eq + 1);
    } else {
      const long = SHORT[a.slice(1, 2)];
      if (!long) throw usageError(`unknown option '${a}'`);
      name = long;
      if (a.length > 2) value = a.slice(2);
    }
    if (VALUE_OPTIONS.has(name)) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw usageError(`option --${name} needs a value`);
        value = argv[++i];
      }
      opts.set(name, value);
    } else if (FLAG_OPTIONS.has(name)) {
      if (value !== undefined) throw usageError(`option --${name} takes no value`);
      opts.set(name, true);
    } else {
      throw usageError(`unknown option '${a}'`);
    }
  }
  const [verb, ...args] = positional;
  return { verb: verb?.toUpperCase(), args, opts };
}
