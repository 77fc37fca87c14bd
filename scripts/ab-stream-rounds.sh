#!/bin/bash
# scripts/ab-stream-rounds.sh N BUILD...: N rounds of streaming measurements (scripts/ab-stream.mjs) of each BUILD
# and gocryptfs, the order rotating each round (a run slows the next); one JSON line per run on stdout. Each round:
# a write of random.bin, cold reads of random.bin and text.txt, 1000 cold 4 KiB reads (sefs only). The sefs reads
# use the vault AB_SRC/v1 (scripts/ab-stream.mjs prep BUILD AB_SRC/v1 first), writes AB_SRC/w1; gocryptfs gets
# AB_SRC/gc.cipher (made here once, with both files) and a fresh cipher dir per write.
# AB_STEPS chooses the steps and their order (default "write read-random read-text rand"; also write-text, a write
# of text.txt): e.g. AB_STEPS="write write-text" for writes only, which need no prepared vault.
set -u
N=$1; shift; T=("$@" gocryptfs)
AB=${AB_SRC:-/var/tmp/srab}; HERE=$(dirname "$(readlink -f "$0")")
cd "$AB" || exit 1
mounted() { grep -q " $1 " /proc/mounts; }
gc_run() { # gc_run CIPHER MNT CMD cold|warm: CMD through a foreground gocryptfs (cold: page cache dropped first); prints "seconds cpu_ms"
  gocryptfs -fg -q -passfile gc.pass "$1" "$2" 2>/dev/null & local P=$!
  for _ in $(seq 50); do mounted "$AB/$2" && break; sleep 0.1; done
  [ "$4" = cold ] && { sync; echo 3 > /proc/sys/vm/drop_caches; }
  local t0=$(date +%s.%N); bash -c "$3"; local t1=$(date +%s.%N)
  local u s; read u s <<< "$(awk '{print $14, $15}' /proc/$P/stat)"
  fusermount -u "$2"; wait $P
  echo "$(echo "$t1 - $t0" | bc -l) $(( (u + s) * 10 ))"
}
gc_json() { # gc_json FILE WRITE(true|false) "seconds cpu"
  local secs cpu; read secs cpu <<< "$3"
  echo "{\"build\":\"gocryptfs\",\"file\":\"$1\",\"write\":$2,\"mbs\":$(echo "$(stat -c %s "$1") / 1000000 / $secs" | bc -l | cut -c1-6),\"cpu\":$cpu,\"load\":\"$(cut -d' ' -f1 /proc/loadavg)\"}"
}
[ -f gc.pass ] || echo pass > gc.pass
if [ ! -d gc.cipher ]; then
  mkdir -p gc.cipher gc.mnt && gocryptfs -init -q -passfile gc.pass gc.cipher >/dev/null 2>&1
  gc_run gc.cipher gc.mnt "dd if=random.bin of=gc.mnt/random.bin bs=1M conv=fsync 2>/dev/null; dd if=text.txt of=gc.mnt/text.txt bs=1M conv=fsync 2>/dev/null" warm >/dev/null
fi
for r in $(seq "$N"); do
  k=$(( (r - 1) % ${#T[@]} ))
  for step in ${AB_STEPS:-write read-random read-text rand}; do
    for i in $(seq 0 $(( ${#T[@]} - 1 ))); do
      t=${T[$(( (i + k) % ${#T[@]} ))]}
      case $step in
        write|write-text)
          f=random.bin; [ $step = write-text ] && f=text.txt
          if [ "$t" = gocryptfs ]; then
            rm -rf gcw.cipher; mkdir -p gcw.cipher gcw.mnt; gocryptfs -init -q -passfile gc.pass gcw.cipher >/dev/null 2>&1
            dd if=$f of=/dev/null bs=1M 2>/dev/null
            gc_json $f true "$(gc_run gcw.cipher gcw.mnt "dd if=$f of=gcw.mnt/$f bs=1M conv=fsync 2>/dev/null" warm)"
            rm -rf gcw.cipher
          else node "$HERE/ab-stream.mjs" write "$t" "$AB/w1" $f; fi ;;
        read-*)
          f=random.bin; [ $step = read-text ] && f=text.txt
          if [ "$t" = gocryptfs ]; then gc_json $f false "$(gc_run gc.cipher gc.mnt "dd if=gc.mnt/$f of=/dev/null bs=1M 2>/dev/null" cold)"
          else node "$HERE/ab-stream.mjs" read "$t" "$AB/v1" $f; fi ;;
        rand) [ "$t" = gocryptfs ] || node "$HERE/ab-stream.mjs" rand "$t" "$AB/v1" random.bin 1000 ;;
      esac
    done
  done
done
