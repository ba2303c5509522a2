#!/usr/bin/env bash
# bench/tls_handshake.sh: new TLS connections per second (full handshakes, no
# resumption), tracegate against nginx, same certificate and key (issue 6).
#
#   bench/tls_handshake.sh               3 interleaved runs of 10 s per target, TLS 1.3 and 1.2, RSA-2048
#   bench/tls_handshake.sh --quick       1 run of 3 s, TLS 1.3 only
#   bench/tls_handshake.sh --help        all options
#
# The client is `openssl s_time -new` (a full handshake per connection, then
# close; no request) in --clients parallel processes for --duration seconds.
# Each server has one worker; like bench/run.sh the servers are pinned to CPU 1
# and the clients to CPU 0 (taskset) when there are two CPUs or more. Reported
# per run: connections/s (all clients, over the measured wall time) and the
# server's CPU use (master + worker, from /proc/PID/stat), so that a client-bound
# run shows as a server below 100 %; "per CPU-s" = connections per second of
# server CPU. Summary: medians and the tracegate/nginx ratio.
#
# Installs nothing. Starts only loopback servers on free ports, stops them by
# PID when it ends; every step is bounded in time. Results:
# bench/results/tls-<date>/ (summary.md, runs.tsv, the configs and logs).
set -u -o pipefail
export LC_ALL=C

BENCH=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$BENCH")
TRACEGATE=$ROOT/objs/tracegate
DURATION=10 RUNS=3 CLIENTS=2 PROTOS="tls1_3 tls1_2" KEY=rsa OUT=""

usage() {
    cat <<EOF
usage: bench/tls_handshake.sh [options]
  --quick             --runs 1 --duration 3 --protos tls1_3
  -d, --duration S    seconds of each measured run (default $DURATION)
  -r, --runs N        interleaved runs per target and protocol (default $RUNS)
  -c, --clients N     parallel s_time processes (default $CLIENTS)
  --protos LIST       tls1_3,tls1_2 (default both)
  --key rsa|ec        RSA-2048 (default) or ECDSA P-256 certificate
  --tracegate PATH    the binary (default objs/tracegate)
  --out DIR           results directory (default bench/results/tls-<date>)
EOF
}
while [ $# -gt 0 ]; do
    case $1 in
    --quick) RUNS=1; DURATION=3; PROTOS=tls1_3 ;;
    -d|--duration) DURATION=$2; shift ;;
    -r|--runs) RUNS=$2; shift ;;
    -c|--clients) CLIENTS=$2; shift ;;
    --protos) PROTOS=${2//,/ }; shift ;;
    --key) KEY=$2; shift ;;
    --tracegate) TRACEGATE=$2; shift ;;
    --out) OUT=$2; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "tls_handshake.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
case $KEY in rsa|ec) ;; *) echo "--key rsa or ec" >&2; exit 2 ;; esac

missing=""
for c in openssl taskset timeout perl; do command -v $c >/dev/null 2>&1 || missing="$missing $c"; done
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$NGINX" ] || missing="$missing nginx"
[ -x "$TRACEGATE" ] || missing="$missing $TRACEGATE(run make)"
if [ -n "$missing" ]; then echo "tls_handshake.sh: missing:$missing (nothing is installed here)" >&2; exit 2; fi

NCPU=$(getconf _NPROCESSORS_ONLN)
if [ "$NCPU" -ge 2 ]; then
    CLIENT_CPU=0 SERVER_CPU=1
    LAYOUT="s_time clients pinned to CPU 0, the server under test (master and its one worker) to CPU 1"
else
    CLIENT_CPU="" SERVER_CPU=""
    LAYOUT="only $NCPU CPU: nothing pinned"
fi
# prefixes, not functions: "$!" must be the server's own PID (taskset execs it)
PIN_SERVER=() PIN_CLIENT=()
[ -n "$SERVER_CPU" ] && PIN_SERVER=(taskset -c "$SERVER_CPU")
[ -n "$CLIENT_CPU" ] && PIN_CLIENT=(taskset -c "$CLIENT_CPU")
[ -n "$CLIENT_CPU" ] && taskset -pc "$CLIENT_CPU" $$ >/dev/null

OUT=${OUT:-$BENCH/results/tls-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT/tracegate/conf" "$OUT/tracegate/logs" "$OUT/nginx/logs" "$OUT/pki"

# ---- processes we started, stopped by PID --------------------------------------------------
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    sleep 0.3
    for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
    wait 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 0, Listen => 1, ReuseAddr => 1) or die; print $s->sockport'; }
