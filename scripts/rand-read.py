#!/usr/bin/env python3
"""scripts/rand-read.py FILE N [SEED]: N preads of 4 KiB at random 4 KiB-aligned offsets of FILE; prints latency
percentiles (ms). Drop the page cache first for cold reads (sync; echo 3 > /proc/sys/vm/drop_caches).
A quick look at one mount; `npm run bench -- --cases seq,randread` is the side-by-side measurement."""
import os, random, sys, time

f = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(f).st_size
random.seed(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
lat = []
for _ in range(int(sys.argv[2])):
    off = random.randrange(0, size // 4096) * 4096
    t = time.perf_counter()
    os.pread(f, 4096, off)
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
pick = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))]
print("n %d p50 %.3f p90 %.3f p99 %.3f mean %.3f" % (len(lat), pick(0.5), pick(0.9), pick(0.99), sum(lat) / len(lat)))
