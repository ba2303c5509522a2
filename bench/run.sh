#!/usr/bin/env bash
# bench/run.sh: tracegate against nginx on loopback (issue 5). See bench/README.
#
#   bench/run.sh                 full run: workers 1 and 2, 3 interleaved runs of 10 s after 2 s warm-up
#   bench/run.sh --quick         smoke run: workers 1, 1 run of 2 s, 100 MB streams, 1k idle connections
#   bench/run.sh --help          all options
#
# Installs nothing. Starts only loopback servers on free ports, stops them (by PID) when it ends,
# and every step is bounded in time. Results: bench/results/<date>/ (summary.md + raw .tsv files).
set -u -o pipefail
export LC_ALL=C

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
LIB=$BENCH/lib

ALL_TARGETS="direct nginx-plain nginx-traceid tracegate-off tracegate tracegate-10 tracegate-1 tracegate-deadsink"
ALL_SCENARIOS="c1 c50 c256 c50-4k close50"
IDLE_TARGETS_DEFAULT="nginx-plain nginx-traceid tracegate-off tracegate"

DURATION=10 WARMUP=2 RUNS=3 WORKERS="1 2"
TARGETS=$ALL_TARGETS SCENARIOS=$ALL_SCENARIOS
STREAM_MB=1024 IDLE_NS="1000 10000" IDLE_TARGETS=$IDLE_TARGETS_DEFAULT
PHASES="exporter stream idle load"
TRACEGATE=$ROOT/objs/tracegate
OTLP_BENCH=$ROOT/objs/tests/tools/otlp_bench
EXPORT_SPANS=1000000
OUT=""
QUICK=0
WAIT_QUIET=0          # --wait-quiet S: wait up to S seconds for the machine to be idle (before starting and
OTHER_MAX=10          #   before repeating a load run in which other work took more than OTHER_MAX % of the servers' CPU;
QUIET_SPENT=0         #   the repeats and their waits stop once they have cost 3 x S seconds in all)
SPAN_WAIT=30          # max seconds to wait for the exporter to deliver a run's spans to the sink

usage() {
    cat <<EOF
usage: bench/run.sh [options]
  --quick               smoke run: --workers 1 --runs 1 --duration 2 --warmup 1 --stream-mb 100 --idle 1000
                        --export-spans 200000
  -d, --duration S      seconds of each measured wrk run (default $DURATION)
  -w, --warmup S        seconds of wrk warm-up before each measured run (default $WARMUP)
  -r, --runs N          interleaved runs per target and scenario (default $RUNS)
  --workers LIST        proxy worker counts, comma-separated (default 1,2)
  --targets LIST        subset of: ${ALL_TARGETS// /,}
  --scenarios LIST      subset of: ${ALL_SCENARIOS// /,}
  --phases LIST         subset of: exporter,stream,idle,load (default all)
  --export-spans N      spans pushed through one exporter thread per exporter run (default $EXPORT_SPANS)
  --stream-mb N         size of the streamed upload and download, MiB (default $STREAM_MB)
  --idle LIST           idle keep-alive connection counts (default 1000,10000)
  --idle-targets LIST   targets of the idle test (default ${IDLE_TARGETS_DEFAULT// /,})
  --tracegate PATH      the binary (default objs/tracegate)
  --wait-quiet S        wait up to S seconds until the machine is idle (< 10% CPU busy over 3 s) before
                        starting, and repeat (twice at most, after a wait of up to 60 s) a load run in
                        which other work took more than 10% of the servers' CPU; repeats stop once they
                        have cost 3 x S seconds in all
  --out DIR             results directory (default bench/results/<date>)
Scenarios: c1, c50, c256 = 1/50/256 keep-alive connections on GET /2b (2-byte body);
  c50-4k = 50 connections on GET /4k (4 KiB body); close50 = 50 concurrent, Connection: close.
EOF
}

csv() { echo "${1//,/ }"; }
while [ $# -gt 0 ]; do
    case $1 in
    --quick) QUICK=1; WORKERS=1; RUNS=1; DURATION=2; WARMUP=1; STREAM_MB=100; IDLE_NS=1000; EXPORT_SPANS=200000 ;;
    -d|--duration) DURATION=$2; shift ;;
    -w|--warmup) WARMUP=$2; shift ;;
    -r|--runs) RUNS=$2; shift ;;
    --workers) WORKERS=$(csv "$2"); shift ;;
    --targets) TARGETS=$(csv "$2"); shift ;;
    --scenarios) SCENARIOS=$(csv "$2"); shift ;;
    --phases) PHASES=$(csv "$2"); shift ;;
    --stream-mb) STREAM_MB=$2; shift ;;
    --export-spans) EXPORT_SPANS=$2; shift ;;
    --wait-quiet) WAIT_QUIET=$2; shift ;;
    --idle) IDLE_NS=$(csv "$2"); shift ;;
    --idle-targets) IDLE_TARGETS=$(csv "$2"); shift ;;
    --tracegate) TRACEGATE=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
for t in $TARGETS; do case " $ALL_TARGETS " in *" $t "*) ;; *) echo "run.sh: unknown target $t" >&2; exit 2 ;; esac; done
for s in $SCENARIOS; do case " $ALL_SCENARIOS " in *" $s "*) ;; *) echo "run.sh: unknown scenario $s" >&2; exit 2 ;; esac; done
has_phase() { case " $PHASES " in *" $1 "*) return 0 ;; esac; return 1; }

