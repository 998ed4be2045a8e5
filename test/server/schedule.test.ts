// The schedule calculator the server injects into the engine (croner plus
// @every), over a simulated day: every fire time is computed from the
// previous one, exactly as the engine asks for them.
import { describe, expect, it } from 'vitest';
import { createNextFire, parseDuration } from '../../src/server/schedule';

/** Returns every fire time of spec in [from, to), asking as the engine does. */
function fires(spec: string, from: number, to: number): number[] {
  const next = createNextFire();
  const out: number[] = [];
  let t = next(spec, from);
  while (typeof t === 'number' && t >= 0 && t < to && out.length < 10_000) {
    out.push(t);
    t = next(spec, t);
  }
  expect(typeof t === 'number', `spec '${spec}': ${String(t)}`).toBe(true);
  return out;
}

const iso = (t: number) => new Date(t).toISOString();
const MON = Date.UTC(2026, 0, 5); // Monday 2026-01-05T00:00:00Z
const DAY = 86_400_000;

describe('schedule calculator over a simulated day', () => {
  it('a 5-field cron fires at the expected UTC times', () => {
    const t = fires('*/15 9-17 * * 1-5', MON - 1, MON + DAY);
    expect(t).toHaveLength(9 * 4);
    expect(iso(t[0]!)).toBe('2026-01-05T09:00:00.000Z');
    expect(iso(t[1]!)).toBe('2026-01-05T09:15:00.000Z');
    expect(iso(t.at(-1)!)).toBe('2026-01-05T17:45:00.000Z');
    // Saturday: no fire at all.
    expect(fires('*/15 9-17 * * 1-5', MON + 5 * DAY, MON + 6 * DAY)).toEqual([]);
  });

  it('6 fields have seconds first', () => {
    const t = fires('30 0 12 * * *', MON, MON + DAY);
    expect(t.map(iso)).toEqual(['2026-01-05T12:00:30.000Z']);
  });

  it('shortcuts and @every', () => {
    expect(fires('@hourly', MON - 1, MON + DAY)).toHaveLength(24);
    expect(fires('@daily', MON - 1, MON + DAY).map(iso)).toEqual(['2026-01-05T00:00:00.000Z']);
    const every = fires('@every 1h30m', MON, MON + DAY);
    expect(every).toHaveLength(15);
    expect(iso(every[0]!)).toBe('2026-01-05T01:30:00.000Z');
    expect(every.every((x, i) => i === 0 || x - every[i - 1]! === 5_400_000)).toBe(true);
  });

  it('a time zone moves the fire times, daylight saving included', () => {
    expect(fires('TZ=Europe/Paris 0 8 * * *', MON, MON + DAY).map(iso)).toEqual(['2026-01-05T07:00:00.000Z']);
    const july = Date.UTC(2026, 6, 6);
    expect(fires('TZ=Europe/Paris 0 8 * * *', july, july + DAY).map(iso)).toEqual(['2026-07-06T06:00:00.000Z']);
  });

  it('bad specs return the reason; impossible dates never fire', () => {
    const next = createNextFire();
    expect(next('61 * * * *', MON)).toMatch(/minute/);
    expect(next('* * * *', MON)).toMatch(/4 fields/);
    expect(next('@every 0s', MON)).toMatch(/minimum/);
    expect(next('@every', MON)).toMatch(/duration/);
    expect(next('TZ=Mars/Olympus 0 8 * * *', MON)).toMatch(/unknown time zone/);
    expect(next('@sometimes', MON)).toMatch(/unknown shortcut/);
    expect(next('0 0 30 2 *', MON)).toBe(-1);
  });

  it('parses durations', () => {
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('2d')).toBe(172_800_000);
    expect(parseDuration('5')).toBeUndefined();
    expect(parseDuration('5m x')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
  });
});
