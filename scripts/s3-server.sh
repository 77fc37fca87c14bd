#!/usr/bin/env bash
# A real S3 server for the tests and the benchmark: a single-node Ceph RADOS Gateway from Debian's packages
# (Ceph 16 "Pacific" on bookworm): 1 mon + 1 mgr + 1 BlueStore OSD on a sparse file + radosgw (beast), all
# on 127.0.0.1, one copy of the data, daemons run as user "ceph" (state in $S3_BASE). Adapted from the
# project-shared ../shared/s3/ceph-rgw-start.sh and -stop.sh (measured notes: native-notes/s3.md).
#
#   bash scripts/s3-server.sh start          install what is missing (root), bootstrap once, start what is not
#                                           running, wait until a signed S3 request succeeds (idempotent)
#   bash scripts/s3-server.sh stop           stop every daemon by its pid file (the data stays)
#   bash scripts/s3-server.sh stop-gateway   stop radosgw only (the tests' "server gone" case); start brings it back
#   bash scripts/s3-server.sh env            print the AWS_* settings for the running server (exit 1 if it is not)
#   bash scripts/s3-server.sh ensure         for the tests: nothing if a server answers, else start (marking it
#                                           as started by them); serialised with flock between test files
#   bash scripts/s3-server.sh stop-if-started  for the end of a test run: stop it if `ensure` started it in this
#                                            run (the same SEFS_S3_RUN)
#   bash scripts/s3-server.sh reset          stop, then remove $S3_BASE
# Env: S3_BASE (default $TMPDIR/sefs-rgw), S3_PORT (17480), OSD_SIZE_GB (20, sparse), OSD_MEMORY_TARGET (1 GiB).
set -euo pipefail