# OTEL_* variables fill what a tracegate config leaves unset: keep the targets as written
for v in $(compgen -e | grep '^OTEL_'); do unset "$v"; done

# ---- what this needs, and nothing is installed here ----------------------------------------
missing=""
need() {   # need COMMAND DEBIAN-PACKAGE
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || missing="$missing
  $1  (Debian package: $2)"
}
need wrk wrk
need nginx "nginx-light, or nginx"
need taskset util-linux
need curl curl
need perl perl
need cc gcc
need getconf libc-bin
need timeout coreutils
need truncate coreutils
if [ -n "$missing" ]; then
    echo "bench/run.sh: missing tools; nothing was installed:$missing" >&2
    echo "install them with e.g.: apt-get install wrk nginx-light util-linux curl perl gcc" >&2
    exit 2
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
ZLIB=0
[ -r /usr/include/zlib.h ] && ZLIB=1

# ---- layout ----------------------------------------------------------------------------------
NCPU=$(getconf _NPROCESSORS_ONLN)
if [ "$NCPU" -ge 2 ]; then
    CLIENT_CPU=0 SERVER_CPU=1
    LAYOUT="wrk and the other clients (curl, idle client) and the OTLP sinks pinned to CPU 0; the proxy under test and the upstream nginx pinned to CPU 1 (taskset)"
else
    CLIENT_CPU="" SERVER_CPU=""
    LAYOUT="only $NCPU CPU online: nothing pinned, client and servers share it"
fi
on_client() { if [ -n "$CLIENT_CPU" ]; then taskset -c "$CLIENT_CPU" "$@"; else "$@"; fi; }
on_server() { if [ -n "$SERVER_CPU" ]; then taskset -c "$SERVER_CPU" "$@"; else "$@"; fi; }
# the script itself and its helpers (procstat, curl, awk) stay off the servers' CPU
[ -n "$CLIENT_CPU" ] && taskset -pc "$CLIENT_CPU" $$ >/dev/null

# file descriptors: the idle test needs N client sockets in one process and N in the proxy
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
WCONN=$((NOFILE - 64))
[ "$WCONN" -gt 65536 ] && WCONN=65536
idle_ok=""
for n in $IDLE_NS; do
    if [ $((n + 200)) -gt "$NOFILE" ]; then
        echo "note: skipping $n idle connections: the open-files limit is $NOFILE (ulimit -Hn), raise it to go higher"
    else idle_ok="$idle_ok $n"; fi
done
IDLE_NS=$idle_ok

# ---- results directory -----------------------------------------------------------------------
STAMP=$(date +%Y%m%d-%H%M%S)
[ -n "$OUT" ] || OUT=$BENCH/results/$STAMP$([ $QUICK = 1 ] && echo -quick)
mkdir -p "$OUT/tmp" || exit 1
OUT=$(cd "$OUT" && pwd)
ln -sfn "$OUT" "$BENCH/results/latest" 2>/dev/null
exec > >(tee "$OUT/output.txt") 2>&1

LOAD_TSV=$OUT/load.tsv STREAM_TSV=$OUT/stream.tsv IDLE_TSV=$OUT/idle.tsv SPANS_TSV=$OUT/spans.tsv
printf 'workers\tscenario\trun\ttarget\trequests\tduration_us\trps\tp50_us\tp99_us\terrors\tcpu_ticks\thz\trss_mid_kb\taccess_log_lines\tother_cpu_pct\n' > "$LOAD_TSV"
printf 'workers\ttarget\tdirection\tbytes\tseconds\tmib_per_s\thttp_code\thwm_before_kb\thwm_after_kb\tgrowth_kb\n' > "$STREAM_TSV"
printf 'workers\ttarget\tconnections\tok\theld\trss_before_kb\trss_after_kb\tkib_per_conn\n' > "$IDLE_TSV"
printf 'workers\ttarget\thwm_kb\thwm_max_kb\tnproc\n' > "$OUT/peak.tsv"
printf 'compression\trun\tspans\texported\tdropped\tseconds\tspans_per_s\tsink_spans\tsink_posts\n' > "$OUT/exporter.tsv"
printf 'workers\ttarget\tscope\trequests\tspans\tserver_spans\tclient_spans\ttrace_posts\tdecode_errors\tlost\n' > "$SPANS_TSV"

# ---- process bookkeeping: we stop only what we started, by PID ---------------------------------
STARTED=""
spawn() {  # spawn client|server LOGFILE CMD...: CMD in the background, pinned; SPAWNED = its own PID
    local cpu=$SERVER_CPU log=$2
    [ "$1" = client ] && cpu=$CLIENT_CPU
    shift 2
    if [ -n "$cpu" ]; then taskset -c "$cpu" "$@" >"$log" 2>&1 &
    else "$@" >"$log" 2>&1 &
    fi
    SPAWNED=$!
    STARTED="$STARTED $SPAWNED"
}
descendants() { perl "$LIB/procstat.pl" "$@" | sed -n 's/.* pids=//p' | tr ',' ' ' | sed 's/-//'; }
stop_pid() {
    local pid=$1 all i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    all=$(descendants "$pid")
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    for p in $all; do kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
    wait "$pid" 2>/dev/null
    STARTED=$(echo " $STARTED " | sed "s/ $pid / /")
    return 0
}
cleanup() {
    trap - EXIT INT TERM
    for p in $STARTED; do stop_pid "$p"; done
}
trap cleanup EXIT
trap 'echo "interrupted"; cleanup; exit 130' INT TERM

