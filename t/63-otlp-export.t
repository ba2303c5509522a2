#!/usr/bin/perl
# The exporter thread against a real OTLP/HTTP receiver (t/lib/TGOTLP.pm):
# retries on 503/429/dropped connections with Retry-After honoured, no
# retry on 400, the export_timeout budget, partial success, gzip, headers,
# http/json, the flush on stop, a dead collector, the file exporter, and
# drop counting when the ring is full. Driven by tests/tools/otlp_bench,
# which pushes spans through the same ring and exporter as a worker.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use File::Path qw(make_path remove_tree);
use IO::Socket::INET;
use Time::HiRes qw(time);
use TGOTLP;
use TG;
TG::need_modules(qw(otlp));

my $tool = "$TGOTLP::ROOT/objs/tests/tools/otlp_bench";
plan skip_all => "$tool not built (make)" unless -x $tool;

my $tmp = "$TGOTLP::ROOT/t/tmp/63-otlp-export.$$";
make_path($tmp);
my $case = 0;

# runs the tool, returns its counters (and the wall time in {wall})
sub bench {
    my (@args) = @_;
    my $t0 = time;
    my $out = `timeout 60 '$tool' @args 2>'$tmp/stderr.$case'`;
    my %r = map { /^(\w+)=(.*)$/ ? ($1, $2) : () } split /\n/, $out;
    $r{wall} = time - $t0;
    $r{rc} = $? >> 8;
    return \%r;
}

sub receiver {
    my (%o) = @_;
    $case++;
    return TGOTLP->new(dir => "$tmp/c$case", %o);
}

# every span id of 2xx-answered requests exactly once, and n of them
sub once_ok {
    my ($c, $n, $what) = @_;
    my $sum = 0;
    $sum += $_->{spans} for grep { $_->{status} =~ /^2/ } $c->requests;
    is($sum, $n, "$what: $n spans accepted by the receiver");
    SKIP: {
        skip 'protoc not installed', 1 unless TGOTLP::have_protoc();
        my %seen;
        $seen{ $_->{span_id} }++ for $c->spans;
        my @dup = grep { $seen{$_} > 1 } keys %seen;
        is(scalar(keys %seen), $n, "$what: every span")
            or diag(scalar(keys %seen) . " distinct, dups: @dup[0..4]");
        is(scalar(@dup), 0, "$what: no span twice")
            or diag("dups: @dup[0..4]");
    }
}

# 1. 503 then 200
{
    my $c = receiver(script => [ { status => 503 } ]);
    my $r = bench('-e', $c->url, qw(-n 200 -b 100 -i 1 -r 100 -d 50 -l));
    $c->stop;
    is($r->{exported}, 200, '503: all spans exported after a retry');
    is($r->{retried}, 1, '503: one retry');
    is($r->{dropped_failed}, 0, '503: nothing dropped');
    is($r->{requests}, 3, '503: three requests');
    is(join(',', map { $_->{status} } $c->requests), '503,200,200',
       '503: statuses seen');
    once_ok($c, 200, '503');
}

# 2. 429 with Retry-After: 1 (backoff alone would retry after ~50 ms)
{
    my $c = receiver(script => [ { status => 429, retry_after => 1 } ]);
    my $r = bench('-e', $c->url, qw(-n 100 -b 100 -i 1 -r 50 -l));
    $c->stop;
    my @q = $c->requests;
    is($r->{exported}, 100, '429: exported after the retry');
    is($r->{retried}, 1, '429: one retry');
    is(scalar(@q), 2, '429: two export requests')
        or diag(join ' ', map { "$_->{status}\@$_->{time}" } @q);
    cmp_ok(@q >= 2 ? $q[1]{time} - $q[0]{time} : -1, '>=', 0.95, '429: Retry-After honoured')
        or diag(join ' ', map { "$_->{status}\@$_->{time}" } @q);
    once_ok($c, 100, '429');
}

# 3. 400: not retried, dropped and counted
{
    my $c = receiver(script => [ { status => 400 } ]);
    my $r = bench('-e', $c->url, qw(-n 200 -b 100 -i 1 -r 50 -l));
    $c->stop;
    is($r->{dropped_failed}, 100, '400: the batch is dropped and counted');
    is($r->{exported}, 100, '400: the other batch exported');
    is($r->{retried}, 0, '400: no retry');
    is($r->{requests}, 2, '400: two requests');
    like(slurp("$tmp/stderr.$case"), qr/HTTP 400 .*not retryable/,
         '400: logged at warn with the reason');
}

# 4. connection closed without an answer, then 200
{
    my $c = receiver(script => [ { drop => 1 } ]);
    my $r = bench('-e', $c->url, qw(-n 100 -b 100 -i 1 -r 50 -l));
    $c->stop;
    is($r->{exported}, 100, 'dropped connection: exported after a retry');
    is($r->{retried}, 1, 'dropped connection: one retry');
    once_ok($c, 100, 'dropped connection');
}

# 5. always 503: retries stop at export_timeout
{
    my $c = receiver(default => { status => 503 });
    my $r = bench('-e', $c->url, qw(-n 100 -b 100 -i 1 -r 200 -x 1500 -l));
    $c->stop;
    is($r->{dropped_failed}, 100, 'retry budget: dropped after export_timeout');
    is($r->{exported}, 0, 'retry budget: nothing exported');
    cmp_ok($r->{requests}, '>=', 2, "retry budget: bounded attempts ($r->{requests})");
    cmp_ok($r->{requests}, '<=', 10, "retry budget: bounded attempts ($r->{requests})");
    ok($r->{wall} < 5, sprintf('retry budget: gave up in time (%.1fs)',
                               $r->{wall}));
}

