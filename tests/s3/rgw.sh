#!/bin/sh
# rgw.sh: a throw-away single-node Ceph cluster with a RADOS Gateway (S3) on
# loopback, for the S3 tests. No systemd, no root-owned paths: every file,
# socket, log and pid lives under DIR; every daemon binds 127.0.0.1 only.
#
#   sh tests/s3/rgw.sh start DIR        # mon + 1 OSD + radosgw, S3 user, bucket
#   sh tests/s3/rgw.sh stop DIR         # stops what start started, removes DIR
#   sh tests/s3/rgw.sh kill-rgw DIR     # SIGKILL radosgw (fault tests)
#   sh tests/s3/rgw.sh restart-rgw DIR  # radosgw back on the same port
#   sh tests/s3/rgw.sh logs DIR         # tail every daemon log
#
# After start, DIR/env holds plain KEY=value lines (source with set -a):
#   S3_ENDPOINT S3_REGION S3_BUCKET AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY RGW_PID
# (restart-rgw rewrites RGW_PID).
#
# Environment knobs:
#   RGW_STORE=memstore|bluestore   OSD object store (default memstore: data in
#                                  RAM, fastest; bluestore: sparse file
#                                  DIR/osd-block, for multi-GiB objects)
#   RGW_BLOCK_GB=64                bluestore sparse file size (GiB, sparse)
#   RGW_MEM_GB=8                   memstore capacity bound (GiB, RAM on use)
#   RGW_TIMEOUT=120                seconds before start gives up
#   RGW_BUCKET=mlreg-test          bucket created at start
#
# Cephx auth is on (cluster, service, client) and RGW checks every SigV4
# signature. Daemons are stopped by the pids this script recorded (and only
# after checking that the pid still runs a daemon of this DIR), never by name.
set -u

AWS=/usr/bin/aws
REGION=us-east-1
TIMEOUT=${RGW_TIMEOUT:-120}
STORE=${RGW_STORE:-memstore}
BUCKET=${RGW_BUCKET:-mlreg-test}

