#!/usr/bin/env node
// Patch node_modules/fuse-native (2.2.6) with scripts/fuse-native.patch and build the native addon
// into node_modules/fuse-native/build/Release/fuse.node (node-gyp-build loads build/Release before the
// 2020 prebuild). Runs as the package.json "postinstall"; safe to re-run (idempotent).
//
//   node scripts/patch-fuse-native.mjs           patch if needed, rebuild if the loaded addon is not patched
//   node scripts/patch-fuse-native.mjs --force   always rebuild
//   node scripts/patch-fuse-native.mjs --check   only report; exit 1 if not patched + built
//   SEFS_SKIP_FUSE_PATCH=1                        skip everything (machines that never mount)
//
// Details: native-notes/fuse-native-patch.md
import { createRequire } from 'node:module'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const PATCH_LEVEL = 13 // must match SEFS_PATCH_LEVEL / sefs_patch_level inside the patch
const FUSE_NATIVE_VERSION = '2.2.6'
const MARKER = /SEFS-PATCH v(\d+)/
const BACKUP_SUFFIX = '.sefs-orig'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.resolve(here, '..')
const patchFile = path.join(here, 'fuse-native.patch')
const args = new Set(process.argv.slice(2))

const log = (msg) => console.log(`[patch-fuse-native] ${msg}`)
function fail (msg) {
  console.error(`\n[patch-fuse-native] ERROR: ${msg}\n`)
  process.exit(1)
}

if (process.env.SEFS_SKIP_FUSE_PATCH) {
  log('SEFS_SKIP_FUSE_PATCH is set: skipping (fuse-native stays unpatched; mounting will refuse to run)')
  process.exit(0)
}
if (process.platform !== 'linux') {
  log(`platform ${process.platform}: the patch is only built and tested on Linux; skipping`)
  process.exit(0)
}

// 1. Find fuse-native and check its version.
let fnDir
try {
  fnDir = path.dirname(createRequire(path.join(root, 'package.json')).resolve('fuse-native/package.json'))
} catch {
  fail(`fuse-native is not installed under ${root}/node_modules (run npm ci first)`)
}
const version = JSON.parse(fs.readFileSync(path.join(fnDir, 'package.json'), 'utf8')).version
if (version !== FUSE_NATIVE_VERSION) {
  fail(`${fnDir} is fuse-native ${version}, but scripts/fuse-native.patch is for ${FUSE_NATIVE_VERSION}.\n` +
    'Pin fuse-native to 2.2.6 in package.json, or port the patch (see native-notes/fuse-native-patch.md, "Updating the patch").')
}

// 2. Apply the patch (unless already applied at this level).
const patches = parsePatch(fs.readFileSync(patchFile, 'utf8'))
// The highest level marked (each hunk is marked with the level that added it).
const levelOf = (text) => Math.max(0, ...[...text.matchAll(new RegExp(MARKER.source, 'g'))].map(m => Number(m[1])))
const current = patches.map(p => fs.readFileSync(path.join(fnDir, p.file), 'utf8'))
const levels = current.map(levelOf)
let patchedNow = false

if (args.has('--check')) {
  // report only
} else if (levels.every(l => l === PATCH_LEVEL)) {
  log(`patch v${PATCH_LEVEL} already applied to ${fnDir}`)
} else {
  let originals = current
  if (!levels.every(l => l === 0)) {
    // Another patch level (or a half-patched tree): go back to the originals we saved when patching.
    const backups = patches.map(p => path.join(fnDir, p.file + BACKUP_SUFFIX))
    if (!backups.every(f => fs.existsSync(f))) {
      fail(`${fnDir} has patch levels ${JSON.stringify(levels)} (want ${PATCH_LEVEL}) and no ${BACKUP_SUFFIX} backups.\n` +
        'Reinstall it: rm -rf node_modules/fuse-native && npm ci')
    }
    originals = backups.map(f => fs.readFileSync(f, 'utf8'))
    log(`found patch levels ${JSON.stringify(levels)}: restarting from the ${BACKUP_SUFFIX} backups`)
  }
  // Compute every patched file first, so a failing hunk leaves the tree untouched.
  let results
  try {
    results = patches.map((p, i) => applyHunks(originals[i], p))
  } catch (err) {
    fail(`scripts/fuse-native.patch does not apply to ${fnDir}: ${err.message}\n` +
      'The installed files differ from the published fuse-native 2.2.6. Reinstall: rm -rf node_modules/fuse-native && npm ci')
  }
  patches.forEach((p, i) => {
    if (levelOf(results[i]) !== PATCH_LEVEL) fail(`patched ${p.file} has no "SEFS-PATCH v${PATCH_LEVEL}" marker: PATCH_LEVEL in this script and the patch disagree`)
    const backup = path.join(fnDir, p.file + BACKUP_SUFFIX)
    if (!fs.existsSync(backup)) fs.writeFileSync(backup, originals[i])
    fs.writeFileSync(path.join(fnDir, p.file), results[i])
  })
  patchedNow = true
  log(`applied scripts/fuse-native.patch (v${PATCH_LEVEL}) to ${patches.map(p => p.file).join(', ')}`)
}