# 6. partial success
{
    my $c = receiver(script => [ { status => 200, rejected => 3,
                                   message => 'too old' } ]);
    my $r = bench('-e', $c->url, qw(-n 100 -b 100 -l));
    $c->stop;
    is($r->{rejected}, 3, 'partial success: rejected counted');
    is($r->{exported}, 97, 'partial success: the rest exported');
    like(slurp("$tmp/stderr.$case"), qr/3 rejected: too old/,
         'partial success: error_message logged');
}

# 7. gzip and configured headers
{
    my $c = receiver();
    my $r = bench('-e', $c->url, qw(-n 300 -b 100 -z -l),
                  '-H', "'x-api-key: s3cret'", '-H', "'x-tenant: t1'");
    $c->stop;
    my @q = $c->requests;
    is($r->{exported}, 300, 'gzip: exported');
    ok(scalar(@q), 'gzip: export requests seen');
    is_deeply([map { $_->{ce} } @q], [('gzip') x @q], 'gzip: Content-Encoding');
    is_deeply([map { [$_->{'h.x-api-key'} // '', $_->{'h.x-tenant'} // ''] } @q], [(['s3cret', 't1']) x @q],
              'configured headers sent');
    like($q[0]{ua} // '', qr{^tracegate/}, 'User-Agent names the exporter');
    is($q[0]{path}, '/v1/traces', 'POST path');
    once_ok($c, 300, 'gzip');
}

# 8. http/json
{
    my $c = receiver();
    my $r = bench('-e', $c->url, qw(-n 150 -b 100 -j -l));
    $c->stop;
    my @q = $c->requests;
    is($r->{exported}, 150, 'http/json: exported');
    my $n = 0;
    for my $q (@q) {
        is($q->{ct}, 'application/json', 'http/json: Content-Type');
        my $j = JSON::PP->new->utf8->decode(slurp($q->{file}));
        $n += @{ $j->{resourceSpans}[0]{scopeSpans}[0]{spans} };
    }
    is($n, 150, 'http/json: every span in valid JSON');
}

# 9. flush on stop: fewer spans than a batch, long schedule_delay
{
    my $c = receiver();
    my $r = bench('-e', $c->url, qw(-n 37 -d 60000 -f 5000 -l));
    $c->stop;
    is($r->{exported}, 37, 'stop flushes the partial batch');
    is($r->{requests}, 1, 'in one request');
    ok($r->{wall} < 5, 'without waiting for schedule_delay');
}

# 10. no spans: no request at all
{
    my $c = receiver();
    my $r = bench('-e', $c->url, qw(-n 0 -d 100 -f 1000));
    $c->stop;
    is($r->{requests}, 0, 'never an empty export');
    is(scalar($c->requests), 0, 'receiver saw nothing');
}

# 11. collector down: connection refused, bounded by export_timeout/flush
{
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp') or die;
    my $port = $s->sockport;    # bound, not listening: refuses
    my $r = bench('-e', "http://127.0.0.1:$port/v1/traces",
                  qw(-n 500 -b 100 -r 100 -x 1000 -f 1500 -l));
    is($r->{exported}, 0, 'collector down: nothing exported');
    is($r->{dropped_failed}, 500, 'collector down: all counted as failed');
    ok($r->{wall} < 6, sprintf('collector down: stop is bounded (%.1fs)',
                               $r->{wall}));
    close $s;
}

# 12. request timeout (slow collector) is retried
{
    my $c = receiver(script => [ { status => 200, delay => 1 } ]);
    my $r = bench('-e', $c->url, qw(-n 100 -b 100 -i 1 -t 300 -r 50 -l));
    $c->stop;
    is($r->{exported}, 100, 'timeout: exported after a retry');
    is($r->{retried}, 1, 'timeout: retried once');
}

# 13. ring full: drops are counted, the producer never waits
{
    my $c = receiver(default => { status => 200, delay => 0.2 });
    my $r = bench('-e', $c->url, qw(-n 20000 -q 256 -b 128 -i 1 -f 3000));
    $c->stop;
    ok($r->{dropped_full} > 0, "ring full: drops counted ($r->{dropped_full})");
    is($r->{queued} + $r->{dropped_full}, 20000, 'queued + dropped = pushed');
    is($r->{exported} + $r->{dropped_failed}, $r->{queued},
       'every queued span is exported or counted as failed');
    ok($r->{push_seconds} < 1, "producer did not block ($r->{push_seconds}s)");
}

# 14. file exporter: OTLP/JSON lines
{
    my $f = "$tmp/spans.jsonl";
    my $r = bench('-o', 'file', '-e', $f, qw(-n 250 -b 100 -l));
    is($r->{exported}, 250, 'file: exported');
    open my $fh, '<', $f or die "$f: $!";
    my ($lines, $n) = (0, 0);
    while (my $l = <$fh>) {
        $lines++;
        my $j = JSON::PP->new->utf8->decode($l);
        $n += @{ $j->{resourceSpans}[0]{scopeSpans}[0]{spans} };
    }
    is($lines, 3, 'file: one line per batch');
    is($n, 250, 'file: every span written');
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or return '';
    local $/;
    return <$fh>;
}

remove_tree($tmp) if Test::More->builder->is_passing;
done_testing();
