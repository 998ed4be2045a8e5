// The schedule calculator the engine calls for SCHEDULE ADD and at each
// fire: the C engine holds no cron parser, so the server injects this one,
// built on croner (a small, dependency-free, maintained cron library).
//
// A spec is, optionally `TZ=<IANA zone> ` (or `CRON_TZ=`), then one of:
//   - a cron expression of 5 fields (minute hour day month weekday) or 6
//     (with seconds first), evaluated in UTC unless a zone is given;
//   - a nickname: @yearly @annually @monthly @weekly @daily @midnight @hourly;
//   - `@every <duration>`: a fixed interval from the previous fire (or from
//     when the schedule was added), e.g. `@every 5m`, `@every 1h30m`,
//     `@every 10s`; units ms, s, m, h, d; at least 1s.
import { Cron } from 'croner';
import { parseDuration } from '../client/duration.js';

export { parseDuration };

/** The shortest `@every` interval: a schedule firing faster is a loop, not a schedule. */
export const MIN_EVERY_MS = 1000;

const NICKNAMES = new Set(['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly']);

/** A parsed spec: what nextFire needs, cached by spec text. */
type Parsed = { every: number } | { cron: Cron };

/** Returns the parsed form of `spec`, or a string saying why it is not understood. */
export function parseSpec(spec: string): Parsed | string {
  let rest = spec.trim();
  let timezone: string | undefined;
  const tz = /^(?:CRON_)?TZ=(\S+)\s+/.exec(rest);
  if (tz) {
    timezone = tz[1]!;
    rest = rest.slice(tz[0].length);
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    } catch {
      return `unknown time zone '${timezone}'`;
    }
  }
  if (rest.startsWith('@every')) {
    const d = /^@every\s+(\S+)$/.exec(rest);
    const ms = d ? parseDuration(d[1]!) : undefined;
    if (ms === undefined) return `bad @every '${rest}': expected a duration like 30s, 5m, 1h30m`;
    if (ms < MIN_EVERY_MS) return `@every ${d![1]} is under the minimum of 1s`;
    return { every: ms };
  }
  const fields = rest.split(/\s+/);
  if (!(rest.startsWith('@') && fields.length === 1 && NICKNAMES.has(rest.toLowerCase())) && fields.length !== 5 && fields.length !== 6) {
    return rest.startsWith('@')
      ? `unknown shortcut '${rest}' (known: @every <duration>, ${[...NICKNAMES].join(', ')})`
      : `cron expression '${rest}' has ${fields.length} fields; expected 5 (minute hour day month weekday) or 6 (seconds first)`;
  }
  try {
    return { cron: new Cron(rest.toLowerCase().startsWith('@') ? rest.toLowerCase() : rest, { timezone: timezone ?? 'Etc/UTC', paused: true }) };
  } catch (err) {
    return `bad cron expression '${rest}': ${(err as Error).message.replace(/^CronPattern: /, '')}`;
  }
}

// Parsed specs, by text: every fire asks again, and parsing is the costly
// part. Bounded like the engine's schedules.
const CACHE_LIMIT = 10_000;

/**
 * Returns the schedule calculator the engine's `nextFire` expects: the first
 * Unix ms strictly after `afterMs` at which `spec` fires, -1 when never
 * again, or a string saying why `spec` is not understood.
 */
export function createNextFire(): (spec: string, afterMs: number) => number | string {
  const cache = new Map<string, Parsed>();
  return (spec, afterMs) => {
    let p = cache.get(spec);
    if (p === undefined) {
      const r = parseSpec(spec);
      if (typeof r === 'string') return r;
      if (cache.size >= CACHE_LIMIT) cache.clear();
      cache.set(spec, r);
      p = r;
    }
    if ('every' in p) return afterMs + p.every;
    try {
      const next = p.cron.nextRun(new Date(afterMs));
      return next ? next.getTime() : -1;
    } catch (err) {
      return `cannot compute the next time of '${spec}': ${(err as Error).message}`;
    }
  };
}