wait_port() {   # wait_port PORT SECONDS
    local end=$(( $(date +%s) + $2 ))
    while [ "$(date +%s)" -le $end ]; do
        (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
descendants() { local p; for p in "$@"; do echo $p; descendants $(cat /proc/$p/task/*/children 2>/dev/null); done; }
cpu_ticks() {   # utime+stime of the PIDs given and all their descendants, in clock ticks
    local t=0 p
    for p in $(descendants "$@"); do
        [ -r /proc/$p/stat ] || continue
        t=$(( t + $(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' /proc/$p/stat) ))
    done
    echo $t
}
HZ=$(getconf CLK_TCK)

# ---- one certificate and key for both --------------------------------------------------------
if [ $KEY = rsa ]; then NEWKEY=(-newkey rsa:2048); KEYDESC="RSA-2048"
else NEWKEY=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1); KEYDESC="ECDSA P-256"; fi
timeout 60 openssl req -x509 "${NEWKEY[@]}" -nodes -keyout "$OUT/pki/bench.key" -out "$OUT/pki/bench.pem" \
    -days 7 -subj /CN=bench.test -addext subjectAltName=DNS:bench.test >/dev/null 2>&1 \
    || { echo "openssl req failed" >&2; exit 1; }
CERT=$OUT/pki/bench.pem CKEY=$OUT/pki/bench.key

# ---- the two servers ---------------------------------------------------------------------------
TG_PORT=$(free_port)
NG_PORT=$(free_port)
cat >"$OUT/tracegate/conf/tracegate.conf" <<EOF
[main]
daemon = off
workers = 1
listen = 127.0.0.1:$TG_PORT ssl
pid = logs/tracegate.pid
error_log = logs/error.log notice

[ssl]
certificate = $CERT $CKEY

[otlp]
exporter = none
EOF
cat >"$OUT/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $OUT/nginx/logs/nginx.pid;
error_log $OUT/nginx/logs/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $OUT/nginx/logs/cb;
    proxy_temp_path $OUT/nginx/logs/px;
    fastcgi_temp_path $OUT/nginx/logs/fc;
    uwsgi_temp_path $OUT/nginx/logs/uw;
    scgi_temp_path $OUT/nginx/logs/sc;
    server {
        listen 127.0.0.1:$NG_PORT ssl;
        ssl_certificate $CERT;
        ssl_certificate_key $CKEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "ok\n"; }
    }
}
EOF
timeout 10 "$TRACEGATE" -p "$OUT/tracegate" -c "$OUT/tracegate/conf/tracegate.conf" -t >"$OUT/tracegate/logs/t.out" 2>&1 \
    || { cat "$OUT/tracegate/logs/t.out"; exit 1; }
"${PIN_SERVER[@]}" "$TRACEGATE" -p "$OUT/tracegate" -c "$OUT/tracegate/conf/tracegate.conf" \
    >"$OUT/tracegate/logs/stderr.log" 2>&1 &
TG_PID=$!; PIDS+=($TG_PID)
"${PIN_SERVER[@]}" "$NGINX" -p "$OUT/nginx" -c "$OUT/nginx/nginx.conf" -e "$OUT/nginx/logs/error.log" \
    >"$OUT/nginx/logs/stderr.log" 2>&1 &
NG_PID=$!; PIDS+=($NG_PID)
wait_port $TG_PORT 10 || { echo "tracegate did not start:"; cat "$OUT/tracegate/logs/stderr.log"; exit 1; }
wait_port $NG_PORT 10 || { echo "nginx did not start:"; cat "$OUT/nginx/logs/stderr.log" "$OUT/nginx/logs/error.log"; exit 1; }
sleep 0.5

# ---- runs ------------------------------------------------------------------------------------
# run TARGET PORT PID PROTO -> "conns wall cpu_s" (and the raw s_time output in the results)
run() {
    local target=$1 port=$2 pid=$3 proto=$4 i pids=() n=0 t0 t1 c0 c1 f
    c0=$(cpu_ticks $pid)
    t0=$(date +%s.%N)
    for i in $(seq 1 $CLIENTS); do
        f=$OUT/$target.$proto.$RUN.$i.out
        "${PIN_CLIENT[@]}" timeout $((DURATION + 15)) openssl s_time -connect 127.0.0.1:$port -new \
            -$proto -time $DURATION >"$f" 2>&1 &
        pids+=($!)
    done
    for i in "${pids[@]}"; do wait $i; done
    t1=$(date +%s.%N)
    c1=$(cpu_ticks $pid)
    for i in $(seq 1 $CLIENTS); do
        f=$OUT/$target.$proto.$RUN.$i.out
        n=$(( n + $(sed -n 's/^\([0-9]*\) connections in [0-9.]*s;.*/\1/p' "$f" | head -1 | grep . || echo 0) ))
        tr -d '*' <"$f" >"$f.tmp" && mv "$f.tmp" "$f"
    done
    awk -v n=$n -v t0=$t0 -v t1=$t1 -v c=$((c1 - c0)) -v hz=$HZ \
        'BEGIN { w = t1 - t0; printf "%d %.3f %.3f\n", n, w, c / hz }'
}

echo "# TLS handshakes: tracegate vs nginx" | tee "$OUT/summary.md"
{
    echo
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "machine: $NCPU CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)), $(uname -sr)"
    echo "openssl: $(openssl version)   nginx: $("$NGINX" -v 2>&1 | sed 's/.*version: //')   tracegate: $("$TRACEGATE" -v 2>&1 | head -1) ($(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null)$(cd "$ROOT" && git diff --quiet 2>/dev/null || echo '+dirty'))"
    echo "certificate: $KEYDESC, self-signed, the same files for both; one worker each"
    echo "client: $CLIENTS x \`openssl s_time -new -time $DURATION\` (full handshake, no request, close), $RUNS interleaved runs"
    echo "layout: $LAYOUT"
    echo
} | tee -a "$OUT/summary.md"
printf "target\tproto\trun\tconnections\twall_s\tconn_per_s\tserver_cpu_pct\tconn_per_cpu_s\n" >"$OUT/runs.tsv"
for proto in $PROTOS; do
    for RUN in $(seq 1 $RUNS); do
        for target in tracegate nginx; do
            if [ $target = tracegate ]; then port=$TG_PORT pid=$TG_PID; else port=$NG_PORT pid=$NG_PID; fi
            kill -0 $pid 2>/dev/null || { echo "$target died; see $OUT/$target/logs" >&2; exit 1; }
            read -r n wall cpu < <(run $target $port $pid $proto)
            awk -v t=$target -v p=$proto -v r=$RUN -v n=$n -v w=$wall -v c=$cpu 'BEGIN {
                printf "%s\t%s\t%d\t%d\t%.2f\t%.0f\t%.0f\t%.0f\n", t, p, r, n, w, n / w, 100 * c / w, (c > 0 ? n / c : 0) }' \
                | tee -a "$OUT/runs.tsv"
            sleep 1
        done
    done
done

# ---- summary: medians and ratio ------------------------------------------------------------------
perl -e '
    my (%v);
    open my $f, "<", $ARGV[0] or die;
    <$f>;
    while (<$f>) { chomp; my @c = split /\t/; push @{ $v{$c[1]}{$c[0]}{rate} }, $c[5];
                   push @{ $v{$c[1]}{$c[0]}{cpu} }, $c[6]; push @{ $v{$c[1]}{$c[0]}{eff} }, $c[7]; }
    sub med { my @s = sort { $a <=> $b } @_; return @s % 2 ? $s[$#s / 2] : ($s[@s / 2 - 1] + $s[@s / 2]) / 2 }
    print "| protocol | target | new conn/s (runs) | median conn/s | median server CPU | median conn per server CPU-s |\n";
    print "|---|---|---|---|---|---|\n";
    for my $p (sort { $b cmp $a } keys %v) {
        for my $t (qw(tracegate nginx)) {
            my $x = $v{$p}{$t} or next;
            printf "| %s | %s | %s | %.0f | %.0f %% | %.0f |\n", $p, $t, join(", ", @{ $x->{rate} }),
                   med(@{ $x->{rate} }), med(@{ $x->{cpu} }), med(@{ $x->{eff} });
        }
    }
    print "\n";
    for my $p (sort { $b cmp $a } keys %v) {
        my ($t, $n) = ($v{$p}{tracegate}, $v{$p}{nginx});
        next unless $t && $n && med(@{ $n->{rate} }) > 0 && med(@{ $n->{eff} }) > 0;
        printf "%s: tracegate/nginx = %.2f (connections/s), %.2f (connections per server CPU-second)\n", $p,
               med(@{ $t->{rate} }) / med(@{ $n->{rate} }), med(@{ $t->{eff} }) / med(@{ $n->{eff} });
    }
' "$OUT/runs.tsv" | tee -a "$OUT/summary.md"
echo | tee -a "$OUT/summary.md"
echo "raw: $OUT/runs.tsv; s_time output: $OUT/*.out" | tee -a "$OUT/summary.md"
grep -h -i -E '\[(alert|crit|emerg)\]' "$OUT/tracegate/logs/error.log" "$OUT/nginx/logs/error.log" 2>/dev/null | head -5
exit 0