wait_http() {   # wait_http PORT PATH SECONDS [PID]: 0 when it answers 200 (gives up early if PID exits)
    local i code
    for i in $(seq $(($3 * 10))); do
        [ -n "${4:-}" ] && ! kill -0 "$4" 2>/dev/null && return 1
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$1$2" 2>/dev/null)
        [ "$code" = 200 ] && return 0
        sleep 0.1
    done
    return 1
}
kv() { local k=$1; shift; printf '%s\n' $* | sed -n "s/^$k=//p" | head -1; }
stat_of() { perl "$LIB/procstat.pl" "$@"; }
cpu_busy() { awk -v c="cpu${SERVER_CPU:-}" '$1 == c { print $2 + $3 + $4 + $7 + $9 }' /proc/stat; }   # no softirq

# ---- the sink (OTLP sink and streaming upstream) ---------------------------------------------
SINK=$OUT/sink
if [ $ZLIB = 1 ]; then
    cc -O2 -o "$SINK" "$BENCH/sink.c" -DHAVE_ZLIB -lz || exit 1
else
    echo "note: zlib.h not found (Debian package zlib1g-dev): the sink cannot count spans in gzip'ed exports"
    cc -O2 -o "$SINK" "$BENCH/sink.c" || exit 1
fi
start_sink() {  # start_sink PORT CPU-ROLE(client|server) LOG -> sets SPID
    spawn "$2" "$3" "$SINK" -p "$1"
    SPID=$SPAWNED
    wait_http "$1" /stats 5 "$SPID" || { echo "sink on port $1 did not start: $(cat "$3")"; return 1; }
}
sink_stats() { curl -s --max-time 2 "http://127.0.0.1:$1/stats" | tr -d '{}"' | tr ',:' ' ='; }

# ---- a quiet machine ---------------------------------------------------------------------------
busy_pct() {  # CPU busy % of the whole machine over 3 s
    local a b
    a=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    sleep 3
    b=$(awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat)
    echo "$a $b" | awk '{ t = ($3 - $1) + ($4 - $2); printf "%d", (t > 0 ? ($3 - $1) * 100 / t : 0) }'
}
wait_quiet() {  # wait_quiet SECONDS: until the machine is idle (< 10% busy over 3 s), at most SECONDS
    local qend=$(( $(date +%s) + $1 )) b
    while :; do
        b=$(busy_pct)
        [ "$b" -lt 10 ] && { echo "  machine quiet ($b% busy)"; return 0; }
        [ "$(date +%s)" -ge $qend ] && { echo "  machine still $b% busy after $1 s: going on"; return 1; }
        echo "  machine $b% busy (other work): waiting"
        sleep 7
    done
}
[ "$WAIT_QUIET" -gt 0 ] && wait_quiet "$WAIT_QUIET"

# ---- machine and versions --------------------------------------------------------------------
TG_VERSION="(not built)"
if [ -x "$TRACEGATE" ]; then TG_VERSION=$("$TRACEGATE" -v 2>&1 | head -1); [ -n "$TG_VERSION" ] || TG_VERSION="(prints no version)"; fi
{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $NCPU cores ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr)"
    echo "layout: $LAYOUT"
    echo "nginx: $("$NGINX" -v 2>&1 | sed 's/.*version: //')   wrk: $(wrk -v 2>&1 | head -1 | awk '{print $2}')   tracegate: $TG_VERSION ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo '+dirty'))"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews the figures; see 'other %' per run)"
    echo "options: workers=[$WORKERS] runs=$RUNS duration=${DURATION}s warmup=${WARMUP}s stream=${STREAM_MB}MiB idle=[$IDLE_NS] nofile=$NOFILE"
    echo "targets: $TARGETS"
    echo "scenarios: $SCENARIOS"
} | tee "$OUT/env.txt"
echo

# ---- configs ---------------------------------------------------------------------------------
fill() {  # fill TEMPLATE OUTFILE KEY=VALUE...
    local tpl=$1 out=$2 args=() kvp
    shift 2
    for kvp in "$@"; do args+=(-e "s|@${kvp%%=*}@|${kvp#*=}|g"); done
    sed "${args[@]}" "$tpl" > "$out"
}

start_upstream() {  # start_upstream DIR PORT -> UPID
    local d=$1
    mkdir -p "$d/logs" "$d/tmp" "$d/html"
    printf ok > "$d/html/2b"
    head -c 4096 /dev/zero | tr '\0' x > "$d/html/4k"
    fill "$LIB/upstream-nginx.conf.in" "$d/nginx.conf" DIR="$d" PORT="$2" NOFILE="$NOFILE" WCONN="$WCONN"
    spawn server "$d/logs/stdout" "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log"
    UPID=$SPAWNED
    wait_http "$2" /2b 10 "$UPID" || { echo "the upstream nginx did not start:"; cat "$d/logs/stdout" "$d/logs/error.log"; exit 1; }
    local n4=$(curl -s --max-time 2 "http://127.0.0.1:$2/4k" | wc -c)
    [ "$n4" = 4096 ] || { echo "the upstream does not serve /4k (got $n4 bytes)"; exit 1; }
}

