#!/usr/bin/perl
# Duplicated traceparent (DESIGN.md 2 and 7.1 rule 8, issue 3 item 2):
# comma-joined values or repeated header lines. Members that do not parse
# are ignored; when the valid ones all share one trace id the first valid
# one wins (its parent id and flags), so ff-T-S1-01,00-T-S2-01 continues T
# with parent S2. Valid members with different trace ids, or no valid
# member, start a new trace and drop tracestate. Each repair is counted
# (tracegate_trace_repairs_total, tracegate.traceparent_repaired on the
# SERVER span) and logged at debug level with the values seen.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use TG;
use TGTrace;
TG::need_modules(qw(otlp status));

TGTrace::clean_env();

my $T  = '4bf92f3577b34da6a3ce929d0e0e4736';
my $T2 = '0af7651916cd43dd8448eb211c80319c';
my $P1 = '00f067aa0ba902b7';
my $P2 = 'b7ad6b7169203331';
my $P3 = '53995c3f42cd8ad8';

my ($t) = TGTrace::gateway(name => '30-dedupe', loglevel => 'debug',
                           otlp => "exporter = file\nschedule_delay = 100ms\n",
                           extra => "[status]\n");
my $spans = "$t->{dir}/logs/spans.jsonl";

my %server_parent;     # SERVER span id (from traceresponse) => [parent id expected, what, sampled, repaired]
my $repairs = 0;       # requests whose context was repaired

