#!/bin/sh
# OTLP export micro-benchmark: N synthetic spans (~15 attributes each)
# through one ring and one exporter thread (objs/tests/tools/otlp_bench)
# to a local OTLP/HTTP sink (t/lib/TGOTLP.pm with store => 0: answers 200
# at once, keep-alive, counts spans by walking the protobuf framing).
#
#   bench/otlp_bench.sh [N] [extra otlp_bench flags, e.g. -z for gzip]
#
# Prints the tool's counters, spans/s, and what the sink received.
# Target: >= 200000 spans/s with the defaults (batch 512, 2 in flight).

set -eu
cd "$(dirname "$0")/.."
N=${1:-500000}
[ $# -gt 0 ] && shift
[ -x objs/tests/tools/otlp_bench ] || { echo "build first: make" >&2; exit 1; }
mkdir -p t/tmp

exec perl -It/lib -MTGOTLP -e '
    my ($n, @flags) = @ARGV;
    my $sink = TGOTLP->new(dir => "t/tmp/otlp_bench.$$", store => 0);
    my @cmd = ("timeout", "300", "objs/tests/tools/otlp_bench",
               "-e", $sink->url, "-n", $n, "-l", @flags);
    print "# @cmd\n";
    system(@cmd) == 0 or warn "otlp_bench failed: $?\n";
    $sink->stop;
    my ($req, $spans, $bytes) = $sink->counts;
    print "sink_requests=$req\nsink_spans=$spans\nsink_bytes=$bytes\n";
' "$N" "$@"
