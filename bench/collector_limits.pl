#!/usr/bin/perl
# How long the largest requests the [collector] limits admit hold the
# worker's loop, and what a refused bomb costs: one tracegate (workers = 1,
# the collector, the trace store, a mock upstream), and per request shape
# the time from the body's last byte to the answer (the loop is busy with
# the request for that long: evhttp has read the rest already), the
# slowest proxy request sent at the same moment, and the worker's peak RSS.
#
#   ./configure && make && perl bench/collector_limits.pl [--runs N] [--conf 'key = value' ...]
#
# Perl core only; run it on a quiet machine (it prints the load average).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use Getopt::Long;
use IO::Compress::Gzip qw(gzip);
use Time::HiRes qw(time sleep);
use TG;
use TGPB;

my $runs = 7;
my @conf;
GetOptions('runs=i' => \$runs, 'conf=s' => \@conf) or die "usage\n";

my $t = TG->new('bench-collector');
my $up = TG::mock_upstream(name => 'a');
my $cport = TG::free_port();
(my $main = $t->main_conf) =~ s/^error_log = .*$/error_log = logs\/error.log debug/m;
$t->write_conf($main . $t->service_a_conf($up)
    . "[collector]\nlisten = 127.0.0.1:$cport\n" . join('', map { "$_\n" } @conf) . "\n"
    . "[traces]\nlocation = /_traces\nroot = $TG::ROOT/html/traces\n");
$t->start or die "tracegate did not start\n";
TG::wait_for(5, sub { TG::port_accepts($cport, 0.2) }) or die "no collector\n";
my ($worker) = $t->workers;

# the CPU time of the last request, from the worker's debug line
sub cpu_ms {
    my @l = $t->error_log =~ /collector: .* in ([\d.]+) ms of CPU/g;
    return $l[-1] // -1;
}

# the limits in force, as -T prints them
my ($rc, $dump) = $t->cli('-T');
$dump =~ s/^.*# effective configuration://s;
my %lim = $dump =~ /^(max_\w+) = (\d+)$/mg;
my $body_max = delete $lim{max_body_size} // die "no -T\n";
printf "limits: max_body_size %d, %s\n", $body_max,
       join(', ', map { "$_ $lim{$_}" } sort keys %lim);

# the largest shapes within them: every count at its limit (but for the
# attributes of events and links, which the decoder skips like the events
# and links themselves), small values ("objects"), or values as long as the
# body allows ("bytes")
my $res = $lim{max_resource_spans};
my $scopes = int($lim{max_scope_spans} / $res) || 1;
my $spans = int($lim{max_spans} / ($res * $scopes)) || 1;
my $nspans = $res * $scopes * $spans;
my %objects = (resources => $res, scopes => $scopes, spans => $spans,
               attrs => int(($lim{max_attributes} - $res) / $nspans),
               events => int($lim{max_events} / $nspans),
               links => int($lim{max_links} / $nspans), vlen => 8);
my @cases;
for my $s (qw(objects bytes)) {
    my %o = %objects;
    if ($s eq 'bytes') {
        # the longest values with which both encodings fit
        # (the JSON is the longer: its size grows by one byte per value
        # and per byte of vlen)
        my $small = length TGPB::json(TGPB::request(%o));
        my $n = $nspans * $o{attrs};
        $o{vlen} = 8 + int(($body_max - $small) / ($n || 1));
        $o{vlen} = 8 if $o{vlen} < 8;
    }
    my $req = TGPB::request(%o);
    for my $enc ([ 'protobuf', 'application/x-protobuf', TGPB::pb($req) ],
                 [ 'json', 'application/json', TGPB::json($req) ]) {
        my ($name, $ct, $body) = @$enc;
        push @cases, [ "$name max $s", $ct, $body, 0 ];
        my $gz;
        gzip(\$body => \$gz);
        push @cases, [ "$name max $s, gzip", $ct, $gz, length $body ];
    }
}
my $bomb = "\x0a\x00" x 4_000_000;
my $gzb;
gzip(\$bomb => \$gzb, -Level => 9);
push @cases, [ 'protobuf bomb (4M empty resource spans), gzip', 'application/x-protobuf', $gzb, length $bomb ];
my $jb = '{"resourceSpans":[' . join(',', ('{}') x 2_000_000) . ']}';
my $gzj;
gzip(\$jb => \$gzj, -Level => 9);
push @cases, [ 'json bomb (2M empty resource spans), gzip', 'application/json', $gzj, length $jb ];

open my $la, '<', '/proc/loadavg';
printf "load average: %s", scalar <$la>;
printf "%-46s %8s %8s %6s %15s %15s %8s\n", 'request', 'bytes', 'inflated',
       'status', 'CPU ms med/max', 'wall ms med/max', 'proxy ms';
my ($rss0, $hwm0) = TG::rss($worker);
my $proxy = TG::Conn->new($t->{port}) or die "proxy: $@";
for my $c (@cases) {
    my ($name, $ct, $body, $plain) = @$c;
    my (@ms, @px, @cpu, $status);
    for (1 .. $runs) {
        my $conn = TG::Conn->new($cport) or die "collector: $@";
        my $req = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: $ct\r\n"
                . ($plain ? "Content-Encoding: gzip\r\n" : '')
                . 'Content-Length: ' . length($body) . "\r\n\r\n" . $body;
        $conn->write(substr($req, 0, -1));
        sleep 0.2;                        # evhttp has read all but the last byte
        my $t0 = time;
        $conn->write(substr($req, -1));
        # a proxy request right behind it waits for the loop
        $proxy->write("GET /service-a/x HTTP/1.1\r\nHost: x\r\n\r\n");
        my $r = $conn->read_response(timeout => 30) or die "no answer: $conn->{error}\n";
        push @ms, 1000 * (time - $t0);
        my $p = $proxy->read_response(timeout => 30) or die "proxy: $proxy->{error}\n";
        push @px, 1000 * (time - $t0);
        $status = $r->{status};
        $conn->close;
        TG::wait_for(1, sub { $t->error_log =~ /collector: .* ms of CPU\n\z/ });
        push @cpu, cpu_ms();
    }
    @ms = sort { $a <=> $b } @ms;
    @px = sort { $a <=> $b } @px;
    @cpu = sort { $a <=> $b } @cpu;
    printf "%-46s %8d %8s %6d %7.2f/%-7.2f %7.2f/%-7.2f %8.2f\n", $name, length $body,
           $plain || '-', $status, $cpu[$#cpu / 2], $cpu[-1], $ms[$#ms / 2], $ms[-1], $px[-1];
}
my ($rss1, $hwm1) = TG::rss($worker);
printf "worker VmRSS %d -> %d kB, VmHWM %d -> %d kB\n", $rss0, $rss1, $hwm0, $hwm1;
$t->stop;
