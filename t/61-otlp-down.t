#!/usr/bin/perl
# A slow or dead collector must not change proxy latency (DESIGN.md 2
# Export, issue 4 items 4 and 7): the median latency of 200 proxied
# requests with a live receiver, with nothing listening at the endpoint and
# with a receiver that answers after 5 s, measured in this one test; no
# request stalls. A receiver answering 503 then 200 gets every span exactly
# once.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX ();
use Time::HiRes qw(time sleep);
use TG;
use TGTrace;
use TGOTLP;
TG::need_modules(qw(otlp));

TGTrace::clean_env();

my $N = 200;
my $up = TG::mock_upstream(name => 'a');
my $servers = "server = 127.0.0.1:$up->{port}\nkeepalive = 8\n";
my $k = 0;

sub gw {
    my ($endpoint, $more) = @_;
    $k++;
    my ($t) = TGTrace::gateway(name => "61-otlp-down-$k", up => $up, servers => $servers,
        otlp => "endpoint = $endpoint\nschedule_delay = 100ms\nmax_export_batch_size = 64\n"
              . ($more // ''));
    return $t;
}

# CPU seconds (all threads) used so far by the workers of $t
sub cpu {
    my ($t) = @_;
    my $sum = 0;
    for my $w ($t->workers) {
        my $st = TG::slurp("/proc/$w/stat") // next;
        my @f = split ' ', ($st =~ /\)\s(.*)$/s)[0];
        $sum += $f[11] + $f[12];            # utime + stime (fields 14, 15)
    }
    return $sum / POSIX::sysconf(POSIX::_SC_CLK_TCK());
}

# The three gateways are measured in interleaved rounds (20 requests each,
# one keep-alive connection per gateway) so that a load spike from outside
# the test hits them alike. Returns { name => { p50, p90, max, ok, cpu } }.
sub measure {
    my (%gw) = @_;
    my (%conn, %lat, %ok, %cpu0);
    for my $n (sort keys %gw) {
        $conn{$n} = TG::Conn->new($gw{$n}{port}) or die "connect $n: $@";
        TG::request_on($conn{$n}, '/service-a/warm', keepalive => 1, timeout => 5) for 1 .. 20;
        $cpu0{$n} = cpu($gw{$n});
    }
    for my $round (1 .. $N / 20) {
        for my $n (sort keys %gw) {
            for my $i (1 .. 20) {
                my $s = time;
                my $r = TG::request_on($conn{$n}, "/service-a/m$round.$i", keepalive => 1,
                                       timeout => 5);
                push @{ $lat{$n} }, (time - $s) * 1000;
                $ok{$n}++ if $r && $r->{status} == 200;
                unless ($r) {         # reconnect: a failure is counted, not fatal
                    $conn{$n}->close;
                    $conn{$n} = TG::Conn->new($gw{$n}{port}) or die "reconnect $n: $@";
                }
            }
        }
    }
    my %m;
    for my $n (sort keys %gw) {
        $conn{$n}->close;
        my @s = sort { $a <=> $b } @{ $lat{$n} };
        $m{$n} = { p50 => $s[int(@s / 2)], p90 => $s[int(@s * 0.9)], max => $s[-1],
                   ok => $ok{$n} // 0, cpu => cpu($gw{$n}) - $cpu0{$n} };
        note(sprintf("%-5s p50 %.2f ms, p90 %.2f ms, max %.1f ms, %d ok, worker cpu %.2f s",
                     $n, @{ $m{$n} }{qw(p50 p90 max ok cpu)}));
    }
    return \%m;
}

# ---------------------------------------------------------------------------
# live receiver (the baseline), nothing listening at the endpoint, and a
# receiver that answers after 5 s

my $live_c = TGOTLP->new(dir => "$TG::TMP/61-otlp-down.$$.live");
my $slow_c = TGOTLP->new(dir => "$TG::TMP/61-otlp-down.$$.slow",
                         default => { status => 200, delay => 5 });
my ($dead_port, $dead_sock) = TG::refused_port();
my %gw = (live => gw($live_c->url),
          dead => gw("http://127.0.0.1:$dead_port/v1/traces", "export_timeout = 1s\n"),
          slow => gw($slow_c->url));
my $m = measure(%gw);
my $base = $m->{live}{p50};

is($m->{live}{ok}, $N, "live receiver: $N answers 200");
my $got = TGTrace::wait_spans($live_c, 2 * ($N + 20), 10);
is($got, 2 * ($N + 20), 'live receiver: every span delivered');

for my $n (qw(dead slow)) {
    my $what = $n eq 'dead' ? 'dead collector' : 'slow (5 s) receiver';
    is($m->{$n}{ok}, $N, "$what: $N answers 200");
    ok($m->{$n}{p50} < 2 * $base + 2,
       sprintf('%s: median %.2f ms < 2 x %.2f + 2 ms (live)', $what, $m->{$n}{p50}, $base));
    ok($m->{$n}{max} < 1000, sprintf('%s: no request stalls (max %.1f ms)', $what, $m->{$n}{max}));
    ok($m->{$n}{cpu} < $m->{live}{cpu} + 1,
       sprintf('%s: the worker does not spin (%.2f s CPU, live %.2f s)', $what,
               $m->{$n}{cpu}, $m->{live}{cpu}));
}
ok(scalar($slow_c->requests) >= 1, 'slow receiver: exports were attempted meanwhile');

$gw{live}->stop(10);
$live_c->stop;
{
    my $s = time;
    my $gone = $gw{dead}->stop(15);
    my $d = time - $s;
    ok($gone, sprintf('dead collector: a graceful stop ends by itself (%.1f s)', $d));
    ok($d < 10, 'dead collector: the flush on stop is bounded');
}
close $dead_sock;
$gw{slow}->stop(1, 'TERM');
$slow_c->stop;

# ---------------------------------------------------------------------------
# 503 then 200: each span arrives exactly once

{
    my $c = TGOTLP->new(dir => "$TG::TMP/61-otlp-down.$$.retry", script => [{ status => 503 }]);
    my $t2 = gw($c->url);
    my %sid;
    for my $i (1 .. 5) {
        my ($r, $e) = TGTrace::via($t2, "/service-a/r$i");
        my @tr = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
        $sid{ $tr[2] } = 1 if @tr;
        $sid{ (TGTrace::tp(TGTrace::one($e, 'traceparent')))[2] // 'x' } = 1;
    }
    is(scalar(keys %sid), 10, '503 then 200: 10 span ids known from the requests');
    my $n = TGTrace::wait_spans($c, 10, 10);
    sleep 0.5;                       # a duplicate would arrive by now
    $t2->stop(10);
    $c->stop;
    my @q = $c->requests;
    is($q[0] && $q[0]{status}, 503, '503 then 200: the first export was answered 503');
    ok(@q >= 2, '503 then 200: retried');
    my %seen;
    $seen{ $_->{span_id} }++ for $c->spans;          # 2xx-answered requests only
    is(scalar(keys %seen), 10, '503 then 200: 10 distinct spans accepted');
    is(scalar(grep { $seen{$_} != 1 } keys %seen), 0, '503 then 200: none twice');
    is(scalar(grep { !$sid{$_} } keys %seen), 0, '503 then 200: exactly the spans of our requests');
    my %first;
    $first{ $_->{span_id} }++ for TGOTLP::decode_file($q[0]{file});
    ok(!grep({ !$seen{$_} } keys %first), '503 then 200: the refused batch was the one re-sent');
}

done_testing();