# per-target state (bash associative arrays)
declare -A PORT PID DIRS SINKPORT SINKPID ACCESSLOG NOTE SKIP TGSAID

tg_write_conf() {  # tg_write_conf TARGET DIR VARIANT W
    local t=$1 d=$2 variant=$3 w=$4 sampler=parentbased_traceidratio arg=1.0 alog="logs/access.log trace"
    case $t in
    tracegate-off) sampler=always_off alog=off ;;
    tracegate-10) arg=0.1 ;;
    tracegate-1) arg=0.01 ;;
    esac
    fill "$LIB/tracegate.conf.in" "$d/conf/tracegate.conf.full" PORT="${PORT[$t]}" WORKERS="$w" \
        UPSTREAM_PORT="$UP_PORT" STREAM_PORT="$STREAM_PORT" SINK_PORT="${SINKPORT[$t]}" WCONN="$WCONN" \
        SAMPLER="$sampler" SAMPLER_ARG="$arg" ACCESS_LOG="$alog" \
        MAIN_EXTRA="${TG_MAIN_EXTRA:-}" STREAM_ROUTE_EXTRA="${TG_STREAM_ROUTE_EXTRA:-}"
    # tracegate-off only: while a build does not know these keys yet, they change nothing for it
    # (access_log = off, and an [otlp] endpoint it never exports to), so they may be dropped
    case $variant in
    full) cp "$d/conf/tracegate.conf.full" "$d/conf/tracegate.conf" ;;
    no-access-log) grep -v '^access_log *=' "$d/conf/tracegate.conf.full" > "$d/conf/tracegate.conf" ;;
    no-access-log-no-otlp)
        awk '/^\[/ {skip = ($0 ~ /^\[otlp\]/)} !skip && !/^access_log *=/' \
            "$d/conf/tracegate.conf.full" > "$d/conf/tracegate.conf" ;;
    esac
}

# start_target TARGET W BASEDIR: starts it (fresh), sets PID[t]; returns 1 when it cannot run
start_target() {
    local t=$1 w=$2 d=$3/$1 nginx_log="access_log off;" nginx_hdr="" rp=""
    mkdir -p "$d/logs" "$d/tmp" "$d/conf"
    DIRS[$t]=$d
    case $t in
    direct)
        PID[$t]=$UPID
        return 0 ;;
    nginx-plain|nginx-traceid)
        if [ $t = nginx-traceid ]; then
            nginx_log="access_log $d/logs/access.log trace;"
            nginx_hdr='proxy_set_header X-Trace-ID $request_id;'
            ACCESSLOG[$t]=$d/logs/access.log
        fi
        [ "$w" -gt 1 ] && rp=reuseport
        fill "$LIB/nginx-proxy.conf.in" "$d/nginx.conf" DIR="$d" PORT="${PORT[$t]}" WORKERS="$w" \
            NOFILE="$NOFILE" WCONN="$WCONN" UPSTREAM_PORT="$UP_PORT" STREAM_PORT="$STREAM_PORT" \
            ACCESS_LOG="$nginx_log" TRACEID_HEADER="$nginx_hdr" REUSEPORT="$rp"
        spawn server "$d/logs/stdout" "$NGINX" -p "$d" -c "$d/nginx.conf" -e "$d/logs/error.log"
        PID[$t]=$SPAWNED ;;
    tracegate*)
        if [ ! -x "$TRACEGATE" ]; then
            SKIP[$t]="$TRACEGATE is not built"
            return 1
        fi
        [ -d "$ROOT/html" ] && { rm -rf "$d/html"; cp -r "$ROOT/html" "$d/html"; }
        mkdir -p "$d/html"
        if [ $t != tracegate-off ] && [ $t != tracegate-deadsink ] && [ -z "${SINKPID[$t]:-}" ]; then
            start_sink "${SINKPORT[$t]}" client "$d/logs/sink.log" || { SKIP[$t]="its OTLP sink did not start"; return 1; }
            SINKPID[$t]=$SPID
        fi
        local variant ok=0 msg why
        for variant in full no-access-log no-access-log-no-otlp; do
            [ $variant != full ] && [ $t != tracegate-off ] && break
            tg_write_conf "$t" "$d" "$variant" "$w"
            if msg=$("$TRACEGATE" -t -p "$d" -c "$d/conf/tracegate.conf" 2>&1); then ok=1; break; fi
            why=$(echo "$msg" | grep -m1 -i 'emerg\|error' | sed "s|$d/||g")
            [ -n "$why" ] || why=$(echo "$msg" | tail -1)
            [ -n "${TGSAID[$t:$variant]:-}" ] || [ $variant = full -a $t != tracegate-off ] || echo "  $t: tracegate -t rejects its config ($variant): $why"
            TGSAID[$t:$variant]=1
        done
        if [ $ok = 0 ]; then
            SKIP[$t]="config rejected by tracegate -t: $why"
            return 1
        fi
        if [ $variant != full ]; then
            NOTE[$t]="ran with config variant $variant (this build does not accept those keys yet)"
            [ -n "${TGSAID[$t:run]:-}" ] || echo "  $t: ${NOTE[$t]}"
            TGSAID[$t:run]=1
        fi
        grep -q '^access_log = logs/' "$d/conf/tracegate.conf" && ACCESSLOG[$t]=$d/logs/access.log
        spawn server "$d/logs/stdout" "$TRACEGATE" -p "$d" -c "$d/conf/tracegate.conf"
        PID[$t]=$SPAWNED ;;
    esac
    if ! wait_http "${PORT[$t]}" /2b 10 "${PID[$t]}"; then
        SKIP[$t]="did not answer 200 on GET /2b within 10 s"
        echo "  $t: ${SKIP[$t]}; its logs:"
        tail -5 "$d/logs/stdout" "$d/logs/error.log" 2>/dev/null | sed 's/^/    /'
        stop_pid "${PID[$t]}"
        PID[$t]=""
        return 1
    fi
    return 0
}