BASE=${S3_BASE:-${TMPDIR:-/tmp}/sefs-rgw}
S3_PORT=${S3_PORT:-17480}
OSD_SIZE_GB=${OSD_SIZE_GB:-20}
OSD_MEMORY_TARGET=${OSD_MEMORY_TARGET:-1073741824}
CONF=$BASE/ceph.conf
t0=$(date +%s.%N)
el() { awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%5.1fs", b-a}'; }
log() { echo "[s3-server $(el)] $*" >&2; }
die() { echo "[s3-server] ERROR: $*" >&2; [ -d "$BASE/log" ] && tail -n 15 "$BASE"/log/*.log >&2 2>/dev/null; exit 1; }
waitfor() { # seconds description command...
  local s=$1 d=$2; shift 2
  for _ in $(seq 1 $((s * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  die "timed out after ${s}s waiting for $d"
}
alive() { [ -f "$BASE/run/$1.pid" ] && kill -0 "$(cat "$BASE/run/$1.pid")" 2>/dev/null; }

stop_daemon() { # name
  local f=$BASE/run/$1.pid pid
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then log "$1 ($pid) still running after 30 s, sending KILL"; kill -KILL "$pid"; fi
    log "stopped $1 ($pid)"
  fi
  rm -f "$f"
}

s3_ok() { # a SigV4-signed ListBuckets must return 200
  # shellcheck disable=SC1091
  . "$BASE/credentials.env"
  [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' --aws-sigv4 aws:amz:us-east-1:s3 \
        --user "$S3_ACCESS_KEY_ID:$S3_SECRET_ACCESS_KEY" \
        -H 'x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' \
        "http://127.0.0.1:$S3_PORT/")" = 200 ]
}

print_env() {
  [ -f "$BASE/credentials.env" ] && s3_ok || die "no S3 server answering at 127.0.0.1:$S3_PORT (state $BASE): run bash scripts/s3-server.sh start (as root)"
  . "$BASE/credentials.env"
  echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$S3_PORT"
  echo "export AWS_REGION=us-east-1"
  echo "export AWS_ACCESS_KEY_ID=$S3_ACCESS_KEY_ID"
  echo "export AWS_SECRET_ACCESS_KEY=$S3_SECRET_ACCESS_KEY"
}

start() {
  # 1. packages (no recommends; no systemd in CI: nothing auto-starts) --------------------------
  local PKGS="ceph-mon ceph-mgr ceph-osd radosgw ceph-common uuid-runtime curl" missing="" p
  for p in $PKGS; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = 'install ok installed' ] || missing="$missing $p"
  done
  if [ -n "$missing" ]; then
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages:$missing (run as root: bash scripts/s3-server.sh start)"
    log "installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=900 update -qq
    # shellcheck disable=SC2086
    apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends $missing </dev/null >/dev/null
    log "packages installed"
  fi
  [ "$(id -u)" -eq 0 ] || die "the Ceph daemons are started as root (they drop to user ceph)"

  # 2. config (written once; the fsid identifies this cluster) ----------------------------------
  mkdir -p "$BASE"/{keyring,run,log,mon,mgr,osd,rgw}
  if [ ! -f "$CONF" ]; then
    cat > "$CONF.tmp" <<CONFEOF
[global]
fsid = $(uuidgen)
mon_host = [v2:127.0.0.1:13300,v1:127.0.0.1:16789]
public_addr = 127.0.0.1
cluster_addr = 127.0.0.1
ms_bind_ipv6 = false
ms_bind_port_min = 16800
ms_bind_port_max = 17300
auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
auth_allow_insecure_global_id_reclaim = false
keyring = $BASE/keyring/\$name.keyring
run_dir = $BASE/run
admin_socket = $BASE/run/\$name.asok
pid_file = $BASE/run/\$name.pid
log_file = $BASE/log/\$name.log
mon_cluster_log_file = $BASE/log/cluster.log
# one OSD holding one copy of everything
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
osd_pool_default_pg_autoscale_mode = off
osd_crush_chooseleaf_type = 0
mon_data_avail_warn = 10

[mon]
mon_data = $BASE/mon/\$cluster-\$id
keyring = \$mon_data/keyring

[mgr]
mgr_data = $BASE/mgr/\$cluster-\$id
keyring = \$mgr_data/keyring

[osd]
osd_data = $BASE/osd/\$cluster-\$id
keyring = \$osd_data/keyring
osd_objectstore = bluestore
bluestore_block_create = true
bluestore_block_size = $((OSD_SIZE_GB * 1024 * 1024 * 1024))
osd_memory_target = $OSD_MEMORY_TARGET

[client.rgw.a]
# tcp_nodelay=1: without it small GETs wait on delayed ACKs (~45 ms p50 instead of ~2-4 ms)
rgw_frontends = beast endpoint=127.0.0.1:$S3_PORT tcp_nodelay=1
rgw_data = $BASE/rgw
CONFEOF
    mv "$CONF.tmp" "$CONF"
  fi
  chown -R ceph:ceph "$BASE"
  local RUNAS=(--setuser ceph --setgroup ceph) C=(ceph -c "$CONF" --connect-timeout 10)

  # 3. monitor ------------------------------------------------------------------------------------
  if [ ! -f "$BASE/mon/ceph-a/keyring" ]; then
    ceph-authtool --create-keyring "$BASE/keyring/mon.keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    ceph-authtool --create-keyring "$BASE/keyring/client.admin.keyring" --gen-key -n client.admin \
      --cap mon 'allow *' --cap osd 'allow *' --cap mds 'allow *' --cap mgr 'allow *' >/dev/null
    ceph-authtool "$BASE/keyring/mon.keyring" --import-keyring "$BASE/keyring/client.admin.keyring" >/dev/null
    monmaptool --create --fsid "$(awk '$1=="fsid"{print $3}' "$CONF")" \
      --addv a '[v2:127.0.0.1:13300,v1:127.0.0.1:16789]' "$BASE/monmap" >/dev/null
    chown -R ceph:ceph "$BASE"
    ceph-mon -c "$CONF" "${RUNAS[@]}" --mkfs -i a --monmap "$BASE/monmap" --keyring "$BASE/keyring/mon.keyring"
    log "mon created"
  fi
  alive mon.a || ceph-mon -c "$CONF" "${RUNAS[@]}" -i a
  waitfor 60 "mon quorum" "${C[@]}" quorum_status

  # 4. manager ------------------------------------------------------------------------------------
  if [ ! -f "$BASE/mgr/ceph-x/keyring" ]; then
    mkdir -p "$BASE/mgr/ceph-x"
    "${C[@]}" auth get-or-create mgr.x mon 'allow profile mgr' osd 'allow *' mds 'allow *' -o "$BASE/mgr/ceph-x/keyring"
    chown -R ceph:ceph "$BASE/mgr"
  fi
  alive mgr.x || ceph-mgr -c "$CONF" "${RUNAS[@]}" -i x

  # 5. OSD 0: BlueStore on a sparse file ----------------------------------------------------------
  if [ ! -f "$BASE/osd/ceph-0/keyring" ]; then
    local uuid id
    uuid=$(uuidgen)
    id=$("${C[@]}" osd new "$uuid")
    [ "$id" = 0 ] || die "expected osd id 0, got $id (half-finished bootstrap? bash scripts/s3-server.sh reset, then start)"
    mkdir -p "$BASE/osd/ceph-0"
    ceph-authtool --create-keyring "$BASE/osd/ceph-0/keyring" --gen-key -n osd.0 >/dev/null
    "${C[@]}" auth add osd.0 osd 'allow *' mon 'allow profile osd' mgr 'allow profile osd' -i "$BASE/osd/ceph-0/keyring" >/dev/null 2>&1
    chown -R ceph:ceph "$BASE/osd"
    ceph-osd -c "$CONF" "${RUNAS[@]}" -i 0 --mkfs --osd-uuid "$uuid" >"$BASE/log/osd-mkfs.out" 2>&1 \
      || die "ceph-osd --mkfs failed: $(tail -3 "$BASE/log/osd-mkfs.out")"
    log "osd.0 created (${OSD_SIZE_GB} GiB sparse file)"
  fi
  alive osd.0 || ceph-osd -c "$CONF" "${RUNAS[@]}" -i 0 >/dev/null 2>&1
  osd_up() { "${C[@]}" osd dump | grep -q '^osd\.0 up'; }
  waitfor 120 "osd.0 up" osd_up

  # 6. radosgw + S3 user --------------------------------------------------------------------------
  if [ ! -f "$BASE/keyring/client.rgw.a.keyring" ]; then
    "${C[@]}" auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' mgr 'allow rw' -o "$BASE/keyring/client.rgw.a.keyring"
    chown ceph:ceph "$BASE/keyring/client.rgw.a.keyring"
  fi
  alive client.rgw.a || radosgw -c "$CONF" "${RUNAS[@]}" -n client.rgw.a
  waitfor 120 "radosgw on 127.0.0.1:$S3_PORT" curl -s -m 2 -o /dev/null "http://127.0.0.1:$S3_PORT/"
  if [ ! -f "$BASE/credentials.env" ]; then
    local ak sk
    ak=$(head -c 10 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr a-f A-F)
    sk=$(head -c 30 /dev/urandom | base64 | tr -d '/+=' | head -c 40)
    radosgw-admin -c "$CONF" user create --uid=chunks --display-name="chunk store" --access-key="$ak" --secret-key="$sk" >/dev/null
    ( umask 077; printf 'S3_ENDPOINT=http://127.0.0.1:%s\nS3_REGION=us-east-1\nS3_ACCESS_KEY_ID=%s\nS3_SECRET_ACCESS_KEY=%s\n' "$S3_PORT" "$ak" "$sk" > "$BASE/credentials.env.tmp" )
    mv "$BASE/credentials.env.tmp" "$BASE/credentials.env"
    log "S3 user created"
  fi
  waitfor 60 "a signed S3 ListBuckets" s3_ok
  log "ready at http://127.0.0.1:$S3_PORT (state $BASE; settings: bash scripts/s3-server.sh env)"
}

case "${1:-}" in
  start) start ;;
  ensure)
    mkdir -p "$BASE"
    exec 9>"$BASE/ensure.lock"
    flock 9
    if ! { [ -f "$BASE/credentials.env" ] && s3_ok; } 2>/dev/null; then
      # fd 9 closed for the daemons: one that inherited it would hold the lock for as long as it runs.
      start 9>&-
      # Which test run started it ($SEFS_S3_RUN, set by test/global-setup.ts): only that run's end stops it, not
      # another run's on the same machine.
      echo "${SEFS_S3_RUN:-}" > "$BASE/started-by-tests"
    fi ;;
  stop-if-started)
    if [ -f "$BASE/started-by-tests" ] && [ "$(cat "$BASE/started-by-tests")" = "${SEFS_S3_RUN:-}" ]; then
      for n in client.rgw.a osd.0 mgr.x mon.a; do stop_daemon "$n"; done
      rm -f "$BASE/started-by-tests"
    fi ;;
  stop) for n in client.rgw.a osd.0 mgr.x mon.a; do stop_daemon "$n"; done ;;
  stop-gateway) stop_daemon client.rgw.a ;;
  env) print_env ;;
  reset) for n in client.rgw.a osd.0 mgr.x mon.a; do stop_daemon "$n"; done; rm -rf "$BASE" ;;
  *) echo "usage: bash scripts/s3-server.sh start|stop|stop-gateway|env|ensure|stop-if-started|reset" >&2; exit 2 ;;
esac
