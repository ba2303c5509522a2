#!/usr/bin/perl
# W3C Trace Context on the wire (DESIGN.md 7.1, issue 3 items 1, 3, 4):
# traceparent as the upstream receives it (new trace, continued trace,
# each invalid form, future versions, OWS, header-name case, flags),
# tracestate (passed, combined, dropped, truncated by whole members, never
# empty, never without a valid traceparent) and the traceresponse and
# X-Trace-ID response headers.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use TG;
use TGTrace;
TG::need_modules(qw(otlp traces));

TGTrace::clean_env();

my $T = '4bf92f3577b34da6a3ce929d0e0e4736';
my $P = '00f067aa0ba902b7';
my $VALID = "00-$T-$P-01";

# the mock: /own-tr answers with its own traceresponse and X-Trace-ID;
# /flaky/ resets the first connection after reading the request (recording
# the traceparent it saw), then echoes
my $flag = "$TG::TMP/20-traceparent.$$.flaky";
unlink $flag;
sub handler {
    my ($req) = @_;
    if ($req->{path} =~ m{/own-tr$}) {
        return { headers => [['traceresponse', "00-$T-$P-01"],
                             ['X-Trace-ID', 'from-upstream']],
                 body => TG::echo_text($req) };
    }
    if ($req->{path} =~ m{/flaky/} && !-e $flag) {
        TG::spew($flag, ($req->{h}{traceparent} || [''])->[0]);
        return { rst => 1 };
    }
    return undef;
}

my ($t) = TGTrace::gateway(name => '20-traceparent', handler => \&handler);
my $cur = $t;

