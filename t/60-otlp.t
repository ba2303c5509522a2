#!/usr/bin/perl
# Proxy spans at a real OTLP/HTTP receiver (t/lib/TGOTLP.pm, decoded by
# protoc --decode, not by our encoder). Issue 4 item 1-2, DESIGN.md 7.3:
# a SERVER span "{METHOD} {route}" per request and a CLIENT span "{METHOD}"
# per upstream attempt as its child, whose span id is the parent id the
# upstream received; the stable HTTP attributes; retries as sibling CLIENT
# spans; proxy-generated answers with spans; status rules; _OTHER methods;
# header capture without credentials; resource and scope; and the embedded
# file exporter (OTLP/JSON lines in logs/spans.jsonl) with no endpoint.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use TG;
use TGTrace;
use TGOTLP;
TG::need_modules(qw(otlp status));

plan skip_all => 'protoc not installed (protobuf-compiler)' unless TGOTLP::have_protoc();
TGTrace::clean_env();

my $T = '4bf92f3577b34da6a3ce929d0e0e4736';
my $P = '00f067aa0ba902b7';

sub handler {
    my ($req) = @_;
    return { headers => [['X-Upstream-Note', 'note-1'], ['Set-Cookie', 'sid=SECRET-SETCOOKIE']],
             body => TG::echo_text($req) }
        if $req->{path} =~ m{/with-headers$};
    return undef;
}
my $up = TG::mock_upstream(name => 'a', handler => \&handler);
my ($refused, $rs1) = TG::refused_port();
my ($dead, $rs2) = TG::refused_port();
my $c = TGOTLP->new(dir => "$TG::TMP/60-otlp.$$.otlp");

my $extra = <<"CONF";
[upstream retry]
server = 127.0.0.1:$refused max_fails=1 fail_timeout=60s
server = 127.0.0.1:$up->{port} backup

[route /retry]
upstream = retry

[upstream dead]
server = 127.0.0.1:$dead

[route /dead]
upstream = dead

[upstream slow]
server = 127.0.0.1:$up->{port}
read_timeout = 300ms

[route /slow]
upstream = slow

[route /edge]
upstream = a
trust_incoming_context = off
CONF

my ($t) = TGTrace::gateway(
    name => '60-otlp', up => $up,
    main => "client_max_body_size = 1k\nclient_max_header_size = 2k",
    trace => "service_name = tg-test-svc\ncapture_request_header = X-Tenant\n"
           . "capture_response_header = X-Upstream-Note\nresource = deployment.environment=test\n",
    otlp => "endpoint = " . $c->url . "\nschedule_delay = 100ms\n",
    extra => $extra,
    env => { OTEL_SERVICE_NAME => 'env-loses-to-conf' });
my $port = $t->{port};

