import { writeFileSync } from 'node:fs';
import type { SimReport } from './run.js';

/**
 * Charts of simulator runs: one panel per run, with the hourly spend as bars, the hourly plan as
 * a line, the traffic as a faint area and the throttle as a thin line on its own 0-1 scale.
 * Written as a self-contained SVG; .html wraps it in a page; .png renders it with resvg
 * (@resvg/resvg-js, loaded only when a PNG is asked for).
 */
const panelW = 560;
const panelH = 250;
const pad = { left: 56, right: 40, top: 34, bottom: 34 };
const colors = { spend: '#4c78a8', plan: '#e45756', traffic: '#d8d8d8', throttle: '#54a24b', grid: '#e6e6e6', text: '#333333' };

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function panel(r: SimReport, x0: number, y0: number, title: string): string {
  const hours = r.detail.hours;
  const K = hours.length;
  const w = panelW - pad.left - pad.right;
  const h = panelH - pad.top - pad.bottom;
  // The scale follows the spend; a plan far above it (ASAP's whole budget in its first hour) is clipped.
  const spendMax = Math.max(...hours.map((x) => x.spentMicros), 1);
  const max = Math.max(spendMax, ...hours.map((x) => (x.planMicros <= 2 * spendMax ? x.planMicros : 0))) * 1.1;
  const maxReq = Math.max(...hours.map((x) => x.requests), 1);
  const bw = w / K;
  const X = (k: number): number => x0 + pad.left + k * bw;
  const Y = (v: number): number => y0 + pad.top + h - (v / max) * h;
  const parts: string[] = [];
  parts.push(`<text x="${x0 + pad.left}" y="${y0 + 20}" font-size="14" font-weight="bold" fill="${colors.text}">${esc(title)}</text>`);
  for (let i = 0; i <= 4; i++) {
    const v = (max * i) / 4;
    const y = Y(v);
    parts.push(`<line x1="${x0 + pad.left}" x2="${x0 + pad.left + w}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="${colors.grid}"/>`);
    parts.push(`<text x="${x0 + pad.left - 6}" y="${(y + 4).toFixed(1)}" font-size="10" text-anchor="end" fill="${colors.text}">${(v / 1e6).toFixed(1)}</text>`);
  }
  // Traffic, scaled to the panel's height.
  const area = hours.map((x, k) => `${X(k).toFixed(1)},${(y0 + pad.top + h - (x.requests / maxReq) * h * 0.9).toFixed(1)} ${X(k + 1).toFixed(1)},${(y0 + pad.top + h - (x.requests / maxReq) * h * 0.9).toFixed(1)}`);
  parts.push(`<polygon points="${X(0)},${y0 + pad.top + h} ${area.join(' ')} ${X(K)},${y0 + pad.top + h}" fill="${colors.traffic}" opacity="0.6"/>`);
  for (let k = 0; k < K; k++) {
    const s = hours[k]!.spentMicros;
    parts.push(`<rect x="${(X(k) + 1).toFixed(1)}" y="${Y(s).toFixed(1)}" width="${Math.max(1, bw - 2).toFixed(1)}" height="${(Y(0) - Y(s)).toFixed(1)}" fill="${colors.spend}"/>`);
  }
  const plan = hours.map((x, k) => {
    const y = Y(Math.min(x.planMicros, max)).toFixed(1);
    return `${X(k).toFixed(1)},${y} ${X(k + 1).toFixed(1)},${y}`;
  });
  parts.push(`<polyline points="${plan.join(' ')}" fill="none" stroke="${colors.plan}" stroke-width="2"/>`);
  const thr = hours.map((x, k) => `${(X(k) + bw / 2).toFixed(1)},${(y0 + pad.top + h - x.throttle * h).toFixed(1)}`);
  parts.push(`<polyline points="${thr.join(' ')}" fill="none" stroke="${colors.throttle}" stroke-width="1.5" stroke-dasharray="4 2"/>`);
  parts.push(`<text x="${x0 + pad.left + w + 6}" y="${y0 + pad.top + 4}" font-size="10" fill="${colors.throttle}">p=1</text>`);
  parts.push(`<text x="${x0 + pad.left + w + 6}" y="${y0 + pad.top + h + 4}" font-size="10" fill="${colors.throttle}">p=0</text>`);
  for (let k = 0; k < K; k += 3) {
    parts.push(`<text x="${X(k).toFixed(1)}" y="${y0 + pad.top + h + 14}" font-size="10" fill="${colors.text}">${esc(hours[k]!.label)}</text>`);
  }
  const stats = `delivery ${r.deliveryRatio.toFixed(4)}  overspend ${r.overspendRatio.toFixed(4)}  nRMSE ${r.slotNrmse.toFixed(3)}  trips ${r.breakerTrips}`;
  parts.push(`<text x="${x0 + pad.left}" y="${y0 + panelH - 6}" font-size="11" fill="${colors.text}">${esc(stats)}</text>`);
  return parts.join('\n');
}

export function chartSvg(reports: SimReport[], heading?: string): string {
  const cols = reports.length > 1 ? 2 : 1;
  const rows = Math.ceil(reports.length / cols);
  const top = 58;
  const W = cols * panelW;
  const H = top + rows * panelH + 10;
  const first = reports[0]!;
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`);
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  const title = heading ?? `${first.strategy} on ${first.detail.day} (${first.detail.timezone}), seed ${first.seed}`;
  parts.push(`<text x="12" y="22" font-size="16" font-weight="bold" fill="${colors.text}">${esc(title)}</text>`);
  const legend: [string, string][] = [
    ['spend per hour (currency units)', colors.spend],
    ['plan per hour', colors.plan],
    ['traffic (relative)', colors.traffic],
    ['throttle p (0-1)', colors.throttle],
  ];
  let lx = 12;
  for (const [label, color] of legend) {
    parts.push(`<rect x="${lx}" y="34" width="12" height="12" fill="${color}"/>`);
    parts.push(`<text x="${lx + 16}" y="44" font-size="11" fill="${colors.text}">${esc(label)}</text>`);
    lx += 22 + label.length * 6.3;
  }
  reports.forEach((r, i) => {
    const title = `${r.strategy}${r.days > 1 ? ` (day ${r.days} of ${r.days})` : ''}`;
    parts.push(panel(r, (i % cols) * panelW, top + Math.floor(i / cols) * panelH, title));
  });
  parts.push('</svg>');
  return parts.join('\n');
}

export async function writeChart(file: string, reports: SimReport[], heading?: string): Promise<void> {
  const svg = chartSvg(reports, heading);
  const lower = file.toLowerCase();
  if (lower.endsWith('.svg')) {
    writeFileSync(file, svg);
  } else if (lower.endsWith('.html')) {
    writeFileSync(file, `<!doctype html>\n<meta charset="utf-8">\n<title>${esc(heading ?? 'pacing simulation')}</title>\n<body style="margin:0">\n${svg}\n</body>\n`);
  } else if (lower.endsWith('.png')) {
    writeFileSync(file, await renderPng(svg));
  } else {
    throw new Error(`--out must end in .svg, .html or .png (got ${JSON.stringify(file)})`);
  }
}

async function renderPng(svg: string): Promise<Buffer> {
  let mod: { Resvg: new (svg: string, opts?: unknown) => { render(): { asPng(): Buffer } } };
  try {
    mod = (await import('@resvg/resvg-js' as string)) as typeof mod;
  } catch {
    throw new Error('PNG output needs @resvg/resvg-js (npm install); write .svg or .html instead');
  }
  const resvg = new mod.Resvg(svg, { background: '#ffffff', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } });
  return resvg.render().asPng();
}
