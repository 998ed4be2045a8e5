// Durations and times as people write them (`30s`, `1h30m`, an ISO date),
// turned into the milliseconds the protocol speaks.
import { InvalidArgumentError } from './errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Returns the milliseconds of a duration such as `5m`, `1h30m`, `500ms`, `2d`, or undefined if it is not one. */
export function parseDuration(text: string): number | undefined {
  const re = /(\d{1,9})(ms|s|m|h|d)/gy;
  let total = 0;
  let pos = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * UNIT_MS[m[2]!]!;
    pos = re.lastIndex;
  }
  if (pos === 0 || pos !== text.length || !Number.isSafeInteger(total)) return undefined;
  return total;
}

/** Returns a delay in ms from a number of ms or a duration string (`30s`, `5m`, `250ms`); throws InvalidArgumentError otherwise. */
export function toDelayMs(delay: unknown): number {
  if (typeof delay === 'number') {
    if (!Number.isSafeInteger(delay) || delay < 0) throw new InvalidArgumentError(`delay must be a non-negative integer of milliseconds, got ${delay}`);
    return delay;
  }
  if (typeof delay === 'string') {
    const ms = parseDuration(delay.trim());
    if (ms === undefined) throw new InvalidArgumentError(`delay '${delay}' is not a duration like 500ms, 30s, 5m, 1h30m`);
    return ms;
  }
  throw new InvalidArgumentError(`delay must be a number of milliseconds or a duration string, got ${typeof delay}`);
}

/** Returns the Unix time in ms of a Date, a Unix-ms number or an ISO-8601 string with a zone; throws InvalidArgumentError otherwise. */
export function toUnixMs(at: unknown): number {
  let t: number;
  if (at instanceof Date) t = at.getTime();
  else if (typeof at === 'number') t = at;
  else if (typeof at === 'string') {
    // Without a zone, Date reads local time: a message time must not depend on the client's zone.
    if (!/^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d+)?)?)?(Z|[+-]\d\d:?\d\d)$/i.test(at.trim())) {
      throw new InvalidArgumentError(`time '${at}' is not an ISO-8601 date with a zone, like 2026-12-01T08:00:00Z`);
    }
    t = Date.parse(at.trim());
  } else throw new InvalidArgumentError(`time must be a Date, a Unix time in ms or an ISO-8601 string, got ${typeof at}`);
  if (!Number.isSafeInteger(t) || t < 0) throw new InvalidArgumentError(`time ${String(at)} is not a valid time after 1970`);
  return t;
}
