#!/usr/bin/env bash
# sefs machine setup for a fresh Debian (bookworm or later) machine. Idempotent; non-interactive.
#
#   sudo bash scripts/setup.sh        (as root; CI=true and no stdin are fine)
#
# 1. installs the missing Debian packages (apt-get update only if something is missing):
#      FUSE runtime  libfuse2 fuse        (fuse is skipped if a fusermount already exists, e.g. from fuse3)
#      baseline      gocryptfs
#      test tools    rsync sqlite3 git time zsh attr (zsh: test/completion.test.ts parses the zsh completion;
#                    attr: setfattr/getfattr in test/fuse/posix-nodes.test.ts)
#      native build  python3 make g++
#      power-loss    gcc (cc: test/power-loss.test.ts compiles its LD_PRELOAD shim)
#      S3 tests      ceph-mon ceph-mgr ceph-osd radosgw ceph-common uuid-runtime curl (a single-node Ceph
#                    radosgw that scripts/s3-server.sh starts: the S3 tests start it when none answers)
#    Without root it prints the exact apt-get command and exits 1.
# 2. makes sure /dev/fuse exists and opens (mknod c 10 229 as root), else fails: FUSE unavailable.
# 3. npm ci (npm install if there is no package-lock.json), skipped when node_modules already matches
#    package-lock.json (a stamp written after the install); the postinstall patches fuse-native and
#    builds build/Release/fuse.node (scripts/patch-fuse-native.mjs, native-notes/fuse-native-patch.md).
# 4. prints a summary.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say () { printf '[setup] %s\n' "$*"; }
die () { printf '\n[setup] ERROR: %s\n\n' "$*" >&2; exit 1; }
IS_ROOT=0; [ "$(id -u)" -eq 0 ] && IS_ROOT=1

command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian/Ubuntu. Install by hand: libfuse2 fuse gocryptfs rsync sqlite3 git time strace python3 make g++ gcc zsh attr util-linux-extra (fincore), and for the S3 tests ceph-mon ceph-mgr ceph-osd radosgw ceph-common uuid-runtime curl (and Node >= 20 with npm)."

# --- 1. Debian packages ---------------------------------------------------------------------
# (no `cmd | grep -q` here: with pipefail an early grep exit can turn into a false "missing")
installed () { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = 'install ok installed' ]; }
has_candidate () { local out; out=$(apt-cache policy "$1" 2>/dev/null); [[ $out == *'Candidate: '[0-9]* ]]; }

want=()
# libfuse.so.2: package libfuse2 (bookworm) or libfuse2t64 (trixie and later)
installed libfuse2 || installed libfuse2t64 || want+=(libfuse2)
# fusermount (for unmount): package fuse; fuse3 also ships a fusermount and conflicts with fuse
command -v fusermount >/dev/null || installed fuse || want+=(fuse)
for p in gocryptfs rsync sqlite3 git time strace python3 make g++ gcc zsh attr util-linux-extra ceph-mon ceph-mgr ceph-osd radosgw ceph-common uuid-runtime curl; do installed "$p" || want+=("$p"); done

