#!/usr/bin/env bash
# Run pjdfstest (github:pjd/pjdfstest, the POSIX conformance suite; build it yourself, outside this repo:
# autoreconf -ifs && ./configure && make pjdfstest) against a mount, and report its counts.
#
#   scripts/pjdfstest.sh PJDFSTEST_DIR [--mount DIR] [--seal] [--log FILE] [TEST...]
#
# PJDFSTEST_DIR is the built checkout (holding the pjdfstest binary and tests/). TEST: directories or files
# under tests/ (truncate, open/03.t); all of them by default. Without --mount a fresh sefs vault is made in a
# temp directory and mounted with --allow-other (pjdfstest switches users: run this as root), and the mount,
# the daemon and the vault are removed at the end. With --mount DIR the tests run in a new directory inside DIR
# (any filesystem: gocryptfs for a comparison), which is removed afterwards.
#
# Keeps prove's verbose output (each failing test with the errno it got) in the log (--log, default
# /tmp/pjdfstest-TIME.log), and prints: files passed/total, tests passed/total, tests planned but never run (a
# test file that died), and each failing file with its failing test numbers. Exit 0 when everything passed.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

usage() {
  awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"
  exit 2
}

[ $# -ge 1 ] || usage
PJD="$(cd "$1" && pwd)" || usage
shift
MOUNT=""
SEAL=0
LOG=""
TESTS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --mount) MOUNT="$2"; shift 2 ;;
    --seal) SEAL=1; shift ;;
    --log) LOG="$2"; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "pjdfstest.sh: unknown option $1" >&2; usage ;;
    *) TESTS+=("$PJD/tests/$1"); shift ;;
  esac
done
[ ${#TESTS[@]} -gt 0 ] || TESTS=("$PJD/tests")
[ -x "$PJD/pjdfstest" ] || { echo "pjdfstest.sh: $PJD/pjdfstest is not built (autoreconf -ifs && ./configure && make pjdfstest)" >&2; exit 2; }
command -v prove >/dev/null || { echo "pjdfstest.sh: prove is missing (Debian package perl)" >&2; exit 2; }

SCRATCH=""
SEFS_MNT=""
WORK=""
cleanup() {
  [ -n "$WORK" ] && rm -rf "$WORK" 2>/dev/null
  if [ -n "$SEFS_MNT" ]; then
    node "$REPO/dist/cli/main.js" umount "$SEFS_MNT" >/dev/null 2>&1 || fusermount -u "$SEFS_MNT" 2>/dev/null
  fi
  [ -n "$SCRATCH" ] && rm -rf "$SCRATCH"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ -z "$MOUNT" ]; then
  [ "$(id -u)" = 0 ] || { echo "pjdfstest.sh: run as root (pjdfstest changes users; the mount needs --allow-other)" >&2; exit 2; }
  [ -f "$REPO/dist/cli/main.js" ] || { echo "pjdfstest.sh: build sefs first (npm run build)" >&2; exit 2; }
  SCRATCH="$(mktemp -d /tmp/sefs-pjdfstest.XXXXXX)"
  SEAL_ARGS=()
  INIT_ARGS=()
  if [ "$SEAL" = 1 ]; then
    printf 'pjdfstest' >"$SCRATCH/pass"
    SEAL_ARGS=(--passphrase-file "$SCRATCH/pass")
    INIT_ARGS=(--passphrase-file "$SCRATCH/pass" --scrypt-log-n 10)
  fi
  node "$REPO/dist/cli/main.js" init "$SCRATCH/vault" "${INIT_ARGS[@]}" >/dev/null || exit 1
  node "$REPO/dist/cli/main.js" mount "$SCRATCH/vault" "$SCRATCH/mnt" --allow-other "${SEAL_ARGS[@]}" || exit 1
  SEFS_MNT="$SCRATCH/mnt"
  MOUNT="$SEFS_MNT"
fi

WORK="$(mktemp -d "$MOUNT/pjdfstest.XXXXXX")" || exit 1
chmod 0755 "$WORK"
[ -n "$LOG" ] || LOG="/tmp/pjdfstest-$(date +%s).log"
echo "pjdfstest.sh: running in $WORK, prove's output in $LOG" >&2
(cd "$WORK" && prove -rv "${TESTS[@]}") >"$LOG" 2>&1
STATUS=$?

# prove's closing report: "Files=N, Tests=M", and per file worth a note "PATH (Wstat: W Tests: R Failed: F)",
# "Failed tests: LIST", "Parse errors: Bad plan.  You planned P tests but ran R." (a file noted only for
# "TODO passed" did not fail).
awk -v root="$PJD/tests/" '
  /^Files=[0-9]+, Tests=[0-9]+/ { split($0, a, /[=,]/); files = a[2]; tests = a[4] }
  /^Test Summary Report/ { summary = 1; next }
  summary && /\(Wstat: / {
    name = $1; sub(root, "", name)
    match($0, /Failed: [0-9]+/); f = substr($0, RSTART + 8, RLENGTH - 8); failed += f
    match($0, /Wstat: [0-9]+/); w = substr($0, RSTART + 7, RLENGTH - 7)
    if (f > 0 || w > 0) order[++nfailed] = name
    detail[name] = ""
    next
  }
  summary && /Failed tests?:/ { line = $0; sub(/.*Failed tests?: */, "", line); detail[name] = detail[name] " failed " line; next }
  summary && /You planned [0-9]+ tests? but ran [0-9]+/ {
    match($0, /planned [0-9]+/); p = substr($0, RSTART + 8, RLENGTH - 8)
    match($0, /ran [0-9]+/); r = substr($0, RSTART + 4, RLENGTH - 4)
    unrun += p - r; detail[name] = detail[name] " (ran " r " of " p ")"
    if (order[nfailed] != name) order[++nfailed] = name
    next
  }
  summary && /Non-zero (exit|wait) status/ { line = $0; sub(/^ */, "", line); detail[name] = detail[name] " [" line "]"; next }
  END {
    if (files == "") { print "pjdfstest.sh: no summary in prove output"; exit 1 }
    printf "files passed %d/%d, tests passed %d/%d, tests planned but not run %d\n", files - nfailed, files, tests - failed, tests, unrun
    for (i = 1; i <= nfailed; i++) printf "  %s:%s\n", order[i], detail[order[i]]
  }
' "$LOG" || exit 1
exit $STATUS