say_skip() {  # once per target and worker count: why it does not run
    [ -n "${TGSAID[$1:skip]:-}" ] && { echo "  $1: skipped (see above)"; return; }
    TGSAID[$1:skip]=1
    echo "  $1: skipped: ${SKIP[$1]}"
}
stop_target() {
    local t=$1
    [ "$t" = direct ] && return 0
    [ -n "${PID[$t]:-}" ] && stop_pid "${PID[$t]}"
    PID[$t]=""
}
stop_sinks() {
    local t
    for t in "${!SINKPID[@]}"; do stop_pid "${SINKPID[$t]}"; done
    SINKPID=()
}

# ---- phase: one exporter thread -> the sink (objs/tests/tools/otlp_bench) ------------------------
phase_exporter() {
    echo "== exporter micro-benchmark: $EXPORT_SPANS spans (SERVER+CLIENT pairs, ~15 attributes) through one ring and"
    echo "   one exporter thread to the sink, lossless (-l); otlp_bench pinned to CPU ${SERVER_CPU:-any}, sink to CPU ${CLIENT_CPU:-any}"
    if [ ! -x "$OTLP_BENCH" ]; then
        echo "  skipped: $OTLP_BENCH is not built (make builds it with the tools in tests/tools)"
        echo "skipped: exporter micro-benchmark: $OTLP_BENCH is not built" >> "$OUT/notes.txt"
        return 0
    fi
    local port r z res before after
    port=$(perl "$LIB/freeport.pl" 1)
    start_sink "$port" client "$OUT/tmp/exporter-sink.log" || return 0
    local spid=$SPID
    for r in $(seq "$RUNS"); do
        for z in none gzip; do
            before=$(sink_stats "$port")
            res=$(on_server timeout 300 "$OTLP_BENCH" -e "http://127.0.0.1:$port/v1/traces" -n "$EXPORT_SPANS" -l -q 8192 \
                  $([ $z = gzip ] && echo -z) 2>&1 | tr '\n' ' ')
            after=$(sink_stats "$port")
            local sspans=$(( $(kv spans "$after") - $(kv spans "$before") + 0 ))
            local sposts=$(( $(kv trace_requests "$after") - $(kv trace_requests "$before") + 0 ))
            local drop=$(( $(kv dropped_full "$res") + $(kv dropped_failed "$res") + $(kv rejected "$res") + 0 ))
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' $z $r "$(kv spans "$res")" "$(kv exported "$res")" $drop \
                "$(kv total_seconds "$res")" "$(kv spans_per_sec "$res")" $sspans $sposts >> "$OUT/exporter.tsv"
            printf '  run %d/%d compression %-4s %9s spans/s  exported %s of %s  dropped %s  sink counted %s spans in %s POSTs\n' \
                $r "$RUNS" $z "$(kv spans_per_sec "$res")" "$(kv exported "$res")" "$(kv spans "$res")" $drop $sspans $sposts
            [ -n "$(kv spans_per_sec "$res")" ] || echo "  otlp_bench: $res"
        done
    done
    stop_pid "$spid"
}

# ---- phase: 1 GB streamed upload and download --------------------------------------------------
phase_stream() {
    local w=$1 base=$OUT/w$w/stream t bytes=$((STREAM_MB * 1048576)) big=$OUT/tmp/upload.bin
    mkdir -p "$OUT/tmp"
    [ -f "$big" ] && [ "$(stat -c %s "$big")" = $bytes ] || { rm -f "$big"; truncate -s $bytes "$big"; }
    cat "$big" > /dev/null      # page cache warm before the first target reads it
    echo "== workers=$w: streaming $STREAM_MB MiB up and down through each target (fresh start each)"
    for t in $TARGETS; do
        start_target "$t" "$w" "$base" || { say_skip "$t"; continue; }
        local port=${PORT[$t]} pids=${PID[$t]}
        [ $t = direct ] && { port=$STREAM_PORT; pids=$STREAM_PID; }
        curl -s --max-time 5 "http://127.0.0.1:$port/2b" "http://127.0.0.1:$port/2b" > /dev/null
        local dir res code secs size before after hb ha
        for dir in upload download; do
            before=$(stat_of $pids); hb=$(kv hwm_kb "$before")
            if [ $dir = upload ]; then
                res=$(on_client timeout 330 curl -sS -o /dev/null -H 'Expect:' -X POST -T "$big" --max-time 300 \
                      -w '%{http_code} %{time_total} %{size_upload}' "http://127.0.0.1:$port/upload" 2>&1)
            else
                res=$(on_client timeout 330 curl -sS -o /dev/null --max-time 300 \
                      -w '%{http_code} %{time_total} %{size_download}' "http://127.0.0.1:$port/download/$bytes" 2>&1)
            fi
            after=$(stat_of $pids); ha=$(kv hwm_kb "$after")
            read -r code secs size <<<"$(echo "$res" | tail -1)"
            local mibs=$(awk -v b="${size:-0}" -v s="${secs:-0}" 'BEGIN { printf "%.1f", (s > 0 ? b / 1048576 / s : 0) }')
            [ "$code" = 200 ] && [ "${size%.*}" = "$bytes" ] || echo "  $t $dir: FAILED: $res"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$t" "$dir" "${size:-0}" "${secs:-0}" "$mibs" \
                "${code:-000}" "$hb" "$ha" $((ha - hb)) >> "$STREAM_TSV"
            printf '  %-19s %-8s %8s MiB/s  http %s  peak RSS %6d -> %6d KiB (+%d)\n' "$t" "$dir" "$mibs" "${code:-000}" "$hb" "$ha" $((ha - hb))
        done
        stop_target "$t"
    done
    stop_sinks
}

