// node scripts/ab-stream-summary.mjs FILE...: medians (min-max) per case and build of scripts/ab-stream-rounds.sh
// output, as markdown table rows: MB/s (or p50 / first-read-of-its-MiB p50 in ms), daemon CPU s per GiB in all,
// on the main thread and on the others.
import fs from 'node:fs';

const rows = process.argv.slice(2).flatMap((f) => fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)));
const by = new Map();
for (const r of rows) {
  const kind = r.write ? 'write' : r.p50 !== undefined ? '4K cold' : 'read';
  const key = `${kind} ${r.file.replace(/\..*/, '')} | ${r.build}`;
  const cpu = typeof r.cpu === 'number' ? { all: r.cpu } : { main: r.cpu.main, rest: Object.entries(r.cpu).filter(([k]) => k !== 'main').reduce((a, [, v]) => a + v, 0) };
  cpu.all ??= cpu.main + cpu.rest;
  if (!by.has(key)) by.set(key, []);
  by.get(key).push({ ...r, ...cpu });
}
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)];
const span = (v, f, scale = 1) => {
  const a = v.map(f).filter((x) => x !== undefined).map((x) => x * scale);
  if (a.length === 0) return '-';
  const r = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(x >= 10 ? 1 : 2));
  return `${r(med(a))} (${r(Math.min(...a))}-${r(Math.max(...a))})`;
};
console.log('| case | build | MB/s or p50 / 1st-of-MiB p50 ms | CPU s/GiB all | main | others | runs, load |');
console.log('|---|---|---|---|---|---|---|');
for (const [k, v] of [...by].sort((a, b) => a[0].localeCompare(b[0]))) {
  const speed = v[0].p50 !== undefined ? `${span(v, (x) => x.p50)} / ${span(v, (x) => x.first50)}` : span(v, (x) => x.mbs);
  const perGiB = v[0].p50 !== undefined ? undefined : 1 / 1000;
  const cpu = (f) => (perGiB ? span(v, f, perGiB) : '-');
  console.log(`| ${k} | ${speed} | ${cpu((x) => x.all)} | ${cpu((x) => x.main)} | ${cpu((x) => x.rest)} | ${v.length}, ${v.map((x) => x.load).join(' ')} |`);
}
