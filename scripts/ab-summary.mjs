// node scripts/ab-summary.mjs FILE: from scripts/ab-rounds.sh's output, the median and range of wall seconds (and
// the daemon's CPU) per target and phase, and each target's ratio to gocryptfs.
import fs from 'node:fs';
const rows = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const by = {};
for (const { run } of rows) for (const [ph, v] of Object.entries(run)) if (typeof v === 'object') ((by[run.target] ??= {})[ph] ??= []).push(v);
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const phases = [...new Set(Object.values(by).flatMap((o) => Object.keys(o)))];
console.log('target'.padEnd(12), phases.map((p) => p.padStart(22)).join(''));
for (const [t, o] of Object.entries(by)) {
  console.log(t.padEnd(12), phases.map((p) => { const w = (o[p] ?? []).map((v) => v.wall / 1000); if (!w.length) return ''.padStart(22); return `${med(w).toFixed(2)} (${Math.min(...w).toFixed(2)}-${Math.max(...w).toFixed(2)})`.padStart(22); }).join(''));
  console.log(''.padEnd(12), phases.map((p) => { const c = (o[p] ?? []).map((v) => (v.usr + v.sys) / 1000); if (!c.length) return ''.padStart(22); return `cpu ${med(c).toFixed(2)}`.padStart(22); }).join(''));
}
if (by.gocryptfs) for (const [t, o] of Object.entries(by)) if (t !== 'gocryptfs') {
  const rs = phases.map((p) => (o[p] && by.gocryptfs[p] ? med(o[p].map((v) => v.wall)) / med(by.gocryptfs[p].map((v) => v.wall)) : NaN));
  console.log(`${t}/gocfs`.padEnd(12), rs.map((r) => (isNaN(r) ? '' : r.toFixed(2) + 'x').padStart(22)).join(''));
}
