// node scripts/ab-tree.mjs DIR COUNT: a tree like the bench's tools tree (text files of 60 B-256 KiB, log-normal,
// median about 2 KiB, 100 per directory), then DIR.tar, for scripts/ab-small.mjs's tar phases (AB_TAR, AB_TREE).
import fs from 'node:fs'; import path from 'node:path'; import { execFileSync } from 'node:child_process';
const [dir, countArg] = process.argv.slice(2); const count = Number(countArg);
let s = 42; const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
const syll = ['ka','ro','mi','te','su','lan','dor','pe','qui','vo','ne','sta','bri','lo','gar','fe','ny','ox','ul','tra'];
const words = Array.from({ length: 5000 }, () => Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => syll[Math.floor(rnd() * syll.length)]).join(''));
const parts = []; let n = 0;
while (n < 8 * 1024 * 1024) { const w = words[Math.floor(Math.pow(rnd(), 3) * words.length)] + (rnd() < 0.08 ? '.\n' : ' '); parts.push(w); n += w.length; }
const text = Buffer.from(parts.join(''));
fs.rmSync(dir, { recursive: true, force: true });
for (let i = 0; i < count; i++) {
  const sub = path.join(dir, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
  if (i % 100 === 0) fs.mkdirSync(sub, { recursive: true });
  const normal = Math.sqrt(-2 * Math.log(rnd() + 1e-12)) * Math.cos(2 * Math.PI * rnd());
  const len = Math.max(60, Math.min(256 * 1024, Math.round(2048 * Math.exp(1.5 * normal))));
  const off = Math.floor(rnd() * (text.length - len));
  fs.writeFileSync(path.join(sub, `f${String(i).padStart(5, '0')}.txt`), text.subarray(off, off + len));
}
execFileSync('tar', ['-cf', dir + '.tar', '-C', dir, '.']);
