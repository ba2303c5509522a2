#!/usr/bin/perl
# X-Trace-ID (issue 3 item 4, DESIGN.md 2): generated as the 32-hex trace id
# by default, an incoming value kept (first non-empty member of
# [A-Za-z0-9._:-], at most 128 bytes, else replaced and the refused value
# kept on the SERVER span, escaped), a custom header name, off, the
# uuid and time formats; sent upstream (one line) and back to the client,
# also on proxy-generated 404 and 502 answers.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use POSIX qw(strftime);
use TG;
use TGTrace;
TG::need_modules(qw(otlp));

TGTrace::clean_env();

my $T = '4bf92f3577b34da6a3ce929d0e0e4736';
my $P = '00f067aa0ba902b7';

my ($dead, $dead_sock) = TG::refused_port();
my $deadconf = "[upstream dead]\nserver = 127.0.0.1:$dead\n\n[route /dead]\nupstream = dead\n";

sub handler {
    my ($req) = @_;
    return { headers => [['X-Trace-ID', 'from-upstream'], ['X-Request-ID', 'up-req-id']],
             body => TG::echo_text($req) }
        if $req->{path} =~ m{/own$};
    return undef;
}

my $up = TG::mock_upstream(name => 'a', handler => \&handler);
my ($t) = TGTrace::gateway(name => '21-trace-id', up => $up, extra => $deadconf);

sub trace_of {
    my ($r, $e) = @_;
    my @f = TGTrace::tp(TGTrace::one($e, 'traceparent'));
    return $f[1] if @f;
    @f = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
    return $f[1];
}

# ---------------------------------------------------------------------------
# default: generated = the trace id, upstream and client see the same value