if [ ${#want[@]} -gt 0 ]; then
  if [ $IS_ROOT -ne 1 ]; then
    die "missing Debian packages: ${want[*]}
Run as root:  apt-get update && apt-get install -y --no-install-recommends ${want[*]}
(or re-run this script as root: sudo bash scripts/setup.sh)"
  fi
  say "installing: ${want[*]}"
  apt-get -o DPkg::Lock::Timeout=300 update -q || die "apt-get update failed (output above)"
  pkgs=()
  for p in "${want[@]}"; do
    if [ "$p" = libfuse2 ] && ! has_candidate libfuse2 && has_candidate libfuse2t64; then p=libfuse2t64; fi
    pkgs+=("$p")
  done
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${pkgs[@]}" </dev/null ||
    die "apt-get install ${pkgs[*]} failed (output above)"
else
  say "Debian packages: all present"
fi

# --- 2. /dev/fuse -------------------------------------------------------------------------------
if [ ! -c /dev/fuse ]; then
  [ $IS_ROOT -eq 1 ] || die "/dev/fuse is missing and we are not root: FUSE is unavailable (as root: mknod -m 0666 /dev/fuse c 10 229)"
  modprobe fuse 2>/dev/null || true
  [ -c /dev/fuse ] || mknod -m 0666 /dev/fuse c 10 229 || die "cannot create /dev/fuse (mknod c 10 229 failed): FUSE is unavailable on this machine/container"
  say "created /dev/fuse"
fi
# A container can have the node but no access to it (device cgroup): opening it is the real test.
if [ $IS_ROOT -eq 1 ]; then
  (exec 3<>/dev/fuse) 2>/dev/null || die "/dev/fuse exists but cannot be opened: FUSE is unavailable here (containers need --device /dev/fuse --cap-add SYS_ADMIN)"
elif ! [ -r /dev/fuse ] || ! [ -w /dev/fuse ]; then
  say "note: /dev/fuse is not read/writable by $(id -un); mounting as this user relies on the setuid fusermount"
fi

# --- 3. node modules (+ patched fuse-native via postinstall) ----------------------------------------
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are required (Node >= 20)"
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || die "Node >= 20 required, found $(node -v)"
cd "$ROOT"
# npm ci only when node_modules was not installed from this package-lock.json by this Node (a stamp of both,
# written after a successful install): a second run costs nothing.
stamp=node_modules/.sefs-install-stamp
want_stamp="$( { cat package.json package-lock.json 2>/dev/null; node -v; } | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
  say "node_modules: up to date with package-lock.json (npm ci skipped)"
elif [ -f package-lock.json ]; then
  say "npm ci"
  npmlog=$(mktemp)
  if npm ci --no-audit --no-fund >"$npmlog" 2>&1; then
    grep -v '^gyp info' "$npmlog" || true
  elif grep -q 'can only install packages when your package.json and package-lock.json' "$npmlog"; then
    grep -E '^npm error (code|`npm ci`|Missing)' "$npmlog" | head -n 6
    say "WARNING: npm ci refused: package-lock.json is out of sync with package.json (lines above)."
    say "         Falling back to: npm install --no-save (the lock file is used but not modified)."
    say "         Fix for good: regenerate package-lock.json with npm install and commit it."
    npm install --no-save --no-audit --no-fund
  else
    cat "$npmlog"; rm -f "$npmlog"
    die "npm ci failed (output above)"
  fi
  rm -f "$npmlog"
  echo "$want_stamp" >"$stamp"
else
  say "npm install (no package-lock.json)"
  npm install --no-audit --no-fund
fi
# The postinstall has run unless scripts were disabled (npm_config_ignore_scripts); each is a quick check when
# already done (the patch level and the loaded addon; the addon's sources against its build).
node scripts/patch-fuse-native.mjs
node scripts/build-native.mjs

# --- 4. summary -----------------------------------------------------------------------------------
ver () { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo '-'; }
libfuse=$(ver libfuse2); [ "$libfuse" = - ] && libfuse="$(ver libfuse2t64) (libfuse2t64)"
say "summary:"
say "  node $(node -v), npm $(npm -v 2>/dev/null)"
say "  libfuse2 $libfuse; fusermount $(command -v fusermount || echo MISSING); /dev/fuse ok"
say "  ceph (radosgw for the S3 tests: bash scripts/s3-server.sh start) $(ver radosgw)"
say "  gocryptfs $(ver gocryptfs); rsync $(ver rsync); sqlite3 $(ver sqlite3); git $(ver git); time $(ver time)"
say "  fuse-native: $(node scripts/patch-fuse-native.mjs --check 2>&1 | sed 's/^\[patch-fuse-native\] //' || true)"
say "  native addon: $(node -e "try { console.log(require('./dist/native/sha3x4.node').kernel) } catch { console.log('MISSING: no C compiler or no node_api.h; sefs runs on OpenSSL, test/native.test.ts fails') }")"