sub check {
    my ($hdrs, $what, %want) = @_;
    my ($r, $e) = TGTrace::via($t, '/service-a/d', headers => $hdrs);
    is($r && $r->{status}, 200, "$what: served");
    my @n = TGTrace::names($e, 'traceparent');
    is(scalar(@n), 1, "$what: the upstream got one traceparent line");
    my ($v, $tid, $pid, $fl) = TGTrace::tp(TGTrace::one($e, 'traceparent'));
    if ($want{trace}) {
        is($tid, $want{trace}, "$what: trace id $want{trace} kept");
        is($fl, $want{flags}, "$what: flags of the first value ($want{flags})");
        ok($pid, "$what: a parent id sent");
        isnt($pid, $_, "$what: parent id is our CLIENT span, not $_") for $P1, $P2, $P3;
        is(TGTrace::one($e, 'tracestate'), $want{ts}, "$what: tracestate kept") if exists $want{ts};
        my $tr = (TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse')))[1];
        is($tr, $want{trace}, "$what: traceresponse has the kept trace id");
    } else {
        ok($tid, "$what: a trace id sent");
        isnt($tid, $_, "$what: a new trace (not the incoming $_)") for $T, $T2;
        is($fl, '01', "$what: the root sampler decides");
        is(TGTrace::one($e, 'tracestate'), undef, "$what: tracestate dropped");
    }
    my $sid = (TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse')))[2];
    $server_parent{$sid} = [$want{parent} // '', $what, ($want{flags} // '01') eq '01',
                            $want{trace} ? 1 : 0] if $sid;
    $repairs++ if $want{trace};
    return $tid;
}

my $A1 = "00-$T-$P1-01";
my $A2 = "00-$T-$P2-00";
my $A3 = "00-$T-$P3-01";
my $B1 = "00-$T2-$P2-01";

# repaired: comma-joined
check([['traceparent', "$A1,$A2"], ['tracestate', 'a=1']], 'comma-joined, same trace (01 first)',
      trace => $T, flags => '01', parent => $P1, ts => 'a=1');
check([['traceparent', "$A2, $A1"]], 'comma-joined, same trace (00 first)',
      trace => $T, flags => '00', parent => $P2);
check([['traceparent', "$A1 , $A2 ,$A3"]], 'three comma-joined, same trace',
      trace => $T, flags => '01', parent => $P1);
check([['traceparent', "$A1,$A1"]], 'the same value twice',
      trace => $T, flags => '01', parent => $P1);

# repaired: repeated lines (mixed case names)
check([['traceparent', $A2], ['TraceParent', $A1], ['tracestate', 'b=2']],
      'two lines, same trace (00 first)', trace => $T, flags => '00', parent => $P2, ts => 'b=2');
check([['traceparent', $A1], ['traceparent', "$A2,$A3"]], 'lines and lists mixed, same trace',
      trace => $T, flags => '01', parent => $P1);

# repaired: invalid members are ignored, the first valid one wins
my $F1 = "ff-$T-$P1-01";
check([['traceparent', "$F1,$A2"], ['tracestate', 'a=1']], 'ff-T-S1-01,00-T-S2-00',
      trace => $T, flags => '00', parent => $P2, ts => 'a=1');
check([['traceparent', "$F1,00-$T-$P2-01"], ['tracestate', 'a=1']], 'ff-T-S1-01,00-T-S2-01',
      trace => $T, flags => '01', parent => $P2, ts => 'a=1');
check([['traceparent', $F1], ['traceparent', "00-$T-$P2-01"], ['tracestate', 'c=3']],
      'ff-T-S1-01 and 00-T-S2-01 on two lines', trace => $T, flags => '01', parent => $P2, ts => 'c=3');
check([['traceparent', "$F1,$A3,$A2"]], 'invalid, then two valid with one trace id',
      trace => $T, flags => '01', parent => $P3);
check([['traceparent', "ff-$T2-$P1-01,$A1"]], "an invalid member's other trace id does not count",
      trace => $T, flags => '01', parent => $P1);
check([['traceparent', "$A1,00-$T-$P2-01.x"], ['tracestate', 'a=1']], 'one invalid member (v00 suffix)',
      trace => $T, flags => '01', parent => $P1, ts => 'a=1');
check([['traceparent', "00-\U$T\E-$P2-01,$A1"]], 'one invalid member first (uppercase)',
      trace => $T, flags => '01', parent => $P1);
check([['traceparent', $A1], ['traceparent', "00-$T-" . ('0' x 16) . "-01"]],
      'second line invalid (zero parent id)', trace => $T, flags => '01', parent => $P1);
check([['traceparent', "$A1,"]], 'an empty member', trace => $T, flags => '01', parent => $P1);
check([['traceparent', $A1], ['traceparent', '']], 'an empty second line',
      trace => $T, flags => '01', parent => $P1);

# new trace: valid members with different trace ids, or none valid
check([['traceparent', "$A1,$B1"], ['tracestate', 'a=1']], 'comma-joined, different trace ids');
check([['traceparent', $B1], ['traceparent', $A1], ['tracestate', 'a=1']], 'two lines, different trace ids');
check([['traceparent', "$F1,$A1,$B1"], ['tracestate', 'a=1']],
      'invalid, then two valid with different trace ids');
check([['traceparent', $B1], ['traceparent', 'garbage'], ['traceparent', $A2]],
      'different trace ids on lines around an invalid one');
check([['traceparent', "$F1,garbage"], ['tracestate', 'a=1']], 'no valid member');

# the SERVER span's parent is the first value's parent id (or none)
{
    my $n = 2 * grep { $_->[2] } values %server_parent;
    my @s = TGTrace::wait_file_spans($spans, $n, 5);
    sleep 0.3;                   # anything unexpected would arrive too
    @s = TGTrace::file_spans($spans);
    is(scalar(@s), $n, "$n spans exported (SERVER + CLIENT per sampled request)");
    my %srv = map { ($_->{span_id} => $_) } grep { $_->{kind} == 2 } @s;
    for my $sid (sort keys %server_parent) {
        my ($parent, $what, $sampled, $repaired) = @{ $server_parent{$sid} };
        my $sp = $srv{$sid};
        unless ($sampled) {
            ok(!$sp, "$what: unsampled (first value 00): no SERVER span");
            next;
        }
        ok($sp, "$what: a SERVER span was exported") or next;
        is($sp->{parent_span_id}, $parent,
           "$what: SERVER span parent is " . ($parent || 'none'));
        is($sp->{attributes}{'tracegate.traceparent_repaired'}, $repaired ? 1 : undef,
           "$what: tracegate.traceparent_repaired " . ($repaired ? 'true' : 'absent'));
    }
}

# every repair counted, nothing else
{
    my $m = TG::http_get($t->{port}, '/_status/metrics', host => 'localhost');
    my ($n) = (($m && $m->{body}) // '') =~ /^tracegate_trace_repairs_total (\d+)$/m;
    is($n, $repairs, "tracegate_trace_repairs_total is $repairs");
}

# debug log: each repair and each conflict with the values seen
{
    my $log = $t->error_log;
    my @rep = grep { /\Q$P1\E|\Q$P2\E/ && /traceparent/ } split /\n/, $log;
    ok(scalar(@rep), 'debug log: lines about duplicated traceparent values');
    like($log, qr/\[debug\].*\Q$A1\E.*repair/i, 'debug log: a repair names the first value');
    like($log, qr/\[debug\].*\Q$A2\E.*repair/i, 'debug log: a repair names the second value');
    # a conflicting duplicate (new trace) is logged too, with its values
    # (tg_http_trace_start has a "none valid or conflicting: new trace"
    # message for it)
    ok($log =~ /\[debug\].*\Q$B1\E/, 'debug log: a conflict names the other trace id value')
        or diag("no debug line with $B1 in logs/error.log");
    my @conf = grep { /\Q$B1\E/ } split /\n/, $log;
    ok(!grep({ /repaired/ } @conf), 'debug log: a conflict is not called a repair')
        or diag(join "\n", @conf);
}
$t->stop;

# at info level the repair is not logged, and it still happens
{
    my ($t2) = TGTrace::gateway(name => '30-dedupe-info');
    my ($r, $e) = TGTrace::via($t2, '/service-a/d', headers => [['traceparent', "$A1,$A2"]]);
    is((TGTrace::tp(TGTrace::one($e, 'traceparent')))[1], $T, 'info level: repaired too');
    $t2->stop;
    unlike($t2->error_log, qr/\Q$P2\E/, 'info level: the values are not logged');
}

done_testing();