# ---- phase: idle keep-alive connections --------------------------------------------------------
phase_idle() {
    local w=$1 base=$OUT/w$w/idle t n
    [ -n "$IDLE_NS" ] || return 0
    echo "== workers=$w: RSS holding idle keep-alive connections (fresh start for each count)"
    for t in $IDLE_TARGETS; do
        case " $TARGETS " in *" $t "*) ;; *) continue ;; esac
        for n in $IDLE_NS; do
            start_target "$t" "$w" "$base-$n" || { say_skip "$t"; continue 2; }
            local port=${PORT[$t]} urls="" i
            for i in $(seq 100); do urls="$urls http://127.0.0.1:$port/2b"; done
            curl -s --max-time 10 $urls > /dev/null
            sleep 0.5
            local before=$(stat_of ${PID[$t]}) ready=$OUT/tmp/idle.ready
            rm -f "$ready"
            spawn client "$OUT/tmp/idle.out" perl "$LIB/idle.pl" "$port" "$n" "$ready" 120
            local cpid=$SPAWNED
            for i in $(seq 1200); do [ -f "$ready" ] && break; kill -0 $cpid 2>/dev/null || break; sleep 0.1; done
            sleep 1
            local after=$(stat_of ${PID[$t]})
            kill -TERM $cpid 2>/dev/null
            for i in $(seq 100); do kill -0 $cpid 2>/dev/null || break; sleep 0.1; done
            stop_pid $cpid
            local info=$(cat "$ready" 2>/dev/null) held=$(sed -n 's/^held=\([0-9]*\).*/\1/p' "$OUT/tmp/idle.out")
            local ok=$(kv ok "$info") rb=$(kv rss_kb "$before") ra=$(kv rss_kb "$after")
            local per=$(awk -v a="$ra" -v b="$rb" -v n="${ok:-0}" 'BEGIN { printf "%.2f", (n > 0 ? (a - b) / n : 0) }')
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$t" "$n" "${ok:-0}" "${held:-0}" "$rb" "$ra" "$per" >> "$IDLE_TSV"
            printf '  %-19s %6d conns: ok %6s held %6s  RSS %7d -> %7d KiB  = %s KiB/conn  %s\n' "$t" "$n" "${ok:-0}" \
                "${held:-0}" "$rb" "$ra" "$per" "$(echo "$info" | grep -o 'last_error=.*')"
            stop_target "$t"
        done
    done
    stop_sinks
}