for my $i (1 .. 2) {
    my ($r, $e) = TGTrace::via($t, '/service-a/x');
    my $tid = trace_of($r, $e);
    my $x = TGTrace::rhdr1($r, 'X-Trace-ID');
    like($x // '', qr/^[0-9a-f]{32}$/, "generated $i: 32 lowercase hex");
    is($x, $tid, "generated $i: equals the trace id sent upstream");
    is(TGTrace::one($e, 'X-Trace-ID'), $x, "generated $i: the upstream got the same value");
    my @n = TGTrace::names($e, 'X-Trace-ID');
    is("@n", 'X-Trace-ID', "generated $i: one line, configured name");
}
{
    my ($r, $e) = TGTrace::via($t, '/service-a/x', headers => [['traceparent', "00-$T-$P-01"]]);
    is(TGTrace::rhdr1($r, 'X-Trace-ID'), $T, 'continued trace: X-Trace-ID is the incoming trace id');
}

# ---------------------------------------------------------------------------
# incoming values

my $v128 = 'i' x 128;
my @keep = (
    ['req-42',                         'req-42',     'plain'],
    ['  abc-123  ',                    'abc-123',    'with OWS'],
    ['first-id, second-id',            'first-id',   'comma list: first member'],
    [', ,second-id',                   'second-id',  'comma list: first non-empty member'],
    [$v128,                            $v128,        '128 bytes'],
    ['svc.a_1:req-9.Z',                'svc.a_1:req-9.Z', 'every allowed punctuation (._:-)'],
);
for my $c (@keep) {
    my ($in, $want, $what) = @$c;
    my ($r, $e) = TGTrace::via($t, '/service-a/x', headers => [['X-Trace-ID', $in]]);
    is(TGTrace::one($e, 'X-Trace-ID'), $want, "incoming ($what): kept upstream");
    is(TGTrace::rhdr1($r, 'X-Trace-ID'), $want, "incoming ($what): returned to the client");
    my $tid = trace_of($r, $e);
    like($tid, qr/^[0-9a-f]{32}$/, "incoming ($what): the trace itself is unaffected");
}
{
    my ($r, $e) = TGTrace::via($t, '/service-a/x',
                               headers => [['X-Trace-ID', ''], ['x-trace-id', 'second-line']]);
    is(TGTrace::one($e, 'X-Trace-ID'), 'second-line', 'repeated lines: first non-empty member wins');
    ($r, $e) = TGTrace::via($t, '/service-a/x',
                            headers => [['X-Trace-ID', 'one'], ['X-Trace-ID', 'two']]);
    is(TGTrace::one($e, 'X-Trace-ID'), 'one', 'repeated lines: the upstream gets one line, the first value');
    my @x = @{ $r->{h}{'x-trace-id'} || [] };
    is("@x", 'one', 'repeated lines: the client gets one line');
}

my @replace = (
    ['i' x 129,   '129 bytes'],
    ["abc\tdef",  'a tab inside'],
    ['abc def',   'a space inside'],
    ["abc\xc3\xa9", 'non-ASCII bytes'],
    [('x' x 129) . ', ok', 'first member too long, second fine'],
    ['!#$%&\'*+^`|~;<>?@[]{}/"()', 'other printable punctuation'],
    ['a"b<script>', 'quote and angle brackets'],
    ['id/with/slash', 'a slash'],
);
for my $c (@replace) {
    my ($in, $what) = @$c;
    my ($r, $e) = TGTrace::via($t, '/service-a/x', headers => [['X-Trace-ID', $in]]);
    my $tid = trace_of($r, $e);
    is(TGTrace::one($e, 'X-Trace-ID'), $tid, "invalid ($what): replaced upstream by the trace id");
    is(TGTrace::rhdr1($r, 'X-Trace-ID'), $tid, "invalid ($what): replaced for the client");
}
{
    # the refused value is kept on the SERVER span, escaped
    my ($tf) = TGTrace::gateway(name => '21-trace-id-span', up => $up,
                                otlp => "exporter = file\nschedule_delay = 100ms\n");
    my ($r, $e) = TGTrace::via($tf, '/service-a/x', headers => [['X-Trace-ID', "a\"b<x>\xc3\xa9"]]);
    my $tid = trace_of($r, $e);
    is(TGTrace::rhdr1($r, 'X-Trace-ID'), $tid, 'refused value: replaced by the trace id');
    my @s = TGTrace::wait_file_spans("$tf->{dir}/logs/spans.jsonl", 2, 5);
    my ($srv) = grep { $_->{kind} == 2 && $_->{trace_id} eq ($tid // '') } @s;
    is($srv && $srv->{attributes}{'tracegate.x_trace_id.rejected'}, 'a\x22b<x>\xC3\xA9',
       'refused value: on the SERVER span as tracegate.x_trace_id.rejected, escaped');
    ok($srv, 'refused value: SERVER span exported');
    ok(!exists(($srv || {})->{attributes}{'tracegate.x_trace_id'}),
       'refused value: tracegate.x_trace_id absent (the id is the trace id)');
    $tf->stop;
}
{
    # a control byte the HTTP parser refuses: the 400 still carries a fresh id
    my ($raw, $rs) = TG::raw_exchange($t->{port},
        "GET /service-a/x HTTP/1.1\r\nHost: a\r\nX-Trace-ID: abc\x01def\r\nConnection: close\r\n\r\n");
    my $r = $rs->[0];
    is($r && $r->{status}, 400, 'control byte: 400');
    like(TGTrace::rhdr1($r, 'X-Trace-ID') // '', qr/^[0-9a-f]{32}$/,
         'control byte: the 400 carries a generated X-Trace-ID');
}

# ---------------------------------------------------------------------------
# the upstream's own X-Trace-ID in the response is replaced by ours

{
    my ($r, $e) = TGTrace::via($t, '/service-a/own', headers => [['X-Trace-ID', 'mine']]);
    my @x = @{ $r->{h}{'x-trace-id'} || [] };
    is("@x", 'mine', "upstream's response X-Trace-ID replaced by the request's");
}

# ---------------------------------------------------------------------------
# proxy-generated answers carry it too

for my $c (['/nope', 404], ['/dead/x', 502]) {
    my ($path, $st) = @$c;
    my ($r) = TGTrace::via($t, $path);
    is($r && $r->{status}, $st, "$path: $st");
    my $tid = (TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse')))[1];
    my $x = TGTrace::rhdr1($r, 'X-Trace-ID');
    like($x, qr/^[0-9a-f]{32}$/, "$st: generated X-Trace-ID, 32 hex digits")
        or diag(TG::summary($r));
    is($x, $tid // '', "$st: generated X-Trace-ID = the trace id of traceresponse");
    ($r) = TGTrace::via($t, $path, headers => [['X-Trace-ID', "client-$st"]]);
    is(TGTrace::rhdr1($r, 'X-Trace-ID'), "client-$st", "$st: the incoming X-Trace-ID returned");
    ($r) = TGTrace::via($t, $path, headers => [['traceparent', "00-$T-$P-01"]]);
    is(TGTrace::rhdr1($r, 'X-Trace-ID'), $T, "$st: continued trace id as X-Trace-ID");
}
$t->stop;

# ---------------------------------------------------------------------------
# custom header name

{
    my ($t2) = TGTrace::gateway(name => '21-trace-id-name', up => $up,
                                trace => "x_trace_id = X-Request-ID\n", extra => $deadconf);
    my ($r, $e) = TGTrace::via($t2, '/service-a/x');
    my $tid = trace_of($r, $e);
    is(TGTrace::rhdr1($r, 'X-Request-ID'), $tid, 'X-Request-ID: generated for the client');
    is(TGTrace::one($e, 'X-Request-ID'), $tid, 'X-Request-ID: sent upstream');
    is(scalar(TGTrace::names($e, 'X-Trace-ID')), 0, 'X-Request-ID: no X-Trace-ID upstream');
    is($r->{h}{'x-trace-id'}, undef, 'X-Request-ID: no X-Trace-ID for the client');
    ($r, $e) = TGTrace::via($t2, '/service-a/x', headers => [['x-request-id', 'rid-7']]);
    is(TGTrace::one($e, 'X-Request-ID'), 'rid-7', 'X-Request-ID: incoming kept upstream');
    is(TGTrace::rhdr1($r, 'X-Request-ID'), 'rid-7', 'X-Request-ID: incoming returned');
    ($r) = TGTrace::via($t2, '/nope', headers => [['X-Request-ID', 'rid-404']]);
    is(TGTrace::rhdr1($r, 'X-Request-ID'), 'rid-404', 'X-Request-ID: on a 404');
    ($r) = TGTrace::via($t2, '/service-a/own', headers => [['X-Request-ID', 'rid-own']]);
    my @x = @{ $r->{h}{'x-request-id'} || [] };
    is("@x", 'rid-own', "X-Request-ID: the upstream's one replaced");
    $t2->stop;
}

# ---------------------------------------------------------------------------
# off

{
    my ($t3) = TGTrace::gateway(name => '21-trace-id-off', up => $up,
                                trace => "x_trace_id = off\n", extra => $deadconf);
    my ($r, $e) = TGTrace::via($t3, '/service-a/x');
    is(scalar(TGTrace::names($e, 'X-Trace-ID')), 0, 'off: nothing sent upstream');
    is($r->{h}{'x-trace-id'}, undef, 'off: no X-Trace-ID for the client');
    ok(TGTrace::rhdr1($r, 'traceresponse'), 'off: traceresponse still sent');
    ok(TGTrace::one($e, 'traceparent'), 'off: traceparent still sent');
    ($r) = TGTrace::via($t3, '/nope');
    is($r->{h}{'x-trace-id'}, undef, 'off: no X-Trace-ID on a 404');
    ($r) = TGTrace::via($t3, '/dead/x');
    is($r->{h}{'x-trace-id'}, undef, 'off: no X-Trace-ID on a 502');
    $t3->stop;
}

# ---------------------------------------------------------------------------
# formats

{
    my ($t4) = TGTrace::gateway(name => '21-trace-id-uuid', up => $up,
                                trace => "x_trace_id_format = uuid\n", extra => $deadconf);
    my ($r, $e) = TGTrace::via($t4, '/service-a/x');
    my $tid = trace_of($r, $e);
    my $x = TGTrace::rhdr1($r, 'X-Trace-ID') // '';
    like($x, qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
         'uuid: RFC 9562 version 4 layout');
    (my $h = $x) =~ s/-//g;
    is(length($h), 32, 'uuid: 32 hex digits');
    ok($tid, 'uuid: the trace id is known');
    if (length($h) == 32 && $tid) {
        is_deeply([substr($h, 0, 12), substr($h, 13, 3), substr($h, 17)],
                  [substr($tid, 0, 12), substr($tid, 13, 3), substr($tid, 17)],
                  'uuid: derived from the trace id (all but version/variant bits)')
            or diag("uuid $x, trace $tid");
    }
    is(TGTrace::one($e, 'X-Trace-ID'), $x, 'uuid: the same value upstream');
    ($r) = TGTrace::via($t4, '/nope');
    like(TGTrace::rhdr1($r, 'X-Trace-ID') // '', qr/^[0-9a-f]{8}-[0-9a-f]{4}-4/, 'uuid: on a 404');
    ($r, $e) = TGTrace::via($t4, '/service-a/x', headers => [['X-Trace-ID', 'kept-anyway']]);
    is(TGTrace::one($e, 'X-Trace-ID'), 'kept-anyway', 'uuid: an incoming value is still kept');
    $t4->stop;

    my ($t5) = TGTrace::gateway(name => '21-trace-id-time', up => $up,
                                trace => "x_trace_id_format = time\n", extra => $deadconf);
    my $before = time;
    ($r, $e) = TGTrace::via($t5, '/service-a/x');
    my $after = time;
    $tid = trace_of($r, $e);
    $x = TGTrace::rhdr1($r, 'X-Trace-ID') // '';
    like($x, qr/^trace-\d{8}T\d{6}Z-[0-9a-f]{8}$/, 'time: trace-<ISO 8601 basic UTC>-<8 hex>');
    my %ok = map { (strftime('%Y%m%dT%H%M%SZ', gmtime($_)) => 1) } ($before - 1) .. ($after + 1);
    my ($stamp, $tail) = $x =~ /^trace-(\S+Z)-([0-9a-f]{8})$/;
    ok($ok{ $stamp // '' }, 'time: the current UTC time') or diag("got $x at $before");
    is($tail, $tid && substr($tid, 24), 'time: the last 8 hex of the trace id');
    is(TGTrace::one($e, 'X-Trace-ID'), $x, 'time: the same value upstream');
    ($r) = TGTrace::via($t5, '/dead/x');
    like(TGTrace::rhdr1($r, 'X-Trace-ID') // '', qr/^trace-\d{8}T\d{6}Z-[0-9a-f]{8}$/, 'time: on a 502');
    $t5->stop;
}

# an unknown format is a configuration error naming the line
{
    my $t6 = TG->new('21-trace-id-bad');
    $t6->write_conf($t6->main_conf . "[trace]\nx_trace_id_format = base64\n");
    my ($rc, $out, $err) = $t6->cli('-t');
    isnt($rc, 0, 'x_trace_id_format = base64: -t fails');
    like($err . $out, qr/x_trace_id_format/, 'x_trace_id_format = base64: the error names the key');
}

done_testing();