// 3. Build build/Release/fuse.node unless the addon node-gyp-build picks is already the patched one.
const wantBinary = path.join(fnDir, 'build', 'Release', 'fuse.node')
let state = probeAddon()
if (args.has('--check')) {
  const ok = levels.every(l => l === PATCH_LEVEL) && state.ok
  log(`files: levels ${JSON.stringify(levels)}; addon: ${state.describe}`)
  process.exit(ok ? 0 : 1)
}
if (patchedNow || args.has('--force') || !state.ok) {
  log(`building ${path.relative(root, wantBinary)} (${patchedNow ? 'patch just applied' : args.has('--force') ? '--force' : state.describe})`)
  build()
  state = probeAddon()
  if (!state.ok) fail(`the build finished, but the addon node-gyp-build loads is not the patched one: ${state.describe}`)
}
log(`OK: node-gyp-build loads ${path.relative(root, state.path)} with sefs_patch_level ${state.level}${state.note}`)

// ---------------------------------------------------------------------------------------------

// Ask a fresh node which addon node-gyp-build resolves for fuse-native and what it reports.
// If libfuse.so.2 is missing system-wide, retry with fuse-native's bundled copy preloaded so we can
// still verify the build (and warn: mounting needs `apt-get install libfuse2`).
function probeAddon () {
  const code = `
    const dir = process.argv[1]
    const ngb = require(require.resolve('node-gyp-build', { paths: [dir] }))
    const p = ngb.path(dir)
    let level = null, error = null
    try { level = require(p).sefs_patch_level ?? 0 } catch (e) { error = e.message }
    console.log(JSON.stringify({ path: p, level, error }))`
  const run = (env) => {
    const r = spawnSync(process.execPath, ['-e', code, fnDir], { encoding: 'utf8', env: { ...process.env, ...env } })
    try { return JSON.parse(r.stdout.trim().split('\n').pop()) } catch { return { path: null, level: null, error: (r.stderr || r.stdout || '').trim() } }
  }
  let r = run({})
  let note = ''
  if (r.error && /libfuse\.so\.2/.test(r.error)) {
    const bundled = bundledLibfuse()
    if (bundled) {
      const sysErr = r.error.split('\n')[0]
      r = run({ LD_PRELOAD: bundled })
      note = `\n  WARNING: the system libfuse.so.2 cannot be loaded (${sysErr});\n` +
        '  verified with fuse-native\'s bundled copy preloaded instead.\n' +
        '  Mounting needs it: apt-get install -y libfuse2 fuse  (or run scripts/setup.sh)'
    }
  }
  const ok = !r.error && r.path === wantBinary && r.level === PATCH_LEVEL
  const describe = r.error
    ? `cannot load ${r.path || 'the addon'}: ${r.error.split('\n')[0]}`
    : `${r.path && path.relative(root, r.path)} has sefs_patch_level ${r.level}`
  return { ...r, ok, describe, note: ok ? note : '' }
}

// fuse-native's bundled libfuse 2.9 (SONAME libfuse.so.2): the build copies it to build/Release.
function bundledLibfuse () {
  const candidates = [path.join(fnDir, 'build', 'Release', 'libfuse.so')]
  try { candidates.push(createRequire(path.join(fnDir, 'package.json'))('fuse-shared-library').lib) } catch {}
  return candidates.find(f => typeof f === 'string' && fs.existsSync(f)) || null
}

