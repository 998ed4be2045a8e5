#!/usr/bin/env node
// Draws the benchmark's headline figures as an SVG bar chart, with no
// dependency: `node bench/chart.js results.json [docs/bench.svg]`, or
// writeChart(report, file) from bench/run.js. A PNG is written next to it
// only when an SVG converter (rsvg-convert or ImageMagick) is installed.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const COLORS = { beuss: '#d9480f', redis: '#1c7ed6', nats: '#37b24d', beanstalkd: '#868e96', 'null server (generator ceiling)': '#ced4da' };
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Returns the groups to draw: throughput figures (M msg/s) at the chart window, and 1 MiB figures (GiB/s). */
function groups(report, window) {
  const out = [];
  const pick = (id, label, unit = 'M msg/s', filter = () => true, value = (r) => r.raw.median / 1e6) => {
    const t = report.scenarios.find((s) => s.id === id);
    if (!t) return;
    const bars = t.rows.filter((r) => r.raw && Number.isFinite(r.raw.median) && filter(r)).map((r) => ({ name: r.server, value: value(r) }));
    if (bars.length) out.push({ label, unit, bars });
  };
  const atW = (r) => Number(r.window) === window;
  pick('produce', `produce, window ${window}`, 'M msg/s', atW);
  pick('consume-get', `consume (take), window ${window}`, 'M msg/s', atW);
  pick('e2e-1p1c', `1 producer + 1 consumer, window ${window}`, 'M msg/s', atW);
  pick('e2e-4p4c', '4 producers + 4 consumers', 'M msg/s');
  pick('fanout', 'fan-out to 4 subscribers (deliveries)', 'M msg/s');
  pick('large', '1 MiB messages in', 'GiB/s', (r) => r.way.startsWith('in'), (r) => r.raw.median / 1024);
  pick('large', '1 MiB messages out', 'GiB/s', (r) => r.way.startsWith('out'), (r) => r.raw.median / 1024);
  return out;
}

/** Returns the SVG text of the chart for a benchmark report. */
function renderSvg(report, window = 1024) {
  const gs = groups(report, window);
  const W = 760;
  const left = 250;
  const right = 90;
  const barH = 16;
  const gap = 4;
  const groupGap = 26;
  let y = 58;
  const parts = [];
  for (const g of gs) {
    const max = Math.max(...g.bars.map((b) => b.value), 1e-9);
    parts.push(`<text x="12" y="${y + 12}" font-weight="bold">${esc(g.label)}</text>`);
    y += 18;
    for (const b of g.bars) {
      const w = Math.max(1, ((W - left - right) * b.value) / max);
      const color = COLORS[b.name] || '#495057';
      parts.push(`<text x="${left - 8}" y="${y + 12}" text-anchor="end">${esc(b.name)}</text>`);
      parts.push(`<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color}"/>`);
      parts.push(`<text x="${(left + w + 6).toFixed(1)}" y="${y + 12}">${b.value.toFixed(2)} ${esc(g.unit)}</text>`);
      y += barH + gap;
    }
    y += groupGap - gap;
  }
  const m = report.meta || {};
  const H = y + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="12" y="22" font-size="16" font-weight="bold">beuss vs redis, nats, beanstalkd on loopback (64-byte and 1 MiB messages; longer is better)</text>`,
    `<text x="12" y="40" fill="#495057">${esc(`${m.date || ''} · ${m.cpus || '?'} × ${m.cpu || '?'} · median of runs · ${m.command || ''}`)}</text>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}

/** Writes the chart to file (an .svg) and, if a converter exists, a .png beside it; returns the paths written. */
function writeChart(report, file) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, renderSvg(report));
  const written = [file];
  const png = file.replace(/\.svg$/, '.png');
  if (png !== file) {
    for (const [cmd, args] of [['rsvg-convert', ['-o', png, file]], ['convert', [file, png]]]) {
      const r = spawnSync(cmd, args, { stdio: 'ignore' });
      if (r.status === 0 && fs.existsSync(png)) {
        written.push(png);
        break;
      }
    }
  }
  return written;
}

module.exports = { renderSvg, writeChart };

if (require.main === module) {
  const [json, out = path.join(__dirname, '..', 'docs', 'bench.svg')] = process.argv.slice(2);
  if (!json) {
    process.stderr.write('usage: node bench/chart.js results.json [out.svg]\n');
    process.exit(2);
  }
  const files = writeChart(JSON.parse(fs.readFileSync(json, 'utf8')), out);
  process.stdout.write(`${files.join('\n')}\n`);
}