# the exporter thread runs 5 nice levels below its worker
{
    my ($w) = $t->workers;
    my %nice;
    for my $task (glob("/proc/" . ($w // 0) . "/task/*")) {
        my $st = TG::slurp("$task/stat") // next;
        $st =~ s/^.*\) //s;                       # after "(comm) "
        my @f = split ' ', $st;
        $nice{ $task =~ m{/(\d+)$} ? $1 : 0 } = $f[16];   # field 19, nice
    }
    my $main = $nice{ $w // 0 };
    my @below = grep { $_ != ($w // 0) && defined $main
                       && $nice{$_} == ($main + 5 > 19 ? 19 : $main + 5) } keys %nice;
    is(scalar @below, 1, 'exporter thread: nice 5 above the worker thread')
        or diag(join ' ', map { "$_=$nice{$_}" } sort keys %nice);
}

# every request: name => { r, e, trace, server (span id from traceresponse),
# up_parent (parent id the upstream saw) }
my %q;
sub go {
    my ($name, $path, %o) = @_;
    my ($r, $e) = TGTrace::via($t, $path, %o);
    my @tr = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
    my @tp = TGTrace::tp(TGTrace::one($e, 'traceparent'));
    $q{$name} = { r => $r, e => $e, trace => $tr[1], server => $tr[2],
                  up_parent => $tp[2], status => $r && $r->{status} };
    return $r;
}
sub go_raw {
    my ($name, $bytes) = @_;
    my ($raw, $rs) = TG::raw_exchange($port, $bytes);
    my $r = $rs->[0];
    my @tr = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
    $q{$name} = { r => $r, trace => $tr[1], server => $tr[2], status => $r && $r->{status} };
    return $r;
}

go('ok', '/service-a/items?sig=abc123&x=1&Signature=zz',
   headers => [['User-Agent', 'tg-test/1.0'], ['X-Tenant', 'tenant-7'],
               ['Authorization', 'Bearer SECRET-AUTH'], ['Cookie', 'c=SECRET-COOKIE'],
               ['X-Forwarded-For', '203.0.113.9']]);
go('parent', '/service-a/p', headers => [['traceparent', "00-$T-$P-01"], ['X-Trace-ID', 'custom-xid-1']]);
go('hostport', '/service-a/h', host => 'example.com:8443');
go('post', '/service-a/post', method => 'POST', body => 'b' x 100);
go('other', '/service-a/o', method => 'PROPFIND');
go('retry', '/retry/x');
go('up500', '/service-a/x?status=500');
go('up404', '/service-a/x?status=404');
go('capture', '/service-a/with-headers', headers => [['X-Tenant', 'tenant-8']]);
go('http10', '/service-a/v', version => '1.0');
go('404', '/nope/x');
go('413', '/service-a/big', method => 'POST', body => 'x' x 2000);
go('431', '/service-a/hdr', headers => [['X-Big', 'h' x 3000]]);
go('502', '/dead/x');
go('504', '/slow/x?hang=1');
go_raw('400', "GET /service-a/bad HTTP/1.1\r\nHost: tg.test\r\nthis is not a header\r\n\r\n");
go('413edge', '/edge/big', method => 'POST', body => 'x' x 2000,
   headers => [['traceparent', "00-$T-$P-01"]]);

my %want_status = (ok => 200, parent => 200, hostport => 200, post => 200, other => 200,
                   retry => 200, up500 => 500, up404 => 404, capture => 200, http10 => 200,
                   404 => 404, 413 => 413, 431 => 431, 502 => 502, 504 => 504, 400 => 400,
                   '413edge' => 413);
for my $n (sort keys %want_status) {
    is($q{$n}{status}, $want_status{$n}, "$n: answered $want_status{$n}")
        or diag(TG::summary($q{$n}{r}));
}

# spans: SERVER + CLIENT for the proxied ones (retry: 2 CLIENT; 502: at
# least 1; proxy answers: SERVER only)
my $expect = 10 * 2 + 1 + 7;
my $got = TGTrace::wait_spans($c, $expect + 1, 6);    # + 1: the 502's CLIENT span
sleep 0.3;
$t->stop;
my @spans = $c->spans;
ok(@spans >= $expect, "receiver got the spans (" . scalar(@spans) . ", >= $expect)");

my %by_id = map { ($_->{span_id} => $_) } @spans;
my %children;
push @{ $children{ $_->{parent_span_id} } }, $_ for grep { $_->{kind} eq 'SPAN_KIND_CLIENT' } @spans;

sub server_of {
    my ($n) = @_;
    my $sid = $q{$n}{server} // '';
    my $s = $by_id{$sid};
    is($s && $s->{kind}, 'SPAN_KIND_SERVER', "$n: SERVER span exported with the traceresponse span id")
        or diag("traceresponse span id '$sid'");
    return $s;
}
sub attrs_ok {
    my ($s, $what, %want) = @_;
    for my $k (sort keys %want) {
        if (!defined $want{$k}) {
            ok(!exists $s->{attributes}{$k}, "$what: no $k");
        } elsif (ref $want{$k} eq 'Regexp') {
            like($s->{attributes}{$k} // '(absent)', $want{$k}, "$what: $k");
        } else {
            is($s->{attributes}{$k}, $want{$k}, "$what: $k = $want{$k}");
        }
    }
}

# ---------------------------------------------------------------------------
# the ordinary request

{
    my $s = server_of('ok');
    if ($s) {
        is($s->{name}, 'GET /service-a', 'ok: SERVER name is {METHOD} {route}');
        is($s->{trace_id}, $q{ok}{trace}, 'ok: SERVER span in the trace of traceresponse');
        is($s->{parent_span_id}, '', 'ok: SERVER span is a root (no incoming context)');
        is($s->{status}, 'STATUS_CODE_UNSET', 'ok: status UNSET');
        attrs_ok($s, 'ok SERVER',
            'http.request.method' => 'GET',
            'url.path' => '/service-a/items',
            'url.query' => 'sig=REDACTED&x=1&Signature=REDACTED',
            'url.scheme' => 'http',
            'http.route' => '/service-a',
            'http.response.status_code' => 200,
            'server.address' => 'tg.test',
            'server.port' => $port,
            'client.address' => '127.0.0.1',
            'network.peer.address' => '127.0.0.1',
            'network.peer.port' => qr/^[1-9]\d*$/,
            'network.protocol.version' => '1.1',
            'user_agent.original' => 'tg-test/1.0',
            'http.request.header.x-tenant' => qr/tenant-7/,
            'error.type' => undef);
        is($s->{types}{'http.response.status_code'}, 'int_value', 'ok: status code is an int');
        is($s->{types}{'server.port'}, 'int_value', 'ok: server.port is an int');
        is_deeply([grep { /SECRET/ } grep { defined } values %{ $s->{attributes} }], [],
                  'ok: no Authorization/Cookie value in any attribute');
        my @kids = @{ $children{ $s->{span_id} } || [] };
        is(scalar(@kids), 1, 'ok: one CLIENT child');
        my $k = $kids[0];
        if ($k) {
            is($k->{name}, 'GET', 'ok: CLIENT name is {METHOD}');
            is($k->{trace_id}, $s->{trace_id}, 'ok: CLIENT in the same trace');
            is($k->{span_id}, $q{ok}{up_parent}, 'ok: CLIENT span id = the parent id the upstream received');
            is($k->{status}, 'STATUS_CODE_UNSET', 'ok: CLIENT status UNSET');
            attrs_ok($k, 'ok CLIENT',
                'http.request.method' => 'GET',
                'server.address' => '127.0.0.1',
                'server.port' => $up->{port},
                'url.full' => "http://127.0.0.1:$up->{port}/service-a/items?sig=REDACTED&x=1&Signature=REDACTED",
                'http.response.status_code' => 200,
                'network.peer.address' => '127.0.0.1',
                'http.request.resend_count' => undef,
                'error.type' => undef);
            cmp_ok($k->{start}, '>=', $s->{start}, 'ok: CLIENT span starts within the SERVER span');
            cmp_ok($k->{end}, '<=', $s->{end}, 'ok: CLIENT span ends within the SERVER span');
            cmp_ok($k->{start}, '<', $k->{end}, 'ok: CLIENT span ends after it starts');
        }
        is($s->{resource}{'service.name'}, 'tg-test-svc', 'resource: service.name from [trace] (over OTEL_SERVICE_NAME)');
        is($s->{resource}{'deployment.environment'}, 'test', 'resource: [trace] resource addition');
        for my $k (qw(service.version service.instance.id host.name telemetry.sdk.name
                      telemetry.sdk.language telemetry.sdk.version)) {
            ok(length($s->{resource}{$k} // ''), "resource: $k");
        }
        is($s->{scope}{name}, 'tracegate', 'scope: tracegate');
        ok(length $s->{scope}{version}, 'scope: with a version');
    }
}

# continued trace, X-Trace-ID attribute
{
    my $s = server_of('parent');
    if ($s) {
        is($s->{trace_id}, $T, 'parent: SERVER span continues the incoming trace');
        is($s->{parent_span_id}, $P, 'parent: SERVER parent is the incoming parent id');
        ok(scalar(grep { $_ eq 'custom-xid-1' } grep { defined } values %{ $s->{attributes} }),
           'parent: an X-Trace-ID differing from the trace id is an attribute');
        my ($k) = @{ $children{ $s->{span_id} } || [] };
        is($k && $k->{span_id}, $q{parent}{up_parent}, 'parent: CLIENT span id = upstream parent id');
    }
    my $o = server_of('ok');
    ok($o, 'ok: SERVER span');
    is_deeply([grep { $_ eq $q{ok}{trace} } grep { defined } values %{ ($o || {})->{attributes} || {} }], [],
              'ok: a generated X-Trace-ID (= trace id) is not repeated as an attribute');
}

{
    my $s = server_of('hostport');
    attrs_ok($s, 'Host: example.com:8443', 'server.address' => 'example.com', 'server.port' => 8443) if $s;
    $s = server_of('post');
    if ($s) {
        is($s->{name}, 'POST /service-a', 'POST: name');
        attrs_ok($s, 'POST', 'http.request.method' => 'POST', 'http.request.body.size' => 100);
    }
    $s = server_of('http10');
    attrs_ok($s, 'HTTP/1.0', 'network.protocol.version' => '1.0') if $s;
}

# unknown method
{
    my $s = server_of('other');
    if ($s) {
        is($s->{name}, 'HTTP /service-a', 'PROPFIND: SERVER name uses HTTP');
        attrs_ok($s, 'PROPFIND SERVER', 'http.request.method' => '_OTHER',
                 'http.request.method_original' => 'PROPFIND');
        my ($k) = @{ $children{ $s->{span_id} } || [] };
        if ($k) {
            is($k->{name}, 'HTTP', 'PROPFIND: CLIENT name HTTP');
            attrs_ok($k, 'PROPFIND CLIENT', 'http.request.method' => '_OTHER',
                     'http.request.method_original' => 'PROPFIND');
        }
    }
}

# retries: sibling CLIENT spans
{
    my $s = server_of('retry');
    if ($s) {
        is($s->{name}, 'GET /retry', 'retry: SERVER name');
        is($s->{status}, 'STATUS_CODE_UNSET', 'retry: SERVER UNSET (answered 200)');
        my @k = sort { $a->{start} <=> $b->{start} } @{ $children{ $s->{span_id} } || [] };
        is(scalar(@k), 2, 'retry: two sibling CLIENT spans');
        if (@k == 2) {
            is($k[0]{status}, 'STATUS_CODE_ERROR', 'retry: first attempt ERROR');
            attrs_ok($k[0], 'retry first', 'error.type' => 'connection_refused',
                     'server.port' => $refused, 'http.response.status_code' => undef,
                     'http.request.resend_count' => undef);
            is($k[1]{status}, 'STATUS_CODE_UNSET', 'retry: second attempt UNSET');
            attrs_ok($k[1], 'retry second', 'http.request.resend_count' => 1,
                     'server.port' => $up->{port}, 'http.response.status_code' => 200,
                     'error.type' => undef);
            is($k[1]{span_id}, $q{retry}{up_parent}, 'retry: the upstream saw the second CLIENT span');
            ok($k[0]{end} <= $k[1]{start}, 'retry: attempts do not overlap');
        }
    }
}

# upstream errors
{
    my $s = server_of('up500');
    if ($s) {
        is($s->{status}, 'STATUS_CODE_ERROR', 'upstream 500: SERVER ERROR');
        attrs_ok($s, 'upstream 500 SERVER', 'http.response.status_code' => 500, 'error.type' => '500');
        my ($k) = @{ $children{ $s->{span_id} } || [] };
        is($k && $k->{status}, 'STATUS_CODE_ERROR', 'upstream 500: CLIENT ERROR');
        attrs_ok($k, 'upstream 500 CLIENT', 'http.response.status_code' => 500, 'error.type' => '500') if $k;
    }
    $s = server_of('up404');
    if ($s) {
        is($s->{status}, 'STATUS_CODE_UNSET', 'upstream 404: SERVER UNSET (4xx)');
        attrs_ok($s, 'upstream 404 SERVER', 'http.response.status_code' => 404);
        my ($k) = @{ $children{ $s->{span_id} } || [] };
        is($k && $k->{status}, 'STATUS_CODE_ERROR', 'upstream 404: CLIENT ERROR (4xx)');
        attrs_ok($k, 'upstream 404 CLIENT', 'http.response.status_code' => 404, 'error.type' => '404') if $k;
    }
}

# capture of a response header, never Set-Cookie
{
    my $s = server_of('capture');
    if ($s) {
        attrs_ok($s, 'capture', 'http.request.header.x-tenant' => qr/tenant-8/,
                 'http.response.header.x-upstream-note' => qr/note-1/,
                 'http.response.header.set-cookie' => undef);
        is_deeply([grep { /SECRET/ } grep { defined } values %{ $s->{attributes} }], [],
                  'capture: no Set-Cookie value');
    }
}

# proxy-generated answers
for my $c (['404', 'GET', 'STATUS_CODE_UNSET'], ['413', 'POST /service-a', 'STATUS_CODE_UNSET'],
           ['431', undef, 'STATUS_CODE_UNSET'], ['400', undef, 'STATUS_CODE_UNSET'],
           ['502', 'GET /dead', 'STATUS_CODE_ERROR'], ['504', 'GET /slow', 'STATUS_CODE_ERROR']) {
    my ($n, $name, $st) = @$c;
    my $s;
    if ($q{$n}{server}) {
        $s = server_of($n);
    } else {
        # no traceresponse on the answer: find the span by its status code
        ($s) = grep { $_->{kind} eq 'SPAN_KIND_SERVER'
                      && ($_->{attributes}{'http.response.status_code'} // 0) == $n } @spans;
        ok($s, "$n: a SERVER span with http.response.status_code $n");
    }
    next unless $s;
    is($s->{name}, $name, "$n: SERVER name $name") if defined $name;
    is($s->{attributes}{'http.response.status_code'}, $n, "$n: status code attribute");
    is($s->{status}, $st, "$n: $st");
    if ($n >= 500) {
        ok(length($s->{attributes}{'error.type'} // ''), "$n: error.type set ("
           . ($s->{attributes}{'error.type'} // 'absent') . ')');
    }
    # the request line was read: url.path (required) and the version are known
    my %path = (404 => '/nope/x', 413 => '/service-a/big', 431 => '/service-a/hdr',
                400 => '/service-a/bad', 502 => '/dead/x', 504 => '/slow/x');
    is($s->{attributes}{'url.path'}, $path{$n}, "$n: url.path (required) is $path{$n}");
    is($s->{attributes}{'network.protocol.version'}, '1.1', "$n: network.protocol.version 1.1");
}
{
    # a 413 on a route that does not trust incoming context still restarts
    my $tr = $q{'413edge'}{trace};
    ok($tr, '413 on a trust_incoming_context = off route: a traceresponse')
        or diag('traceresponse trace id none');
    isnt($tr, $T, '413 on a trust_incoming_context = off route: a new trace');
    my $s = $by_id{ $q{'413edge'}{server} // '' };
    ok($s, '413 on an untrusted route: SERVER span exported');
    isnt($s && $s->{parent_span_id}, $P, '413 on an untrusted route: SERVER span not a child of the client span');
}
{
    my $s = $by_id{ $q{502}{server} // '' };
    my @k = $s ? @{ $children{ $s->{span_id} } || [] } : ();
    ok(@k >= 1, '502: CLIENT span(s) for the refused attempt(s)');
    is_deeply([map { [$_->{status}, $_->{attributes}{'error.type'} // ''] } @k],
              [(['STATUS_CODE_ERROR', 'connection_refused']) x @k],
              '502: each CLIENT span ERROR with error.type connection_refused');
    is($s && $s->{attributes}{'error.type'}, 'connection_refused', '502: SERVER error.type connection_refused');
    $s = $by_id{ $q{504}{server} // '' };
    @k = $s ? @{ $children{ $s->{span_id} } || [] } : ();
    cmp_ok(scalar(@k), '>=', 1, '504: CLIENT span(s)');
    is($k[0] && $k[0]{status}, 'STATUS_CODE_ERROR', '504: CLIENT span ERROR')
        or diag(join ' ', map { "$_->{status}/" . ($_->{attributes}{'error.type'} // '-') } @k);
    is($k[0] && ($k[0]{attributes}{'error.type'} // ''), 'timeout', '504: CLIENT span error.type timeout');
    is($s && $s->{attributes}{'error.type'}, 'timeout', '504: SERVER error.type timeout');
}

# no CLIENT span without a SERVER parent, each span once
{
    my @orphans = grep { $_->{kind} eq 'SPAN_KIND_CLIENT'
                         && !($by_id{ $_->{parent_span_id} }
                              && $by_id{ $_->{parent_span_id} }{kind} eq 'SPAN_KIND_SERVER') } @spans;
    is(scalar(@orphans), 0, 'every CLIENT span has its SERVER span as parent');
    my %seen;
    $seen{ $_->{span_id} }++ for @spans;
    is(scalar(grep { $seen{$_} > 1 } keys %seen), 0, 'each span exported once');
}
$c->stop;

# ---------------------------------------------------------------------------
# credentials are never captured: a configuration error

for my $c (['capture_request_header', 'Authorization'], ['capture_request_header', 'cookie'],
           ['capture_request_header', 'Proxy-Authorization'], ['capture_response_header', 'Set-Cookie']) {
    my ($key, $h) = @$c;
    my $tb = TG->new('60-otlp-secret');
    my $conf = $tb->main_conf . "[trace]\ncapture_request_header = X-Tenant\n$key = $h\n";
    $conf =~ s/^capture_request_header = X-Tenant\n(?=capture_request_header)//m;
    $tb->write_conf($conf);
    my ($rc, $out, $err) = $tb->cli('-t');
    isnt($rc, 0, "$key = $h: rejected by -t");
    my $line = TG::line_of($conf, qr/^\Q$key = $h\E$/);
    like($err . $out, qr/tracegate\.conf:$line\b.*\Q$h\E/i, "$key = $h: the error names file:line and the header");
}

# ---------------------------------------------------------------------------
# OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES, trusted proxy

{
    my $c2 = TGOTLP->new(dir => "$TG::TMP/60-otlp.$$.otlp2");
    my ($t2) = TGTrace::gateway(
        name => '60-otlp-env', up => $up, main => "trusted_proxy = 127.0.0.1/32",
        otlp => "endpoint = " . $c2->url . "\nschedule_delay = 100ms\n",
        env => { OTEL_SERVICE_NAME => 'env-svc',
                 OTEL_RESOURCE_ATTRIBUTES => 'service.name=loses,deployment.environment=staging' });
    my ($r) = TGTrace::via($t2, '/service-a/e', headers => [['X-Forwarded-For', '203.0.113.9, 10.0.0.1']]);
    my $sid = (TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse')))[2] // '';
    TGTrace::wait_spans($c2, 2, 5);
    $t2->stop;
    $c2->stop;
    my ($s) = grep { $_->{span_id} eq $sid } $c2->spans;
    ok($s, 'env: SERVER span exported');
    if ($s) {
        is($s->{resource}{'service.name'}, 'env-svc', 'env: service.name from OTEL_SERVICE_NAME');
        is($s->{resource}{'deployment.environment'}, 'staging', 'env: OTEL_RESOURCE_ATTRIBUTES');
        is($s->{attributes}{'client.address'}, '203.0.113.9', 'trusted proxy: client.address from X-Forwarded-For');
        is($s->{attributes}{'network.peer.address'}, '127.0.0.1', 'trusted proxy: network.peer.address is the peer');
    }
}

# ---------------------------------------------------------------------------
# the embedded default: no endpoint -> OTLP/JSON lines in logs/spans.jsonl

{
    my ($t3) = TGTrace::gateway(name => '60-otlp-file', up => $up, otlp => "schedule_delay = 100ms\n");
    my ($r, $e) = TGTrace::via($t3, '/service-a/f?sig=s');
    my @tr = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
    my $up_parent = (TGTrace::tp(TGTrace::one($e, 'traceparent')))[2] // '';
    my $file = "$t3->{dir}/logs/spans.jsonl";
    my @s = TGTrace::wait_file_spans($file, 2, 5);
    is(scalar(@s), 2, 'file exporter: two spans in logs/spans.jsonl');
    my ($srv) = grep { $_->{kind} == 2 } @s;
    my ($cli) = grep { $_->{kind} == 3 } @s;
    ok($srv, 'file exporter: kind 2 (SERVER) as an OTLP/JSON integer');
    ok($cli, 'file exporter: kind 3 (CLIENT) as an OTLP/JSON integer');
    if ($srv && $cli) {
        is($srv->{trace_id}, $tr[1], 'file exporter: traceId as 32 hex');
        is($srv->{span_id}, $tr[2], 'file exporter: spanId as 16 hex');
        is($srv->{name}, 'GET /service-a', 'file exporter: SERVER name');
        is($cli->{parent_span_id}, $srv->{span_id}, 'file exporter: CLIENT parentSpanId');
        is($cli->{span_id}, $up_parent, 'file exporter: CLIENT span id = upstream parent id');
        is($srv->{attributes}{'url.query'}, 'sig=REDACTED', 'file exporter: redacted query');
        is($srv->{resource}{'service.name'}, 'tracegate', 'file exporter: default service.name');
        is($srv->{scope}{name}, 'tracegate', 'file exporter: scope');
    }
    $t3->stop;
    my $raw = TG::slurp($file) // '';
    my @lines = split /\n/, $raw;
    cmp_ok(scalar(@lines), '>=', 1, 'file exporter: lines written');
    is_deeply([grep { !/^\{"resourceSpans":\[/ } @lines], [],
              'file exporter: every line is an ExportTraceServiceRequest object');
    like($raw, qr/"startTimeUnixNano":"\d+"/, 'file exporter: 64-bit times as decimal strings');
}

done_testing();