# ---- phase: wrk load ---------------------------------------------------------------------------
declare -A SENT     # requests completed per target over the whole load phase (warm-ups included)
run_wrk() {  # run_wrk CONNS SECONDS PATH HEADER PORT OUTFILE
    local hdr=()
    [ -n "$4" ] && hdr=(-H "$4")
    on_client timeout $(($2 + 30)) wrk -t1 -c"$1" -d"$2"s --timeout 5s --latency -s "$LIB/wrk-report.lua" \
        "${hdr[@]}" "http://127.0.0.1:$5$3" > "$6" 2>&1
}
wait_spans() {  # wait_spans SINKPORT EXPECTED_SERVER_SPANS: until reached, or stable 6 s, or SPAN_WAIT s
    local port=$1 want=$2 last=-1 same=0 i s
    for i in $(seq $((SPAN_WAIT * 2))); do
        s=$(kv server_spans "$(sink_stats "$port")")
        [ "${s:-0}" -ge "$want" ] && return 0
        if [ "${s:-0}" = "$last" ]; then same=$((same + 1)); [ $same -ge 12 ] && return 0; else same=0; fi
        last=${s:-0}
        sleep 0.5
    done
}
run_one() {  # run_one W SCENARIO RUN TARGET
    local w=$1 s=$2 r=$3 t=$4 conns path=/2b hdr="" port=${PORT[$4]} f=$OUT/w$1/load/wrk-$2-$4-$3
    case $s in
    c1) conns=1 ;; c50) conns=50 ;; c256) conns=256 ;;
    c50-4k) conns=50 path=/4k ;; close50) conns=50 hdr="Connection: close" ;;
    esac
    local check_spans=0 s0="" sent=0 attempt
    if [ $s = c50 ] && [ $t = tracegate ] && [ -n "${SINKPID[$t]:-}" ]; then check_spans=1; s0=$(sink_stats "${SINKPORT[$t]}"); fi
    for attempt in 1 2 3; do
        run_wrk $conns "$WARMUP" $path "$hdr" "$port" "$f.warmup"
        local wres=$(grep WRKRESULT "$f.warmup")
        SENT[$t]=$(( ${SENT[$t]:-0} + $(kv requests "$wres") + 0 ))
        sent=$(( sent + $(kv requests "$wres") + 0 ))
        # the access log of the measured run only (both nginx and tracegate open it O_APPEND)
        [ -n "${ACCESSLOG[$t]:-}" ] && [ -f "${ACCESSLOG[$t]}" ] && : > "${ACCESSLOG[$t]}"
        local before=$(stat_of ${PID[$t]}) up0=0 up1=0 c0 c1
        [ $t != direct ] && up0=$(kv ticks "$(stat_of $UPID)")
        c0=$(cpu_busy)
        run_wrk $conns "$DURATION" $path "$hdr" "$port" "$f" &
        local wpid=$! mid
        sleep $(awk -v d="$DURATION" 'BEGIN { print d / 2 }')
        mid=$(stat_of ${PID[$t]})
        wait $wpid
        local after=$(stat_of ${PID[$t]}) res=$(grep WRKRESULT "$f")
        c1=$(cpu_busy)
        [ $t != direct ] && up1=$(kv ticks "$(stat_of $UPID)")
        [ -n "$res" ] || { echo "  $t: wrk printed no result:"; sed 's/^/    /' "$f" | tail -5; }
        local req=$(kv requests "$res") dus=$(kv duration_us "$res") p50=$(kv p50_us "$res") p99=$(kv p99_us "$res")
        local errs=$(( $(kv err_connect "$res") + $(kv err_read "$res") + $(kv err_write "$res") + $(kv err_status "$res") + $(kv err_timeout "$res") + 0 ))
        req=${req:-0}; dus=${dus:-1}
        SENT[$t]=$(( ${SENT[$t]:-0} + req ))
        sent=$(( sent + req ))
        local ticks=$(( $(kv ticks "$after") - $(kv ticks "$before") )) hz=$(kv hz "$after")
        local lines=-
        if [ -n "${ACCESSLOG[$t]:-}" ] && [ -f "${ACCESSLOG[$t]}" ]; then
            lines=$(wc -l < "${ACCESSLOG[$t]}")
            : > "${ACCESSLOG[$t]}"          # keep the disk small; both nginx and tracegate append
        fi
        local rps=$(awk -v n="$req" -v d="$dus" 'BEGIN { printf "%.1f", n * 1e6 / d }')
        # busy time of the servers' CPU not charged to the proxy or the upstream (other work on the
        # machine, hard irqs, steal; softirq is left out): a noise indicator, in % of the run
        local foreign=-
        [ -n "$SERVER_CPU" ] && foreign=$(awk -v b=$((c1 - c0)) -v p=$ticks -v u=$((up1 - up0)) -v h="$hz" -v d="$dus" \
            'BEGIN { f = (b - p - u) / (d / 1e6 * h) * 100; printf "%.0f", (f < 0 ? 0 : f) }')
        local line
        line=$(printf '  %-8s run %d/%d %-19s %9s req/s  p99 %7.2f ms  cpu %5.2f s/100k  rss %6d KiB  other %s%%  errors %s%s' "$s" "$r" "$RUNS" "$t" \
            "$rps" "$(awk -v p="${p99:-0}" 'BEGIN { print p / 1000 }')" \
            "$(awk -v k="$ticks" -v h="$hz" -v n="$req" 'BEGIN { printf "%.2f", (n > 0 ? k / h / n * 1e5 : 0) }')" \
            "$(kv rss_kb "$mid")" "$foreign" "$errs" "$([ "$lines" != - ] && echo "  log lines $lines")")
        # other work took the servers' CPU: with --wait-quiet, wait for quiet and measure again (twice at most)
        if [ "$WAIT_QUIET" -gt 0 ] && [ "$foreign" != - ] && [ "$foreign" -gt "$OTHER_MAX" ] && [ $attempt -lt 3 ] \
           && [ $QUIET_SPENT -lt $((WAIT_QUIET * 3)) ]; then
            echo "$line  <- other work on the machine: repeating"
            local q0=$(date +%s)
            wait_quiet $((WAIT_QUIET < 60 ? WAIT_QUIET : 60))
            QUIET_SPENT=$(( QUIET_SPENT + $(date +%s) - q0 + DURATION + WARMUP ))
            continue
        fi
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "$s" "$r" "$t" "$req" "$dus" "$rps" \
            "${p50:-0}" "${p99:-0}" "$errs" "$ticks" "$hz" "$(kv rss_kb "$mid")" "$lines" "$foreign" >> "$LOAD_TSV"
        echo "$line"
        break
    done
    if [ $check_spans = 1 ]; then
        local base_server=$(kv server_spans "$s0")
        wait_spans "${SINKPORT[$t]}" $(( base_server + sent ))
        record_spans "$w" "$t" "$s-run$r" "$sent" "$s0" "$(sink_stats "${SINKPORT[$t]}")"
    fi
}
record_spans() {  # record_spans W TARGET SCOPE SENT STATS_BEFORE STATS_AFTER
    local d=() k
    for k in spans server_spans client_spans trace_requests decode_errors; do
        d+=($(( $(kv $k "$6") - $(kv $k "$5") + 0 )))
    done
    local lost=$(( $4 - d[1] )); [ $lost -lt 0 ] && lost=0
    case $2 in tracegate-10|tracegate-1) lost="-" ;; esac       # sampled: see SERVER spans / requests
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "${d[0]}" "${d[1]}" "${d[2]}" "${d[3]}" "${d[4]}" $lost >> "$SPANS_TSV"
    printf '  spans %-19s %-12s requests %9d  server spans %9d (%s)  client spans %9d  posts %6d  decode errors %d  lost %s\n' \
        "$2" "$3" "$4" "${d[1]}" "$(awk -v a="${d[1]}" -v b="$4" 'BEGIN { printf "%.4f", (b > 0 ? a / b : 0) }')" "${d[2]}" "${d[3]}" "${d[4]}" "$lost"
}
phase_load() {
    local w=$1 base=$OUT/w$w/load t s r live=""
    mkdir -p "$base"
    echo "== workers=$w: wrk load: ${RUNS} interleaved run(s) of ${DURATION}s after ${WARMUP}s warm-up, wrk -t1 --latency"
    SENT=()
    for t in $TARGETS; do
        if start_target "$t" "$w" "$base"; then live="$live $t"; else say_skip "$t"; fi
    done
    local s0=()
    for t in $live; do [ -n "${SINKPID[$t]:-}" ] && s0+=("$t=$(sink_stats "${SINKPORT[$t]}" | tr ' ' ',')"); done
    for s in $SCENARIOS; do
        for r in $(seq "$RUNS"); do
            for t in $live; do
                kill -0 "${PID[$t]}" 2>/dev/null || { echo "  $t: its process is gone; see ${DIRS[$t]}/logs"; continue; }
                run_one "$w" "$s" "$r" "$t"
            done
        done
    done
    # all the spans of the load phase against all the requests sent (warm-ups included)
    local e
    for e in "${s0[@]}"; do
        t=${e%%=*}
        local before=${e#*=}; before=${before//,/ }
        local ratio=1 want
        case $t in tracegate-10) ratio=0.1 ;; tracegate-1) ratio=0.01 ;; esac
        want=$(awk -v n="${SENT[$t]:-0}" -v r=$ratio 'BEGIN { printf "%d", n * r }')
        wait_spans "${SINKPORT[$t]}" $(( $(kv server_spans "$before") + want ))
        record_spans "$w" "$t" "load-phase" "${SENT[$t]:-0}" "$before" "$(sink_stats "${SINKPORT[$t]}")"
    done
    for t in $live; do
        local st=$(stat_of ${PID[$t]})
        echo "  peak RSS (VmHWM) after the load phase: $t $(kv hwm_kb "$st") KiB over $(kv nproc "$st") process(es)"
        printf '%s\t%s\t%s\t%s\t%s\n' "$w" "$t" "$(kv hwm_kb "$st")" "$(kv hwm_max_kb "$st")" "$(kv nproc "$st")" >> "$OUT/peak.tsv"
    done
    for t in $live; do stop_target "$t"; done
    stop_sinks
}

