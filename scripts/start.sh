#!/usr/bin/env bash
# npm start: build if needed, then mount the default vault ./vault at ./mnt (as a daemon).
# Override with SEFS_VAULT / SEFS_MNT. Unmount with: node dist/cli/main.js umount ./mnt
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VAULT=${SEFS_VAULT:-$ROOT/vault}
MNT=${SEFS_MNT:-$ROOT/mnt}
if [ ! -f dist/cli/main.js ] || [ -n "$(find src -newer dist/cli/main.js -name '*.ts' -print -quit)" ]; then
  npm run --silent build
fi
node dist/cli/main.js mount "$VAULT" "$MNT"
cat <<MSG

  sefs is serving the vault $VAULT at $MNT
  Files you put in $MNT are self-encrypted into $VAULT/chunks; $VAULT/meta holds their DataMaps.
  Try:      cp -a /usr/share/doc/bash $MNT/ && ls -l $MNT/bash
  Unmount:  node dist/cli/main.js umount $MNT
  Log:      $VAULT/sefs.log
MSG
