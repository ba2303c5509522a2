#!/usr/bin/perl
# Other propagation formats (issue 3 item 5, DESIGN.md 7.3): B3 single, B3
# multi and Jaeger are extracted when W3C is absent (in the configured
# order, the first valid context wins) and injected in their own format;
# propagators we do not speak pass through untouched; trust_incoming_context
# = off restarts the trace and records the incoming context as a span link
# (checked at a real OTLP receiver).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use TG;
use TGTrace;
use TGOTLP;
TG::need_modules(qw(otlp));

TGTrace::clean_env();

my $T   = '4bf92f3577b34da6a3ce929d0e0e4736';
my $T2  = '0af7651916cd43dd8448eb211c80319c';
my $S   = '00f067aa0ba902b7';
my $S2  = 'b7ad6b7169203331';
my $T64 = 'a3ce929d0e0e4736';

my $up = TG::mock_upstream(name => 'a');

# all formats injected with one trace id, one span id (the CLIENT span) and
# one sampled state; returns (trace id, span id, sampled '0'/'1')
sub injected_all {
    my ($e, $what) = @_;
    my @tp = TGTrace::tp(TGTrace::one($e, 'traceparent'));
    my $b3 = TGTrace::one($e, 'b3') // '';
    my ($mt, $ms, $msamp) = map { TGTrace::one($e, $_) // '' } qw(X-B3-TraceId X-B3-SpanId X-B3-Sampled);
    my $j = TGTrace::one($e, 'uber-trace-id') // '';
    my ($bt, $bs, $bf) = $b3 =~ /^([0-9a-f]{32})-([0-9a-f]{16})-([01])$/;
    my ($jt, $js, $jf) = $j =~ /^([0-9a-f]{32}):([0-9a-f]{16}):0:(0[01])$/;
    my $ok = @tp && $bt && $jt && $mt =~ /^[0-9a-f]{32}$/ && $ms =~ /^[0-9a-f]{16}$/
          && $msamp =~ /^[01]$/;
    ok($ok, "$what: traceparent, b3 <32>-<16>-<0|1>, X-B3-*, uber-trace-id <32>:<16>:0:<2> injected")
        or diag("traceparent " . (TGTrace::one($e, 'traceparent') // 'none')
                . "; b3 $b3; X-B3 $mt/$ms/$msamp; uber $j");
    return () unless $ok;
    my $flag = $tp[3] eq '01' ? '1' : '0';
    is_deeply([$bt, $mt, $jt], [($tp[1]) x 3], "$what: one trace id in every format (b3, X-B3, uber)");
    is_deeply([$bs, $ms, $js], [($tp[2]) x 3], "$what: one span id in every format (b3, X-B3, uber)");
    is_deeply([$bf, $msamp, $jf], [$flag, $flag, "0$flag"],
              "$what: one sampled state in every format (b3, X-B3, uber)");
    my @n = map { scalar TGTrace::names($e, $_) } qw(b3 X-B3-TraceId X-B3-SpanId X-B3-Sampled uber-trace-id);
    is("@n", '1 1 1 1 1', "$what: each header once (incoming ones replaced)");
    is(scalar(TGTrace::names($e, 'X-B3-ParentSpanId')) + scalar(TGTrace::names($e, 'X-B3-Flags')), 0,
       "$what: incoming X-B3-ParentSpanId / X-B3-Flags not forwarded");
    return ($tp[1], $tp[2], $flag);
}

# ---------------------------------------------------------------------------
# A: tracecontext,b3,b3multi,jaeger

my ($ta) = TGTrace::gateway(name => '31-prop-all', up => $up,
                            trace => "propagators = tracecontext,b3,b3multi,jaeger\n");
my @cases = (
    # headers, what, expected trace id (undef: new), sampled
    [[['b3', "$T-$S-1"]],                          'b3 sampled',           $T, '1'],
    [[['b3', "$T-$S-0"]],                          'b3 not sampled',       $T, '0'],
    [[['b3', "$T-$S"]],                            'b3 deferred',          $T, '1'],
    [[['b3', "$T-$S-d"]],                          'b3 debug',             $T, '1'],
    [[['b3', "$T-$S-1-$S2"]],                      'b3 with parent',       $T, '1'],
    [[['b3', "$T64-$S-1"]],                        'b3 64-bit trace id',   ('0' x 16) . $T64, '1'],
    [[['B3', " $T-$S-0 "]],                        'B3 name case, OWS',    $T, '0'],
    [[['b3', '0']],                                'b3: 0 (deny)',         undef, '0'],
    [[['X-B3-Sampled', '0']],                      'X-B3-Sampled: 0 alone (deny)', undef, '0'],
    [[['b3', '1']],                                'b3: 1 alone (cannot force)', undef, '1'],
    [[['b3', "\U$T\E-$S-1"]],                      'b3 uppercase',         undef, '1'],
    [[['b3', ('0' x 32) . "-$S-1"]],               'b3 zero trace id',     undef, '1'],
    [[['X-B3-TraceId', $T], ['X-B3-SpanId', $S], ['X-B3-Sampled', '1']],
                                                   'B3 multi sampled',     $T, '1'],
    [[['X-B3-TraceId', $T], ['X-B3-SpanId', $S], ['X-B3-Sampled', '0']],
                                                   'B3 multi not sampled', $T, '0'],
    [[['x-b3-traceid', $T], ['x-b3-spanid', $S], ['x-b3-sampled', 'true']],
                                                   'B3 multi true',        $T, '1'],
    [[['X-B3-TraceId', $T], ['X-B3-SpanId', $S], ['X-B3-ParentSpanId', $S2], ['X-B3-Flags', '1']],
                                                   'B3 multi debug flag',  $T, '1'],
    [[['X-B3-TraceId', $T64], ['X-B3-SpanId', $S]],'B3 multi 64-bit, deferred', ('0' x 16) . $T64, '1'],
    [[['X-B3-TraceId', $T]],                       'B3 multi without span id', undef, '1'],
    [[['b3', "$T2-$S2-1"], ['X-B3-TraceId', $T], ['X-B3-SpanId', $S], ['X-B3-Sampled', '0']],
                                                   'b3 single wins over multi', $T2, '1'],
    [[['uber-trace-id', "$T:$S:0:01"]],            'jaeger sampled',       $T, '1'],
    [[['uber-trace-id', "$T:$S:0:00"]],            'jaeger not sampled',   $T, '0'],
    [[['uber-trace-id', "$T:$S:0:1"]],             'jaeger flags 1 digit', $T, '1'],
    [[['uber-trace-id', "$T:$S:0:03"]],            'jaeger debug',         $T, '1'],
    [[['uber-trace-id', "abc:def:0:1"]],           'jaeger short ids',     ('0' x 29) . 'abc', '1'],
    [[['uber-trace-id', "$T%3A$S%3A0%3A01"]],      'jaeger URL-encoded',   $T, '1'],
    [[['uber-trace-id', ('0' x 32) . ":$S:0:01"]], 'jaeger zero trace id', undef, '1'],
    [[['uber-trace-id', "$T:$S:01"]],              'jaeger three fields',  undef, '1'],
    [[['traceparent', "00-$T-$S-01"], ['b3', "$T2-$S2-0"], ['uber-trace-id', "$T2:$S2:0:00"]],
                                                   'W3C and b3 and jaeger: W3C first', $T, '1'],
    [[['traceparent', "00-$T-" . ('0' x 16) . "-01"], ['b3', "$T2-$S2-0"]],
                                                   'invalid W3C, valid b3: b3',      $T2, '0'],
    [[['b3', "$T2-$S2-1"], ['uber-trace-id', "$T:$S:0:00"]],
                                                   'b3 before jaeger',     $T2, '1'],
);
for my $c (@cases) {
    my ($h, $what, $want_t, $want_s) = @$c;
    my ($r, $e) = TGTrace::via($ta, '/service-a/p', headers => $h);
    is($r && $r->{status}, 200, "$what: served");
    my ($tid, $sid, $fl) = injected_all($e, $what);
    next unless $tid;
    if (defined $want_t) {
        is($tid, $want_t, "$what: trace id continued");
    } else {
        ok(!grep({ $tid eq $_ } $T, $T2, ('0' x 16) . $T64), "$what: a new trace");
    }
    isnt($sid, $_, "$what: span id is ours, not $_") for $S, $S2;
    is($fl, $want_s, "$what: sampled $want_s");
}
{
    # tracestate belongs to traceparent: not kept when the context came from b3
    my ($r, $e) = TGTrace::via($ta, '/service-a/p',
                               headers => [['b3', "$T-$S-1"], ['tracestate', 'a=1']]);
    is(TGTrace::one($e, 'tracestate'), undef, 'b3 context: tracestate not sent');
    ($r, $e) = TGTrace::via($ta, '/service-a/p',
                            headers => [['traceparent', "00-$T-$S-01"], ['tracestate', 'a=1'],
                                        ['b3', "$T2-$S2-1"]]);
    is(TGTrace::one($e, 'tracestate'), 'a=1', 'W3C context: tracestate sent');
}
$ta->stop;

# ---------------------------------------------------------------------------
# B: b3,tracecontext: b3 first; only b3 and traceparent injected

{
    my ($tb) = TGTrace::gateway(name => '31-prop-b3first', up => $up,
                                trace => "propagators = b3,tracecontext\n");
    my ($r, $e) = TGTrace::via($tb, '/service-a/p',
                               headers => [['traceparent', "00-$T-$S-01"], ['b3', "$T2-$S2-0"]]);
    my @tp = TGTrace::tp(TGTrace::one($e, 'traceparent'));
    is($tp[1], $T2, 'b3,tracecontext: b3 wins');
    is($tp[3], '00', 'b3,tracecontext: b3 sampling state');
    like(TGTrace::one($e, 'b3') // '', qr/^$T2-$tp[2]-0$/, 'b3,tracecontext: b3 injected with our span id');
    is(scalar(TGTrace::names($e, 'X-B3-TraceId')) + scalar(TGTrace::names($e, 'uber-trace-id')), 0,
       'b3,tracecontext: no X-B3-* nor uber-trace-id injected');
    ($r, $e) = TGTrace::via($tb, '/service-a/p', headers => [['traceparent', "00-$T-$S-01"]]);
    @tp = TGTrace::tp(TGTrace::one($e, 'traceparent'));
    is($tp[1], $T, 'b3,tracecontext: W3C alone is used');
    like(TGTrace::one($e, 'b3') // '', qr/^$T-$tp[2]-1$/, 'b3,tracecontext: b3 from the W3C context');
    $tb->stop;
}

# ---------------------------------------------------------------------------
# C: b3multi only; D: jaeger only (traceparent is not ours: untouched)

{
    my ($tc) = TGTrace::gateway(name => '31-prop-b3multi', up => $up,
                                trace => "propagators = b3multi\n");
    my ($r, $e) = TGTrace::via($tc, '/service-a/p',
                               headers => [['X-B3-TraceId', $T], ['X-B3-SpanId', $S], ['X-B3-Sampled', '1']]);
    is(TGTrace::one($e, 'X-B3-TraceId'), $T, 'b3multi: X-B3-TraceId continued');
    my $sp = TGTrace::one($e, 'X-B3-SpanId') // '';
    like($sp, qr/^[0-9a-f]{16}$/, 'b3multi: X-B3-SpanId, 16 hex digits');
    isnt($sp, $S, 'b3multi: X-B3-SpanId is ours');
    is(TGTrace::one($e, 'X-B3-Sampled'), '1', 'b3multi: X-B3-Sampled: 1');
    is(scalar(TGTrace::names($e, 'traceparent')) + scalar(TGTrace::names($e, 'b3'))
       + scalar(TGTrace::names($e, 'uber-trace-id')), 0, 'b3multi: nothing else injected');
    ($r, $e) = TGTrace::via($tc, '/service-a/p', headers => [['traceparent', "00-$T2-$S2-01"]]);
    is(TGTrace::one($e, 'traceparent'), "00-$T2-$S2-01",
       'b3multi: a traceparent passes through untouched (not a propagator here)');
    my $mt = TGTrace::one($e, 'X-B3-TraceId') // '';
    like($mt, qr/^[0-9a-f]{32}$/, 'b3multi: X-B3-TraceId, 32 hex digits');
    isnt($mt, $T2, 'b3multi: ... and is not extracted');
    $tc->stop;

    my ($td) = TGTrace::gateway(name => '31-prop-jaeger', up => $up,
                                trace => "propagators = jaeger\n");
    ($r, $e) = TGTrace::via($td, '/service-a/p', headers => [['uber-trace-id', "$T:$S:0:01"]]);
    my $j = TGTrace::one($e, 'uber-trace-id') // '';
    my ($jt, $js, $jf) = $j =~ /^([0-9a-f]{32}):([0-9a-f]{16}):0:([0-9a-f]{2})$/;
    ok($jt, 'jaeger: <32>:<16>:0:<2>') or diag("uber-trace-id: $j");
    is($jt, $T, 'jaeger: <trace> continued');
    isnt($js, $S, 'jaeger: <our span>');
    is($jf, '01', 'jaeger: flags 01');
    is(scalar(TGTrace::names($e, 'traceparent')) + scalar(TGTrace::names($e, 'b3')), 0,
       'jaeger: nothing else injected');
    ($r, $e) = TGTrace::via($td, '/service-a/p', headers => [['b3', "$T2-$S2-1"]]);
    is(TGTrace::one($e, 'b3'), "$T2-$S2-1", 'jaeger: a b3 header passes through untouched');
    $td->stop;
}

# ---------------------------------------------------------------------------
# E: trust_incoming_context = off on one route; spans to a real receiver

SKIP: {
    skip 'protoc not installed', 1 unless TGOTLP::have_protoc();
    my $c = TGOTLP->new(dir => "$TG::TMP/31-propagators.$$.otlp");
    my ($te) = TGTrace::gateway(
        name => '31-prop-trust', up => $up,
        otlp => "endpoint = " . $c->url . "\nschedule_delay = 100ms\n",
        extra => "[route /edge]\nupstream = a\ntrust_incoming_context = off\n");
    my %server;   # SERVER span id => [what, incoming trace, incoming span]
    my $go = sub {
        my ($path, $h, $what) = @_;
        my ($r, $e) = TGTrace::via($te, $path, headers => $h);
        my @tp = TGTrace::tp(TGTrace::one($e, 'traceparent'));
        my @tr = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
        $server{ $tr[2] } = [$what, $tp[1]] if @tr;
        return ($e, @tp);
    };
    my ($e, @tp) = $go->('/edge/x', [['traceparent', "00-$T-$S-01"], ['tracestate', 'a=1']], 'edge 01');
    ok(@tp, 'trust off: a traceparent sent');
    isnt($tp[1], $T, 'trust off: a new trace id');
    isnt($tp[2], $S, 'trust off: not the incoming parent');
    is(TGTrace::one($e, 'tracestate'), undef, 'trust off: tracestate dropped');
    ($e, @tp) = $go->('/edge/x', [['traceparent', "00-$T-$S-00"]], 'edge 00');
    ok(@tp, 'trust off, incoming 00: a traceparent sent');
    isnt($tp[1], $T, 'trust off, incoming 00: a new trace id');
    is($tp[3], '01', 'trust off, incoming 00: the root sampler decides, not the client');
    ($e, @tp) = $go->('/edge/x', [], 'edge none');
    ok(@tp, 'trust off, no context: a trace');
    ($e, @tp) = $go->('/service-a/x', [['traceparent', "00-$T-$S-01"], ['tracestate', 'a=1']], 'trusted');
    is($tp[1], $T, 'trust on (default): trace continued');
    is(TGTrace::one($e, 'tracestate'), 'a=1', 'trust on: tracestate kept');

    my $n = TGTrace::wait_spans($c, 8, 5);
    is($n, 8, 'receiver: 8 spans (SERVER + CLIENT for 4 requests)');
    $te->stop;
    $c->stop;
    my %srv = map { ($_->{span_id} => $_) } grep { $_->{kind} eq 'SPAN_KIND_SERVER' } $c->spans;
    for my $sid (sort keys %server) {
        my ($what, $tid) = @{ $server{$sid} };
        my $s = $srv{$sid};
        ok($s, "$what: SERVER span exported") or next;
        is($s->{trace_id}, $tid, "$what: SERVER span in the trace sent upstream");
        my @l = @{ $s->{links} };
        if ($what =~ /^edge (0[01])$/) {
            is($s->{parent_span_id}, '', "$what: SERVER span is a root");
            is_deeply([map { "$_->{trace_id}/$_->{span_id}" } @l], ["$T/$S"],
                      "$what: one link to the incoming context $T/$S")
                or diag('links: ' . join(' ', map { "$_->{trace_id}/$_->{span_id}" } @l));
        } elsif ($what eq 'edge none') {
            is(scalar(@l), 0, "$what: no link without an incoming context");
        } else {
            is($s->{parent_span_id}, $S, "$what: SERVER parent is the incoming span");
            is(scalar(@l), 0, "$what: no link");
        }
    }
}

done_testing();