# ---- main ----------------------------------------------------------------------------------------
START=$(date +%s)
has_phase exporter && phase_exporter
for w in $WORKERS; do
    has_phase stream || has_phase idle || has_phase load || break
    mkdir -p "$OUT/w$w"
    set -- $(perl "$LIB/freeport.pl" 20)
    UP_PORT=$1 STREAM_PORT=$2
    shift 2
    for t in $ALL_TARGETS; do PORT[$t]=$1; shift; done
    for t in tracegate tracegate-10 tracegate-1 tracegate-deadsink; do SINKPORT[$t]=$1; shift; done
    PORT[direct]=$UP_PORT
    # tracegate-off points at a port where nothing listens; it never exports anyway
    SINKPORT[tracegate-off]=${SINKPORT[tracegate-deadsink]}
    SKIP=() NOTE=() ACCESSLOG=() SINKPID=() TGSAID=()
    start_upstream "$OUT/w$w/upstream" "$UP_PORT"
    start_sink "$STREAM_PORT" server "$OUT/w$w/stream-sink.log" || exit 1
    STREAM_PID=$SPID
    echo "== workers=$w: upstream nginx on :$UP_PORT (pid $UPID), stream sink on :$STREAM_PORT; $LAYOUT"
    has_phase stream && phase_stream "$w"
    has_phase idle && phase_idle "$w"
    has_phase load && phase_load "$w"
    for t in "${!NOTE[@]}"; do echo "note: $t: ${NOTE[$t]}" >> "$OUT/notes.txt"; done
    for t in "${!SKIP[@]}"; do echo "skipped (workers=$w): $t: ${SKIP[$t]}" >> "$OUT/notes.txt"; done
    stop_pid "$STREAM_PID"
    stop_pid "$UPID"
done
rm -rf "$OUT/tmp"
echo
echo "== done in $(( $(date +%s) - START )) s; results in $OUT; load average now $(cut -d' ' -f1-3 /proc/loadavg)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"
echo
perl "$LIB/summarize.pl" "$OUT" | tee "$OUT/summary.md"
