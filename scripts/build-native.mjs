#!/usr/bin/env node
// Build the native addon (src/core/native: four-way SHA3-256, the pad XOR, four-stream AES-128-CBC encryption)
// into dist/native/sha3x4.node with the system C compiler and Node's own headers: no node-gyp, no download.
// The SHA3 kernel is compiled three times (generic, AVX2, AVX-512VL) and the addon picks one at load time by
// CPU; the AES code needs AES-NI and is offered only where the CPU has it. Runs from "postinstall" and "build".
// A machine without a compiler or headers gets a warning and sefs uses OpenSSL's SHA3 (same results, slower).
//
//   node scripts/build-native.mjs            build if the sources are newer than the addon
//   node scripts/build-native.mjs --force    always build
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const srcDir = path.join(root, 'src', 'core', 'native')
const outDir = path.join(root, 'dist', 'native')
const target = path.join(outDir, 'sha3x4.node')
const sources = ['sha3x4-kernel.c', 'sha3x4-addon.c', 'aes-cbc-x4.c'].map((f) => path.join(srcDir, f))
const log = (msg) => console.log(`[build-native] ${msg}`)

const headerDirs = [path.join(path.dirname(process.execPath), '..', 'include', 'node'), '/usr/include/node', '/usr/local/include/node']
const headers = headerDirs.find((d) => fs.existsSync(path.join(d, 'node_api.h')))
const cc = process.env.CC || 'cc'

const upToDate = () =>
  fs.existsSync(target) && sources.every((s) => fs.statSync(s).mtimeMs <= fs.statSync(target).mtimeMs)

if (!process.argv.includes('--force') && upToDate()) {
  log(`${path.relative(root, target)} is up to date`)
  process.exit(0)
}
if (!headers) {
  log(`WARNING: node_api.h not found (looked in ${headerDirs.join(', ')}); sefs will hash with OpenSSL only`)
  process.exit(0)
}

fs.mkdirSync(outDir, { recursive: true })
const tmp = fs.mkdtempSync(path.join(outDir, '.build-'))
const run = (args) => {
  const r = spawnSync(cc, args, { stdio: 'inherit' })
  if (r.status !== 0) throw new Error(`${cc} ${args.join(' ')} failed (${r.error?.message ?? `exit ${r.status}`})`)
}
try {
  const common = ['-O3', '-fPIC', '-std=gnu11', '-Wall', '-Wextra', '-Werror']
  const kernels = { generic: [], avx2: ['-mavx2'], avx512: ['-mavx512f', '-mavx512vl'] }
  const objects = []
  for (const [name, flags] of Object.entries(kernels)) {
    const obj = path.join(tmp, `kernel-${name}.o`)
    run([...common, ...flags, `-DKERNEL=sha3x4_${name}`, '-c', sources[0], '-o', obj])
    objects.push(obj)
  }
  const aes = path.join(tmp, 'aes.o')
  run([...common, '-maes', '-c', sources[2], '-o', aes])
  objects.push(aes)
  const addon = path.join(tmp, 'addon.o')
  run([...common, `-I${headers}`, '-c', sources[1], '-o', addon])
  const linked = path.join(tmp, 'sha3x4.node')
  run(['-shared', '-o', linked, addon, ...objects, '-lpthread'])
  fs.renameSync(linked, target) // atomic: a running process keeps the file it loaded
  log(`built ${path.relative(root, target)}`)
} catch (err) {
  log(`WARNING: ${err.message}; sefs will hash with OpenSSL only`)
} finally {
  fs.rmSync(tmp, { recursive: true, force: true })
}
