// The spread of several `npm run bench` runs, and the speed bars of design.md run by run.
//   node scripts/bench-spread.mjs bench-results/A.json bench-results/B.json ...
// (`npm run bench -- --runs N` runs the bench N times and ends with this.) Prints, for each case, sefs's value
// (the default profile) and gocryptfs's in each run, and their ratio's median and range; then each bar, met or
// not in each run. The small-file tree is the tar tree's untar, read after a cache drop and rm -rf, with the
// ls -lR of the created files (the tree the issue measures has no ls of its own in the bench).
import fs from 'node:fs';

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node scripts/bench-spread.mjs RUN.json...');
  process.exit(2);
}
const runs = files.map((f) => JSON.parse(fs.readFileSync(f, 'utf8')));
const SEFS = 'sefs-selective';
const GO = 'gocryptfs';

const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
const at = (run, id, target) => num(run.results[id]?.[target]);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const fmt = (v) => (v === undefined ? '-' : Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toFixed(3));
const ratio = (run, id) => {
  const s = at(run, id, SEFS);
  const g = at(run, id, GO);
  return s !== undefined && g !== undefined && g > 0 ? s / g : undefined;
};

console.log(`${runs.length} runs: ${runs.map((r) => r.date).join(', ')}`);
console.log('ratio = sefs / gocryptfs; the range is over the runs\n');
const head = ['case', 'unit', ...runs.map((_, i) => `run ${i + 1} sefs/gocfs`), 'ratio median', 'range'];
const rows = [];
for (const c of runs[0].cases) {
  const rs = runs.map((r) => ratio(r, c.id)).filter((v) => v !== undefined);
  if (rs.length === 0) continue;
  rows.push([
    c.label.trim(),
    c.unit + (c.better === 'hi' ? ' ^' : c.better === 'lo' ? ' v' : ''),
    ...runs.map((r) => `${fmt(at(r, c.id, SEFS))}/${fmt(at(r, c.id, GO))}`),
    `${median(rs).toFixed(2)}x`,
    `${Math.min(...rs).toFixed(2)}-${Math.max(...rs).toFixed(2)}x`,
  ]);
}
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
console.log(line(head));
console.log(widths.map((w) => '-'.repeat(w)).join('  '));
for (const r of rows) console.log(line(r));

// design.md's bars, each a test of one run: [label, value shown, met].
const TREE = ['tools_untar', 'small_ls', 'tools_read', 'tools_rm'];
const treeOf = (run, target) => {
  const parts = TREE.map((id) => at(run, id, target));
  return parts.includes(undefined) ? undefined : parts.reduce((a, b) => a + b, 0);
};
/** A bar on sefs's own value: under `limit` (undefined when the run did not measure it). */
function below(id, limit, unit) {
  return (run) => {
    const v = at(run, id, SEFS);
    return [`${fmt(v)} ${unit}`, v === undefined ? undefined : v < limit];
  };
}
const bars = [
  ...['seq_write_random', 'seq_write_text', 'seq_read_random', 'seq_read_text'].map((id) => [
    `${id.replace(/_/g, ' ')} >= gocryptfs`,
    (run) => {
      const r = ratio(run, id);
      return [r === undefined ? '-' : `${r.toFixed(2)}x`, r === undefined ? undefined : r >= 1];
    },
  ]),
  [
    'small-file tree total <= 2x gocryptfs',
    (run) => {
      const s = treeOf(run, SEFS);
      const g = treeOf(run, GO);
      const r = s !== undefined && g ? s / g : undefined;
      return [r === undefined ? '-' : `${r.toFixed(2)}x`, r === undefined ? undefined : r <= 2];
    },
  ],
  [
    'no tree phase over 3x',
    (run) => {
      const rs = TREE.map((id) => ratio(run, id));
      const worst = rs.includes(undefined) ? undefined : Math.max(...rs);
      return [worst === undefined ? '-' : `worst ${worst.toFixed(2)}x`, worst === undefined ? undefined : worst <= 3];
    },
  ],
  ['cold 4K read p50 < 3 ms', below('rr_cold_p50', 3, 'ms')],
  ['warm 4K read p50 < 0.2 ms', below('rr_warm_p50', 0.2, 'ms')],
  ['2nd copy stores < 1% new', below('dedup_new', 1, '%')],
];
console.log('\nbars (design.md), run by run');
const barRows = bars.map(([label, test]) => {
  const results = runs.map((r) => test(r));
  const measured = results.filter(([, met]) => met !== undefined).length;
  return [label, ...results.map(([shown, met]) => (met === undefined ? 'not run' : `${met ? 'met' : 'MISSED'} ${shown}`)), `${results.filter(([, met]) => met).length}/${measured}`];
});
const bw = barRows[0].map((_, i) => Math.max(...barRows.map((r) => r[i].length)));
for (const r of barRows) console.log(r.map((c, i) => (i === 0 ? c.padEnd(bw[i]) : c.padStart(bw[i]))).join('  '));
// A bar a run did not measure neither meets nor misses.
const allMet = runs.map((r) => bars.every(([, test]) => test(r)[1] !== false));
console.log(`\nevery bar it measured met in ${allMet.filter(Boolean).length} of ${runs.length} runs (${allMet.map((m, i) => `run ${i + 1} ${m ? 'yes' : 'no'}`).join(', ')})`);