die() { echo "rgw.sh: $*" >&2; exit 1; }
log() { echo "rgw.sh: $*" >&2; }
now() { date +%s.%N | cut -c1-14; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

usage() { die "usage: rgw.sh start|stop|kill-rgw|restart-rgw|logs DIR"; }

[ $# -eq 2 ] || usage
CMD=$1
case $2 in /*) D=$2 ;; *) D=$(pwd)/$2 ;; esac
CONF=$D/ceph.conf

# ---------------------------------------------------------------- helpers ---

# free_port: a loopback TCP port nobody listens on, outside both the kernel's
# ephemeral range and Ceph's 6800-7300 messenger range.
free_port() {
    /usr/bin/python3 - <<'EOF'
import random, socket
for _ in range(200):
    p = random.randint(20000, 29999)
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    break
else:
    raise SystemExit("no free port")
EOF
}

# alive PID: the process exists and is not a zombie.
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ "$st" != Z ]
}

# ours NAME: pid from DIR/pids/NAME if that pid is alive and is a daemon
# started with this DIR's ceph.conf (guards against recycled pids).
ours() {
    f=$D/pids/$1
    [ -s "$f" ] || return 1
    pid=$(cat "$f")
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$CONF" || return 1
    echo "$pid"
}

# stop_daemon NAME SIGNAL GRACE_TENTHS: signal, wait, SIGKILL after grace.
stop_daemon() {
    pid=$(ours "$1") || { rm -f "$D/pids/$1"; return 0; }
    kill "-$2" "$pid" 2>/dev/null
    i=0
    while alive "$pid"; do
        i=$((i + 1))
        if [ $i -eq "$3" ]; then kill -KILL "$pid" 2>/dev/null; fi
        if [ $i -gt $(($3 + 50)) ]; then log "$1 (pid $pid) does not die"; return 1; fi
        sleep 0.1
    done
    rm -f "$D/pids/$1"
}

stop_all() {
    # The cluster is thrown away, so nothing needs a clean shutdown: radosgw
    # takes 4-9 s to exit on SIGTERM and a memstore OSD would dump all its
    # objects to disk on SIGTERM; both get SIGKILL. The mon exits in ~0.1 s.
    rc=0
    stop_daemon rgw KILL 1 || rc=1
    stop_daemon osd KILL 1 || rc=1
    stop_daemon mon TERM 30 || rc=1
    return $rc
}

show_logs() {
    for f in "$D"/log/*; do
        [ -f "$f" ] || continue
        echo "----- $f (last 40 lines)" >&2
        tail -n 40 "$f" >&2
    done
}

FAIL_STOPS=all
bpid=""
fail() {
    # first the helper command that bounded() may be running
    if [ -n "$bpid" ]; then kill -KILL "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null; bpid=""; fi
    log "FAILED: $*"
    show_logs
    if [ "$FAIL_STOPS" = all ]; then
        stop_all
        log "stopped every daemon of $D (logs kept there; 'rgw.sh stop $D' removes it)"
    else
        stop_daemon rgw KILL 1
        log "radosgw of $D stopped; mon and osd left for 'rgw.sh stop $D'"
    fi
    log "FAILED: $* (daemon logs above)"
    exit 1
}

past() { [ "$(awk -v d="$1" -v n="$(now)" 'BEGIN { print (n > d) }')" = 1 ]; }

# dead_daemon: prints the name of a daemon this script started that has
# exited since; false when all are running.
dead_daemon() {
    for n in mon osd rgw; do
        [ -s "$D/pids/$n" ] || continue
        ours "$n" >/dev/null || { echo "$n"; return 0; }
    done
    return 1
}

check_daemons() {
    n=$(dead_daemon) && fail "$n (pid $(cat "$D/pids/$n")) exited; see $D/log/$n.out and the $n log"
    return 0
}

# bounded WHAT LOGFILE CMD...: runs CMD (output to LOGFILE) while watching
# the daemons and the start deadline; fails on a non-zero exit, a daemon
# exit, or the deadline.
bounded() {
    what=$1; out=$2; shift 2
    "$@" </dev/null >>"$out" 2>&1 &
    bpid=$!
    while alive "$bpid"; do
        if past "$deadline"; then
            kill -KILL "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null
            fail "$what: no result within ${TIMEOUT}s of start"
        fi
        if dead_daemon >/dev/null; then
            kill -KILL "$bpid" 2>/dev/null; wait "$bpid" 2>/dev/null
            check_daemons
        fi
        sleep 0.1
    done
    wait "$bpid" || { bpid=""; tail -n 20 "$out" >&2; fail "$what failed (output in $out)"; }
    bpid=""
}

# spawn NAME CMD...: runs a Ceph daemon in the foreground (-f), as a
# background job of this script, detached from our stdio; records its pid.
spawn() {
    name=$1; shift
    "$@" </dev/null >>"$D/log/$name.out" 2>&1 &
    echo $! >"$D/pids/$name"
}

# aws_setup: environment for /usr/bin/aws (children of this script only):
# no config files of the user, no instance-metadata look-ups.
aws_setup() {
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
    AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION=$REGION AWS_PAGER=
    AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK
    export AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE AWS_EC2_METADATA_DISABLED \
        AWS_DEFAULT_REGION AWS_PAGER AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
}

# wait_http: until radosgw answers HTTP on its port (any status).
wait_http() {
    while :; do
        check_daemons
        code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$RGW_PORT/" 2>/dev/null)
        case $code in [234]??) return 0 ;; esac
        past "$deadline" && fail "radosgw did not answer on 127.0.0.1:$RGW_PORT within ${TIMEOUT}s"
        sleep 0.1
    done
}

start_rgw() {
    spawn rgw radosgw -f -c "$CONF" -n client.rgw.a \
        "--rgw-frontends=beast endpoint=127.0.0.1:$RGW_PORT"
}

write_env() {
    cat >"$D/env.tmp" <<EOF
S3_ENDPOINT=http://127.0.0.1:$RGW_PORT
S3_REGION=$REGION
S3_BUCKET=$BUCKET
AWS_ACCESS_KEY_ID=$AK
AWS_SECRET_ACCESS_KEY=$SK
RGW_PID=$(cat "$D/pids/rgw")
EOF
    mv "$D/env.tmp" "$D/env"
}

read_state() {
    [ -f "$D/state" ] || die "$D: no cluster here (rgw.sh start first)"
    . "$D/state"
}

# ------------------------------------------------------------------ start ---

do_start() {
    t0=$(now)
    deadline=$(awk -v t="$t0" -v s="$TIMEOUT" 'BEGIN { printf "%.2f", t + s }')
    for b in ceph-mon ceph-osd radosgw radosgw-admin ceph ceph-authtool monmaptool \
        /usr/bin/python3 curl; do
        command -v $b >/dev/null 2>&1 || die "$b not installed (run: make deps)"
    done
    [ -x "$AWS" ] || die "$AWS not installed (run: make deps)"
    case $STORE in memstore|bluestore) ;; *) die "RGW_STORE must be memstore or bluestore" ;; esac
    if [ -e "$D" ] && [ -n "$(ls -A "$D" 2>/dev/null)" ]; then die "$D exists and is not empty"; fi
    mkdir -p "$D/mon" "$D/osd" "$D/rgw" "$D/run" "$D/log" "$D/pids" "$D/crash" || die "cannot create $D"
    trap 'FAIL_STOPS=all; fail "interrupted"' INT TERM HUP

    MON_PORT=$(free_port) || die "no free port"
    RGW_PORT=$(free_port) || die "no free port"
    while [ "$RGW_PORT" = "$MON_PORT" ]; do RGW_PORT=$(free_port); done
    FSID=$(cat /proc/sys/kernel/random/uuid)
    OSD_UUID=$(cat /proc/sys/kernel/random/uuid)
    AK=$(tr -dc 'A-Z0-9' </dev/urandom | head -c 20)
    SK=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 40)
    cat >"$D/state" <<EOF
MON_PORT=$MON_PORT
RGW_PORT=$RGW_PORT
STORE=$STORE
BUCKET=$BUCKET
AK=$AK
SK=$SK
EOF

    if [ "$STORE" = bluestore ]; then
        store_conf="osd objectstore = bluestore
bluestore block path = $D/osd-block
bluestore block create = true
bluestore block size = $(( ${RGW_BLOCK_GB:-64} * 1024 * 1024 * 1024 ))
bluestore fsck on mount = false
bluestore fsck on mkfs = false
bdev enable discard = false
bluestore debug enforce settings = ssd
osd memory target = 1073741824
bluestore cache autotune = true"
    else
        store_conf="osd objectstore = memstore
memstore device bytes = $(( ${RGW_MEM_GB:-8} * 1024 * 1024 * 1024 ))"
    fi

    cat >"$CONF" <<EOF
# generated by tests/s3/rgw.sh: throw-away single-node cluster on loopback
[global]
fsid = $FSID
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
cluster addr = 127.0.0.1
public network = 127.0.0.0/8
ms bind msgr1 = false
ms bind ipv6 = false
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
keyring = $D/keyring
run dir = $D/run
admin socket = $D/run/\$name.asok
log file = $D/log/\$name.log
mon cluster log file = $D/log/cluster.log
crash dir = $D/crash
err to stderr = true
log to stderr = false
mon data = $D/mon
osd data = $D/osd
rgw data = $D/rgw
# one replica, tiny pools, no warnings that block anything
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon max pg per osd = 1000
mon pg warn min per osd = 0
# fast paxos: ~13 s -> ~3 s cluster start
paxos propose interval = 0.05
paxos min wait = 0.01
mon data avail warn = 1
mon data avail crit = 0

[osd]
osd crush update on start = true
osd crush initial weight = 1
osd op num shards = 2
osd op num threads per shard = 1
$store_conf

[client]
# a client that finds no OSD up re-asks for the osdmap on this tick (5 s by
# default): radosgw-admin starts before the OSD has booted
objecter tick interval = 0.5
rgw thread pool size = 32
rgw init timeout = $TIMEOUT
rgw dynamic resharding = false
rgw enable usage log = false
rgw enable ops log = false
rgw lc debug interval = -1
EOF

    # keys: mon., client.admin, osd.0 and client.rgw.a, all imported into the
    # mon's auth database by mkfs.
    K=$D/keyring
    {
        ceph-authtool --create-keyring "$K" --gen-key -n mon. --cap mon 'allow *' &&
        ceph-authtool "$K" --gen-key -n client.admin \
            --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' --cap mds 'allow *' &&
        ceph-authtool "$K" --gen-key -n osd.0 \
            --cap mon 'allow profile osd' --cap osd 'allow *' --cap mgr 'allow profile osd' &&
        ceph-authtool "$K" --gen-key -n client.rgw.a \
            --cap mon 'allow rw' --cap osd 'allow rwx' --cap mgr 'allow rw'
    } >"$D/log/mkfs.out" 2>&1 || fail "ceph-authtool"
    chmod 600 "$K"

    monmaptool --create --fsid "$FSID" --addv a "[v2:127.0.0.1:$MON_PORT]" \
        "$D/monmap" >>"$D/log/mkfs.out" 2>&1 || fail "monmaptool"
    bounded "ceph-mon --mkfs" "$D/log/mkfs.out" \
        ceph-mon -c "$CONF" --mkfs -i a --monmap "$D/monmap" --keyring "$K"
    spawn mon ceph-mon -f -c "$CONF" -i a

    # OSD mkfs is offline: do it while the mon comes up.
    bounded "ceph-osd --mkfs" "$D/log/mkfs.out" \
        ceph-osd -c "$CONF" -i 0 --mkfs --osd-uuid "$OSD_UUID" --no-mon-config
    t_mkfs=$(elapsed "$t0")

    # register osd.0 (its cephx key is already in the auth database)
    bounded "ceph osd create (mon on 127.0.0.1:$MON_PORT)" "$D/log/mkfs.out" \
        ceph -c "$CONF" osd create "$OSD_UUID" 0
    t_mon=$(elapsed "$t0")
    spawn osd ceph-osd -f -c "$CONF" -i 0

    # The S3 user, before radosgw starts: radosgw-admin waits for the OSD,
    # creates the default zonegroup/zone and their pools. Then the zonegroup's
    # api_name becomes us-east-1, so the region clients sign with, the
    # LocationConstraint RGW accepts and GetBucketLocation all agree.
    bounded "radosgw-admin user create" "$D/log/radosgw-admin.out" \
        radosgw-admin -c "$CONF" user create --uid=mlreg-test \
        --display-name="mlreg test" --access-key="$AK" --secret-key="$SK"
    bounded "radosgw-admin zonegroup modify --api-name=$REGION" "$D/log/radosgw-admin.out" \
        radosgw-admin -c "$CONF" zonegroup modify --rgw-zonegroup=default --api-name="$REGION"
    t_user=$(elapsed "$t0")

    start_rgw
    wait_http
    t_rgw=$(elapsed "$t0")

    aws_setup
    # the bucket, and a signed request that must pass SigV4 checking
    bounded "aws s3api create-bucket $BUCKET" "$D/log/aws.out" \
        "$AWS" --endpoint-url "http://127.0.0.1:$RGW_PORT" s3api create-bucket --bucket "$BUCKET"
    bounded "signed HeadBucket $BUCKET" "$D/log/aws.out" \
        "$AWS" --endpoint-url "http://127.0.0.1:$RGW_PORT" s3api head-bucket --bucket "$BUCKET"
    write_env
    trap - INT TERM HUP
    log "up in $(elapsed "$t0")s ($STORE; mkfs ${t_mkfs}s, mon ${t_mon}s, user ${t_user}s, radosgw answering ${t_rgw}s): S3 at http://127.0.0.1:$RGW_PORT bucket $BUCKET, env in $D/env"
}

# ----------------------------------------------------------------- others ---

do_stop() {
    [ -d "$D" ] || return 0
    [ -f "$CONF" ] || [ -d "$D/pids" ] || die "$D does not look like an rgw.sh dir; not removing it"
    t0=$(now)
    stop_all || die "could not stop every daemon; $D kept"
    rm -rf "$D"
    log "stopped in $(elapsed "$t0")s"
}

do_kill_rgw() {
    read_state
    ours rgw >/dev/null || die "radosgw of $D is not running"
    stop_daemon rgw KILL 1 || die "radosgw did not die"
    log "radosgw killed"
}

do_restart_rgw() {
    read_state
    t0=$(now)
    FAIL_STOPS=rgw
    aws_setup
    ours rgw >/dev/null && { stop_daemon rgw KILL 1 || die "old radosgw did not stop"; }
    rm -f "$D/pids/rgw"
    if ! ours mon >/dev/null || ! ours osd >/dev/null; then die "mon/osd of $D are not running"; fi
    deadline=$(awk -v t="$t0" -v s="$TIMEOUT" 'BEGIN { printf "%.2f", t + s }')
    start_rgw
    wait_http
    bounded "signed HeadBucket $BUCKET after restart" "$D/log/aws.out" \
        "$AWS" --endpoint-url "http://127.0.0.1:$RGW_PORT" s3api head-bucket --bucket "$BUCKET"
    write_env
    log "radosgw back on 127.0.0.1:$RGW_PORT in $(elapsed "$t0")s (pid $(cat "$D/pids/rgw"))"
}

case $CMD in
start) do_start ;;
stop) do_stop ;;
kill-rgw) do_kill_rgw ;;
restart-rgw) do_restart_rgw ;;
logs) show_logs 2>&1 ;;
*) usage ;;
esac
