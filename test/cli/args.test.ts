// Command-line parsing of `beuss`, without running anything.
import { describe, expect, it } from 'vitest';
import { CliExit, parseArgs } from '../../src/cli/args.js';

describe('parseArgs', () => {
  it('upper-cases the verb and keeps positional arguments in order', () => {
    const p = parseArgs(['get', 'jobs', 'out.bin']);
    expect(p.verb).toBe('GET');
    expect(p.args).toEqual(['jobs', 'out.bin']);
  });

  it('takes options anywhere, with a separate or attached value', () => {
    const p = parseArgs(['--host', 'h', 'ON', '--port=7', 'q', '-n5', '-0', '--prefetch', '3']);
    expect(p.verb).toBe('ON');
    expect(p.args).toEqual(['q']);
    expect(Object.fromEntries(p.opts)).toEqual({ host: 'h', port: '7', count: '5', null: true, prefetch: '3' });
  });

  it("treats '-' and everything after '--' as positional", () => {
    const p = parseArgs(['PUT', '--', '-q-', '--lines']);
    expect(p.args).toEqual(['-q-', '--lines']);
    expect(parseArgs(['GET', 'q', '-']).args).toEqual(['q', '-']);
  });

  it('refuses unknown options, missing values and values on flags with usage errors', () => {
    for (const argv of [['GET', 'q', '--bogus'], ['GET', 'q', '-x'], ['GET', 'q', '--wait'], ['PUT', 'q', '--lines=yes']]) {
      let err: unknown;
      try {
        parseArgs(argv);
      } catch (e) {
        err = e;
      }
      expect(err, argv.join(' ')).toBeInstanceOf(CliExit);
      expect((err as CliExit).exitCode).toBe(2);
    }
  });

  it('reports no verb for an empty command line', () => {
    expect(parseArgs([]).verb).toBeUndefined();
    expect(parseArgs(['--help']).opts.get('help')).toBe(true);
  });
});
