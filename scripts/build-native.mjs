#!/usr/bin/env node
// Build the native addon (src/core/native: four-way SHA3-256, the pad XOR, four-stream AES-128-CBC encryption,
// in-place AES-128-CBC decryption, brotli decoding into a given buffer, exact file times, renameat2's exchange
// and no-replace, ext4's top-directory flag, empty files made in a batch)
// into dist/native/sha3x4.node with the system C compiler and Node's own headers: no node-gyp, no download.
// On x86-64 the SHA3 kernel is compiled three times (generic, AVX2, AVX-512VL) and the addon picks one at load
// time by CPU, and the AES-NI code is added; on any other architecture only the portable generic kernel is
// built. Runs from "postinstall" and "build". Where it cannot build or the result does not load, it logs one
// WARNING line and exits 0: sefs then hashes with OpenSSL (same results, slower).
//
//   node scripts/build-native.mjs            build if the sources are newer than the addon
//   node scripts/build-native.mjs --force    always build
//   node scripts/build-native.mjs --werror   warnings are errors (development builds; never in an install)
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const srcDir = path.join(root, 'src', 'core', 'native')
const outDir = path.join(root, 'dist', 'native')
const target = path.join(outDir, 'sha3x4.node')
/** The C files of the addon's Node-API side; sha3x4-kernel.c and aes-cbc-x4.c are built apart (per-CPU flags). */
const GLUE = ['sha3x4-addon.c', 'file-times.c', 'rename-exchange.c', 'brotli-into.c', 'top-dir.c', 'fresh-files.c', 'read-file.c', 'write-direct.c', 'remove-names.c']
const HEADERS = ['file-times.h', 'rename-exchange.h', 'brotli-into.h', 'top-dir.h', 'napi-string.h', 'fresh-files.h', 'read-file.h', 'write-direct.h', 'direct-io.h', 'remove-names.h', 'napi-settle.h']
const sources = ['sha3x4-kernel.c', 'aes-cbc-x4.c', ...GLUE, ...HEADERS].map((f) => path.join(srcDir, f))
const log = (msg) => console.log(`[build-native] ${msg}`)
const fallback = (why) => {
  const kept = fs.existsSync(target) ? `keeping the previous ${path.relative(root, target)}` : 'sefs hashes with OpenSSL instead: same results, slower'
  log(`WARNING: cannot build the native addon (${why}); ${kept}`)
  process.exit(0)
}

const headerDirs = [path.join(path.dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node']
const headers = headerDirs.find((d) => fs.existsSync(path.join(d, 'node_api.h')))
const cc = process.env.CC || 'cc'
const x86 = process.arch === 'x64'

const upToDate = () =>
  fs.existsSync(target) && sources.every((s) => fs.statSync(s).mtimeMs <= fs.statSync(target).mtimeMs)

if (!process.argv.includes('--force') && upToDate()) {
  log(`${path.relative(root, target)} is up to date`)
  process.exit(0)
}
if (!headers) fallback(`node_api.h not found in ${headerDirs.join(', ')}`)

fs.mkdirSync(outDir, { recursive: true })
const tmp = fs.mkdtempSync(path.join(outDir, '.build-'))
const run = (args) => {
  // The compiler's own output shows above the one-line summary only when it fails.
  const r = spawnSync(cc, args, { encoding: 'utf8' })
  if (r.error) throw new Error(`${cc}: ${r.error.code === 'ENOENT' ? 'no C compiler found (set CC or install gcc)' : r.error.message}`)
  if (r.status !== 0) {
    process.stderr.write(r.stderr)
    throw new Error(`${cc} failed compiling ${path.basename(args.at(-3) ?? '')} (exit ${r.status}, output above)`)
  }
}
try {
  const common = ['-O3', '-fPIC', '-std=gnu11', '-Wall', '-Wextra', ...(process.argv.includes('--werror') ? ['-Werror'] : []), ...(x86 ? ['-DSEFS_X86'] : [])]
  const kernels = x86 ? { generic: [], avx2: ['-mavx2'], avx512: ['-mavx512f', '-mavx512vl'] } : { generic: [] }
  const objects = []
  for (const [name, flags] of Object.entries(kernels)) {
    const obj = path.join(tmp, `kernel-${name}.o`)
    run([...common, ...flags, `-DKERNEL=sha3x4_${name}`, '-c', sources[0], '-o', obj])
    objects.push(obj)
  }
  if (x86) {
    const aes = path.join(tmp, 'aes.o')
    run([...common, '-maes', '-c', sources[1], '-o', aes])
    objects.push(aes)
  }
  // The Node-API glue and the functions it registers, compiled alike against Node's headers.
  for (const file of GLUE) {
    const obj = path.join(tmp, file.replace(/\.c$/, '.o'))
    run([...common, `-I${headers}`, '-c', path.join(srcDir, file), '-o', obj])
    objects.push(obj)
  }
  const linked = path.join(tmp, 'sha3x4.node')
  run(['-shared', '-o', linked, ...objects, '-lpthread', '-ldl'])
  // Load it in a fresh node before putting it in place: a build that does not load is no addon.
  const probe = spawnSync(process.execPath, ['-e', 'console.log(require(process.argv[1]).kernel)', linked], { encoding: 'utf8' })
  if (probe.status !== 0) throw new Error(`the built addon does not load: ${(probe.stderr.split('\n').find((l) => /Error/.test(l)) ?? probe.stderr).trim()}`)
  fs.renameSync(linked, target) // atomic: a running process keeps the file it loaded
  log(`built ${path.relative(root, target)} (${process.arch}; kernel on this CPU: ${probe.stdout.trim()})`)
} catch (err) {
  fs.rmSync(tmp, { recursive: true, force: true })
  fallback(err.message)
} finally {
  fs.rmSync(tmp, { recursive: true, force: true })
}