function build () {
  const missing = [['python3', 'python3'], ['make', 'make'], ['g++', 'g++']].filter(([bin]) => !which(bin)).map(([, pkg]) => pkg)
  if (missing.length) fail(`cannot build the fuse-native addon: missing ${missing.join(', ')}.\nInstall: apt-get install -y ${missing.join(' ')}  (or run scripts/setup.sh)`)

  const nodeGyp = findNodeGyp()
  if (!nodeGyp) fail('cannot find node-gyp (looked at $npm_config_node_gyp, node_modules, npm\'s bundled copy and PATH).\nInstall npm, or: npm install -g node-gyp')
  const gypArgs = ['rebuild', '--release']
  const nodedir = findNodedir()
  if (nodedir) gypArgs.push(`--nodedir=${nodedir}`)
  else log('no local Node headers found: node-gyp will use its cache or download the headers for ' + process.version)

  log(`running: ${[process.execPath, nodeGyp, ...gypArgs].join(' ')}  (cwd ${fnDir})`)
  const r = spawnSync(process.execPath, [nodeGyp, ...gypArgs], { cwd: fnDir, stdio: 'inherit', env: process.env })
  if (r.error || r.status !== 0) {
    fail(`node-gyp rebuild of fuse-native failed (${r.error ? r.error.message : 'exit ' + r.status}; output above).\n` +
      'Needs python3, make, g++ and the Node headers (nodedir or network). The patched addon is NOT installed,\n' +
      'so sefs cannot mount. Fix the cause and re-run: node scripts/patch-fuse-native.mjs')
  }
  if (!fs.existsSync(wantBinary)) fail(`node-gyp succeeded but ${wantBinary} is missing`)
}

function findNodeGyp () {
  const candidates = []
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp) // set by npm for lifecycle scripts
  try { candidates.push(createRequire(path.join(root, 'package.json')).resolve('node-gyp/bin/node-gyp.js')) } catch {}
  const npmCli = process.env.npm_execpath || which('npm') // npm_execpath = .../npm/bin/npm-cli.js under npm
  if (npmCli) candidates.push(path.join(path.dirname(fs.realpathSync(npmCli)), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'))
  candidates.push(path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'))
  for (const c of candidates) if (c && fs.existsSync(c) && c.endsWith('.js')) return c
  const onPath = which('node-gyp')
  return onPath ? fs.realpathSync(onPath) : null
}

// Node headers: npm's nodedir config if set, else the headers installed next to this node
// (Debian/NodeSource packages put them in /usr/include/node) if their version matches.
function findNodedir () {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir
  const prefix = path.resolve(path.dirname(process.execPath), '..')
  try {
    const h = fs.readFileSync(path.join(prefix, 'include', 'node', 'node_version.h'), 'utf8')
    const v = ['MAJOR', 'MINOR', 'PATCH'].map(k => new RegExp(`#define NODE_${k}_VERSION (\\d+)`).exec(h)[1]).join('.')
    if ('v' + v === process.version && fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) return prefix
  } catch {}
  return null
}

function which (bin) {
  for (const d of (process.env.PATH || '').split(path.delimiter)) {
    const f = path.join(d, bin)
    try { fs.accessSync(f, fs.constants.X_OK); return f } catch {}
  }
  return null
}

// Minimal strict unified-diff reader/applier: no fuzz, every hunk must match exactly
// (at its line number, allowing for the shift caused by earlier hunks).
function parsePatch (text) {
  const files = []
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    if (!(lines[i].startsWith('--- ') && lines[i + 1]?.startsWith('+++ '))) continue
    const file = { file: lines[i + 1].slice(4).split('\t')[0].replace(/^b\//, ''), hunks: [] }
    files.push(file)
    i += 2
    while (i < lines.length && lines[i].startsWith('@@ ')) {
      const m = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(lines[i])
      if (!m) throw new Error(`bad hunk header: ${lines[i]}`)
      let oldLeft = m[2] === undefined ? 1 : Number(m[2])
      let newLeft = m[4] === undefined ? 1 : Number(m[4])
      const hunk = { oldStart: Number(m[1]), old: [], new: [] }
      i++
      while (oldLeft > 0 || newLeft > 0) {
        const l = lines[i++]
        if (l === undefined) throw new Error(`truncated hunk in ${file.file}`)
        if (l.startsWith('\\')) continue // "\ No newline at end of file"
        const body = l.slice(1)
        if (l[0] === ' ' || l === '') { hunk.old.push(body); hunk.new.push(body); oldLeft--; newLeft-- } else if (l[0] === '-') { hunk.old.push(body); oldLeft-- } else if (l[0] === '+') { hunk.new.push(body); newLeft-- } else throw new Error(`bad hunk line in ${file.file}: ${l}`)
      }
      file.hunks.push(hunk)
    }
    i--
  }
  if (!files.length) throw new Error('no files in patch')
  return files
}

function applyHunks (text, { file, hunks }) {
  const lines = text.split('\n')
  let shift = 0
  for (const h of hunks) {
    const at = h.oldStart - 1 + shift + (h.old.length === 0 ? 1 : 0)
    const actual = lines.slice(at, at + h.old.length)
    if (actual.length !== h.old.length || actual.some((l, k) => l !== h.old[k])) {
      throw new Error(`${file}: hunk at line ${h.oldStart} does not match`)
    }
    lines.splice(at, h.old.length, ...h.new)
    shift += h.new.length - h.old.length
  }
  return lines.join('\n')
}