# checks the upstream got exactly one traceparent, named "traceparent", in
# v00 form; returns (trace id, parent id, flags) or ()
sub sent_tp {
    my ($e, $what) = @_;
    my @n = TGTrace::names($e, 'traceparent');
    my $v = TGTrace::one($e, 'traceparent');
    my @f = TGTrace::tp($v);
    is("@n", 'traceparent', "$what: upstream got one 'traceparent' line");
    ok(@f, "$what: upstream got one 'traceparent: 00-<32>-<16>-<2>'")
        or diag("names: @n; value: " . ($v // 'none'));
    return @f[1 .. 3] if @f;
    return ();
}

sub get {
    my ($hdrs, $path) = @_;
    return TGTrace::via($cur, $path // '/service-a/tp', headers => $hdrs);
}

# ---------------------------------------------------------------------------
# no incoming context: a new sampled trace

my (%tids, %pids);
for my $i (1 .. 3) {
    my ($r, $e) = get([]);
    is($r && $r->{status}, 200, "no context $i: 200");
    my ($tid, $pid, $fl) = sent_tp($e, "no context $i");
    next unless $tid;
    isnt($tid, '0' x 32, "no context $i: trace id not zero");
    isnt($pid, '0' x 16, "no context $i: parent id not zero");
    is($fl, '01', "no context $i: sampled (parentbased_always_on root)");
    $tids{$tid}++;
    $pids{$pid}++;
    my $tr = TGTrace::rhdr1($r, 'traceresponse');
    my @f = TGTrace::tp($tr);
    ok(@f, "no context $i: traceresponse 00-<32>-<16>-<2>")
        or diag('traceresponse: ' . ($tr // 'none'));
    is($f[1], $tid, "no context $i: traceresponse has the same trace id");
    is($f[3], $fl, "no context $i: traceresponse has the same flags");
    isnt($f[2], $pid, "no context $i: traceresponse carries the SERVER span id, not the CLIENT one");
    isnt($f[2], '0' x 16, "no context $i: traceresponse span id is not zero");
    my $x = TGTrace::rhdr1($r, 'X-Trace-ID');
    is($x, $tid, "no context $i: X-Trace-ID is the trace id");
}
is(scalar(keys %tids), 3, 'no context: a different trace id per request');
is(scalar(keys %pids), 3, 'no context: a different parent id per request');

# a retried attempt gets its own CLIENT span id
{
    my ($r, $e) = get([['traceparent', $VALID]], '/service-a/flaky/x');
    is($r && $r->{status}, 200, 'retry: answered after the reset attempt');
    my ($tid, $pid) = sent_tp($e, 'retry: second attempt');
    my @first = TGTrace::tp(TG::slurp($flag));
    ok(@first, 'retry: the first attempt carried a v00 traceparent')
        or diag('first: ' . (TG::slurp($flag) // 'none'));
    if (@first && $tid) {
        is($first[1], $T, 'retry: first attempt continued the trace');
        is($tid, $T, 'retry: second attempt continued the trace');
        isnt($first[2], $pid, 'retry: parent id differs per attempt');
        isnt($first[2], $P, 'retry: the first is not the incoming parent id');
        isnt($pid, $P, 'retry: the second is not the incoming parent id');
    }
    unlink $flag;
}

# ---------------------------------------------------------------------------
# valid incoming context

{
    my ($r, $e) = get([['traceparent', $VALID], ['tracestate', 'congo=t61rcWkgMzE']]);
    my ($tid, $pid, $fl) = sent_tp($e, 'valid');
    is($tid, $T, 'valid: trace id kept');
    ok($pid, 'valid: a parent id sent');
    isnt($pid, $P, 'valid: parent id replaced by our CLIENT span id');
    is($fl, '01', 'valid: sampled flag kept');
    is(TGTrace::one($e, 'tracestate'), 'congo=t61rcWkgMzE', 'valid: tracestate passed unchanged');
    my @f = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
    ok(@f, 'valid: traceresponse 00-<32>-<16>-<2>');
    is($f[1], $T, 'valid: traceresponse has the incoming trace id');
    is($f[3], '01', 'valid: traceresponse has the incoming flags');
    isnt($f[2], $P, 'valid: traceresponse span id is not the parent id');
    isnt($f[2], $pid, 'valid: traceresponse span id is not the CLIENT id');
    is(TGTrace::rhdr1($r, 'X-Trace-ID'), $T, 'valid: X-Trace-ID is the continued trace id');
}

# flags: only the sampled bit travels
for my $c (['00', '00'], ['01', '01'], ['03', '01'], ['ff', '01'], ['02', '00'],
           ['fe', '00'], ['09', '01']) {
    my ($in, $want) = @$c;
    my ($r, $e) = get([['traceparent', "00-$T-$P-$in"]]);
    my ($tid, $pid, $fl) = sent_tp($e, "flags $in");
    is($tid, $T, "flags $in: trace id kept");
    is($fl, $want, "flags $in: sent as $want (other bits dropped)");
    my @f = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
    is($f[3], $want, "flags $in: traceresponse flags $want");
}

# header name case and OWS
for my $name ('TraceParent', 'TRACEPARENT', 'traceparent') {
    my ($r, $e) = get("$name: $VALID\r\n");
    my ($tid) = sent_tp($e, "name $name");
    is($tid, $T, "name $name: trace id kept (case-insensitive)");
}
for my $c (["  $VALID", 'leading spaces'], ["$VALID   ", 'trailing spaces'],
           ["\t$VALID\t", 'tabs'], [" \t $VALID \t ", 'mixed OWS']) {
    my ($v, $what) = @$c;
    my ($r, $e) = get("traceparent:$v\r\ntracestate: k=v\r\n");
    my ($tid, $pid) = sent_tp($e, "OWS $what");
    is($tid, $T, "OWS $what: trace id kept");
    is(TGTrace::one($e, 'tracestate'), 'k=v', "OWS $what: tracestate kept");
}

# wrong names are simply absent
for my $name ('trace-parent', 'trace.parent', 'traceparent2') {
    my ($r, $e) = get("$name: $VALID\r\n");
    my ($tid) = sent_tp($e, "wrong name $name");
    ok($tid, "wrong name $name: a trace id sent");
    isnt($tid, $T, "wrong name $name: a new trace");
}

# ---------------------------------------------------------------------------
# invalid forms: a new trace, tracestate dropped, the request still served

my $T31 = substr($T, 0, 31);
my $P15 = substr($P, 0, 15);
my @invalid = (
    ["00-\U$T\E-$P-01",                 'uppercase trace id'],
    ["00-$T-\U$P\E-01",                 'uppercase parent id'],
    ["00-$T-$P-0A",                     'uppercase flags'],
    ["0A-$T-$P-01",                     'uppercase version'],
    ["ff-$T-$P-01",                     'version ff'],
    ["00-" . ('0' x 32) . "-$P-01",     'zero trace id'],
    ["00-$T-" . ('0' x 16) . "-01",     'zero parent id'],
    ["00-$T31-$P-01",                   'trace id 31 hex'],
    ["00-${T}a-$P-01",                  'trace id 33 hex'],
    ["00-$T-$P15-01",                   'parent id 15 hex'],
    ["00-$T-${P}a-01",                  'parent id 17 hex'],
    ["00-$T-$P-1",                      'flags 1 hex'],
    ["00-$T-$P-011",                    'flags 3 hex'],
    ["0-$T-$P-01",                      'version 1 hex'],
    ["00-$T-$P-01.",                    'v00 with -01.'],
    ["00-$T-$P-01-xyz",                 'v00 with -01-xyz'],
    ["00-$T-$P-01-",                    'v00 with trailing -'],
    ["00-" . substr($T, 0, 31) . "g-$P-01", 'non-hex in trace id'],
    ["00-$T-" . substr($P, 0, 15) . "x-01", 'non-hex in parent id'],
    ["00-$T-$P-0x",                     'non-hex in flags'],
    ["zz-$T-$P-01",                     'non-hex version'],
    ["00_${T}_${P}_01",                 'wrong separators'],
    ["00-$T-$P",                        'no flags'],
    ["",                                'empty value'],
    ["cc-$T-$P-01.future",              'version cc with -01.future'],
    ["cc-$T-$P-0",                      'version cc shorter than 55'],
    ["cc-\U$T\E-$P-01-future",          'version cc with uppercase trace id'],
);
for my $c (@invalid) {
    my ($v, $what) = @$c;
    my ($r, $e) = get([['traceparent', $v], ['tracestate', 'foo=bar']]);
    is($r && $r->{status}, 200, "invalid ($what): request served");
    my ($tid, $pid, $fl) = sent_tp($e, "invalid ($what)");
    ok($tid, "invalid ($what): a trace id sent") or diag("sent none for '$v'");
    isnt($tid, $T, "invalid ($what): a new trace id") or diag("sent $tid for '$v'");
    ok($pid, "invalid ($what): a parent id sent");
    isnt($pid, $P, "invalid ($what): not the incoming parent id");
    is($fl, '01', "invalid ($what): root sampler decides (sampled)");
    is(TGTrace::one($e, 'tracestate'), undef, "invalid ($what): tracestate dropped");
    my @f = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
    is($f[1], $tid, "invalid ($what): traceresponse has the new trace id");
}

# future versions: parsed by their first four fields, sent on as 00
for my $c (["cc-$T-$P-01-future", '01', 'cc-...-01-future'],
           ["cc-$T-$P-01",        '01', 'cc-... exactly 55'],
           ["cc-$T-$P-00-x-y-z",  '00', 'cc-...-00-x-y-z'],
           ["01-$T-$P-01-",       '01', '01-...-01-']) {
    my ($v, $want, $what) = @$c;
    my ($r, $e) = get([['traceparent', $v], ['tracestate', 'foo=bar']]);
    my ($tid, $pid, $fl) = sent_tp($e, "future ($what)");
    is($tid, $T, "future ($what): trace id kept");
    ok($pid, "future ($what): a parent id sent");
    isnt($pid, $P, "future ($what): parent id replaced");
    is($fl, $want, "future ($what): flags $want");
    is(TGTrace::one($e, 'tracestate'), 'foo=bar', "future ($what): tracestate kept");
}

# ---------------------------------------------------------------------------
# tracestate

sub ts_case {
    my ($hdrs, $what, $want) = @_;
    my ($r, $e) = get($hdrs);
    my ($tid) = sent_tp($e, "tracestate $what");
    is(TGTrace::one($e, 'tracestate'), $want,
       "tracestate $what: " . (defined $want ? 'sent as expected' : 'not sent'));
    my @n = TGTrace::names($e, 'tracestate');
    ok(@n <= 1, "tracestate $what: at most one line upstream");
    return $e;
}

my @m32 = map { "k$_=v$_" } 1 .. 32;
my @m33 = map { "k$_=v$_" } 1 .. 33;
ts_case([['traceparent', $VALID], ['tracestate', 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE']],
        'two members', 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE');
ts_case([['traceparent', $VALID], ['tracestate', 'foo=1'], ['tracestate', 'bar=2']],
        'two lines', 'foo=1,bar=2');
ts_case([['tracestate', 'bar=2'], ['traceparent', $VALID], ['tracestate', 'foo=1'],
         ['tracestate', 'baz=3']],
        'three lines in order', 'bar=2,foo=1,baz=3');
ts_case([['traceparent', $VALID], ['tracestate', join(',', @m32)]],
        '32 members', join(',', @m32));
ts_case([['traceparent', $VALID], ['tracestate', join(',', @m33)]], '33 members', undef);
ts_case([['traceparent', $VALID], ['tracestate', join(',', @m32[0 .. 19])],
         ['tracestate', join(',', @m33[20 .. 32])]], '33 members over two lines', undef);
ts_case([['traceparent', $VALID], ['tracestate', 'Foo=1']], 'uppercase key', undef);
ts_case([['traceparent', $VALID], ['tracestate', 'foo=1,Bar=2']], 'uppercase second key', undef);
# duplicated keys (test_tracestate_duplicated_keys): the list is inherited
# with the first member of each key
ts_case([['traceparent', $VALID], ['tracestate', 'foo=1,foo=1']], 'identical duplicates', 'foo=1');
ts_case([['traceparent', $VALID], ['tracestate', 'foo=1,foo=2']], 'duplicate key', 'foo=1');
ts_case([['traceparent', $VALID], ['tracestate', 'foo=1'], ['tracestate', 'foo=2']],
        'duplicate key across lines', 'foo=1');
ts_case([['traceparent', $VALID], ['tracestate', 'a=1,foo=1,b=2'], ['tracestate', 'foo=2,c=3']],
        'duplicate key among others', 'a=1,foo=1,b=2,c=3');
# the current key grammar: '@' is a keychar, one 256 limit for the key
ts_case([['traceparent', $VALID], ['tracestate', 'foo@=1,bar=2']], "'\@' last in a key",
        'foo@=1,bar=2');
ts_case([['traceparent', $VALID], ['tracestate', 'foo=1'], ['tracestate', ('t' x 242) . '@v=1']],
        "242 x t + '\@v' next to foo=1", 'foo=1,' . ('t' x 242) . '@v=1');
ts_case([['traceparent', $VALID], ['tracestate', 'foo=1'],
         ['tracestate', ('t' x 241) . '@' . ('v' x 14) . '=1']],
        "241 x t + '\@' + 14 x v next to foo=1", 'foo=1,' . ('t' x 241) . '@' . ('v' x 14) . '=1');
ts_case([['traceparent', $VALID], ['tracestate', 'foo=1'], ['tracestate', ('z' x 256) . '=1']],
        '256-char key next to foo=1', 'foo=1,' . ('z' x 256) . '=1');
ts_case([['traceparent', $VALID], ['tracestate', 'foo=1'], ['tracestate', ('z' x 257) . '=1']],
        '257-char key next to foo=1', undef);
ts_case([['traceparent', $VALID], ['tracestate', 'foo=1'],
         ['tracestate', ('t' x 241) . '@' . ('v' x 15) . '=1']],
        "257-char key with '\@' next to foo=1", undef);
# still invalid, and one invalid member drops the whole list
ts_case([['traceparent', $VALID], ['tracestate', '@foo=1,bar=2']], "'\@' first in a key", undef);
ts_case([['traceparent', $VALID], ['tracestate', 'foo=1'], ['tracestate', 'bar@X=2']],
        "uppercase after '\@'", undef);
ts_case([['traceparent', $VALID], ['tracestate', 'foo.bar=1']], 'dot in key', undef);
ts_case([['traceparent', $VALID], ['tracestate', 'foo=a=b']], '= in value', undef);
ts_case([['traceparent', $VALID], ['tracestate', 'foo']], 'member without =', undef);
ts_case([['traceparent', $VALID], ['tracestate', 'foo=' . ('v' x 257)]], 'value of 257 bytes', undef);
ts_case([['traceparent', $VALID], ['tracestate', 'tenant@vendor=1,t2@v2=x']],
        'multi-tenant keys', 'tenant@vendor=1,t2@v2=x');
ts_case([['traceparent', $VALID], ['tracestate', '']], 'empty header', undef);
ts_case([['traceparent', $VALID], ['tracestate', ' , ,, ']], 'only empty members', undef);
ts_case([['tracestate', 'foo=bar']], 'without traceparent', undef);
ts_case([['traceparent', "00-$T-" . ('0' x 16) . "-01"], ['tracestate', 'foo=bar']],
        'with an invalid traceparent', undef);
{
    # empty members and OWS are tolerated; members and their order are kept
    my ($r, $e) = get([['traceparent', $VALID], ['tracestate', 'a=1 ,, b=2 ,'],
                       ['tracestate', '']]);
    my $v = TGTrace::one($e, 'tracestate') // '';
    (my $norm = $v) =~ s/[ \t]*,[ \t,]*/,/g;
    is($norm, 'a=1,b=2', 'tracestate with OWS and empty members: a=1, b=2 kept in order')
        or diag("sent '$v'");
    unlike($v, qr/(^,|,,|,$)/, 'tracestate: no empty member sent');
}

# truncation at the default limit (512): whole members, > 128 first, then
# from the right
{
    my $m1  = 'a1=' . ('x' x 60);                        # 63
    my $big = 'big=' . ('y' x 196);                      # 200 (> 128)
    my @c   = map { "c$_=" . ('z' x 100) } 3 .. 6;       # 103 each
    ts_case([['traceparent', $VALID], ['tracestate', join(',', $m1, $big, @c)]],
            '680 bytes with a 200-byte member (limit 512)', join(',', $m1, @c));
    my @d = map { "d$_=" . ('w' x 100) } 1 .. 6;         # 623 bytes in all
    ts_case([['traceparent', $VALID], ['tracestate', join(',', @d)]],
            '623 bytes (limit 512)', join(',', @d[0 .. 3]));
    my @e = map { "e$_=" . ('u' x 123) } 1 .. 4;         # 126 each: 4*126+3 = 507
    ts_case([['traceparent', $VALID], ['tracestate', join(',', @e)]],
            '507 bytes (limit 512)', join(',', @e));
}

# ---------------------------------------------------------------------------
# the upstream's own traceresponse / X-Trace-ID are replaced by ours

{
    my ($r, $e) = get([['traceparent', "00-$T-$P-00"]], '/service-a/own-tr');
    my @tr = @{ $r->{h}{traceresponse} || [] };
    my @x = @{ $r->{h}{'x-trace-id'} || [] };
    is(scalar(@tr), 1, "upstream's traceresponse: the client sees one");
    my @f = TGTrace::tp($tr[0]);
    ok(@f, "upstream's traceresponse: replaced by ours (00-<32>-<16>-<2>)")
        or diag("traceresponse: @tr");
    is($f[1], $T, "upstream's traceresponse: replaced by ours (the trace id)");
    isnt($f[2], $P, "upstream's traceresponse: replaced by ours (our span)");
    is($f[3], '00', "upstream's traceresponse: replaced by ours (flags 00)");
    is("@x", $T, "upstream's X-Trace-ID: replaced by ours");
}

# ---------------------------------------------------------------------------
# a second gateway: tracestate_limit = 64, traceresponse = off

{
    my ($t2) = TGTrace::gateway(name => '20-traceparent-b',
                                trace => "tracestate_limit = 64\ntraceresponse = off\n");
    $cur = $t2;
    my @m = map { "k$_=" . ('v' x 10) } 1 .. 6;          # 13 each: 6*13+5 = 83
    ts_case([['traceparent', $VALID], ['tracestate', join(',', @m)]],
            '83 bytes (limit 64)', join(',', @m[0 .. 3]));  # 4*13+3 = 55
    my $long = 'long=' . ('q' x 100);
    # 105 bytes is not "> 128": members go from the right until none is left
    ts_case([['traceparent', $VALID], ['tracestate', "$long,a=1,b=2"]],
            'a 105-byte member first (limit 64)', undef);
    my $huge = 'huge=' . ('q' x 130);
    ts_case([['traceparent', $VALID], ['tracestate', "$huge,a=1,b=2"]],
            'a 135-byte member first (limit 64)', 'a=1,b=2');
    ts_case([['traceparent', $VALID], ['tracestate', "a=1,$huge,b=2,c=3"]],
            'a 135-byte member second (limit 64)', 'a=1,b=2,c=3');
    ts_case([['traceparent', $VALID], ['tracestate', $long]],
            'one member over the limit', undef);
    my ($r, $e) = get([['traceparent', $VALID]]);
    is($r->{h}{traceresponse}, undef, 'traceresponse = off: no traceresponse header');
    is(TGTrace::rhdr1($r, 'X-Trace-ID'), $T, 'traceresponse = off: X-Trace-ID still sent');
    my ($tid) = sent_tp($e, 'traceresponse = off');
    is($tid, $T, 'traceresponse = off: propagation unchanged');
    $t2->stop;
    $cur = $t;
}

$t->stop;
done_testing();
