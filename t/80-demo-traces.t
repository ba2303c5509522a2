#!/usr/bin/perl
# The demo services behind the gateway: each scenario answers as it should
# and ends up as ONE connected trace in the recent-trace store (checked
# through the viewer's JSON API), with the services' spans received by the
# [collector] and forwarded to the exporter. Also the receiver's protocol
# (protobuf, JSON, gzip, 400/404/405/415) and the API's search.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Compress::Gzip qw(gzip);
use TG;
use TGDemo;
TG::need_modules(qw(otlp traces collector));

my $t = TG->new('80-demo-traces');
my $d = TGDemo::start($t, workers => 2) or do { fail('demo set-up'); done_testing(); exit 1 };

my %expect = (
    'parallel'        => { status => 200, body => qr/"status":200.*"status":200/,
                           services => [qw(tracegate service-a service-b service-c)] },
    'sequential'      => { status => 200, body => qr/"status":200.*"status":200/,
                           services => [qw(tracegate service-a service-b service-c)] },
    'circular'        => { status => 200, body => qr/chain\/circular","status":200/,
                           services => [qw(tracegate service-a service-b service-c)],
                           repaired => 1 },
    'failure/timeout' => { status => 504, body => qr/"error":"timeout"/, errors => 1,
                           services => [qw(tracegate service-a service-c)] },
    'failure/partial' => { status => 200, body => qr/"degraded":true/, errors => 1,
                           services => [qw(tracegate service-a service-b service-c)] },
    'failure/cascade' => { status => 502, body => qr/"status":502/, errors => 1,
                           services => [qw(tracegate service-a service-b service-c)],
                           repaired => 1 },
);

my %tids;
for my $sc (sort keys %expect) {
    my $e = $expect{$sc};
    my $r = TG::http_get($t->{port}, "/service-a/api/demo/$sc");
    is($r && $r->{status}, $e->{status}, "$sc: status $e->{status}") or diag(TG::summary($r));
    like($r && $r->{body}, $e->{body}, "$sc: body");
    my $tid = TGDemo::trace_id_of($r);
    ok($tid, "$sc: traceresponse names the trace") or next;
    $tids{$sc} = $tid;

    my $tr = TGDemo::wait_trace($t, $tid, $TGDemo::SPANS{$sc});
    ok($tr, "$sc: the API has the trace") or next;
    is(scalar @{ $tr->{spans} }, $TGDemo::SPANS{$sc}, "$sc: $TGDemo::SPANS{$sc} spans")
        or diag(join "\n", map { "$_->{service} $_->{name} $_->{span_id} <- "
                                 . ($_->{parent_span_id} // '-') } @{ $tr->{spans} });
    is($tr->{trace}{span_count}, scalar @{ $tr->{spans} }, "$sc: span_count matches");
    my ($roots, $orph) = TGDemo::shape($tr);
    is(scalar @$roots, 1, "$sc: one root span");
    is($roots->[0]{service} . ' ' . $roots->[0]{kind}, 'tracegate SERVER',
       "$sc: the root is the gateway's SERVER span");
    is(scalar @$orph, 0, "$sc: every other span's parent is in the trace")
        or diag(explain [ map { "$_->{service} $_->{name}" } @$orph ]);
    is_deeply([ sort @{ $tr->{trace}{services} } ], [ sort @{ $e->{services} } ],
              "$sc: services @{ $e->{services} }");
    my @received = grep { $_->{received} } @{ $tr->{spans} };
    ok(@received >= 2, "$sc: the services' own spans came in through the collector");
    is($tr->{trace}{root_path}, "/service-a/api/demo/$sc", "$sc: root_path");
    if ($e->{errors}) {
        ok($tr->{trace}{error_count} > 0, "$sc: errors counted");
    } else {
        is($tr->{trace}{error_count}, 0, "$sc: no errors");
    }
    my @rep = grep { ($_->{attributes}{'tracegate.traceparent_repaired'} // 0)
                     && $_->{service} eq 'tracegate' } @{ $tr->{spans} };
    if ($e->{repaired}) {
        ok(@rep >= 1, "$sc: the gateway repaired service-b's duplicated traceparent");
    } else {
        is(scalar @rep, 0, "$sc: nothing to repair");
    }
}

# the trace list: newest first, searchable
my $list = TGDemo::api($t, '/_traces/api/traces?limit=100');
cmp_ok(scalar(@{ ($list || {})->{traces} || [] }), '>=', 6, 'the list holds the scenarios');
my %listed = map { $_->{trace_id} => $_ } @{ $list->{traces} || [] };
ok($listed{ $tids{parallel} }, 'the parallel trace is listed');
is($listed{ $tids{parallel} }{span_count}, 13, 'list entry: span count');
ok($listed{ $tids{parallel} }{duration_us} > 0, 'list entry: duration');
my $q = TGDemo::api($t, '/_traces/api/traces?q=' . substr($tids{circular}, 0, 12));
is(scalar @{ $q->{traces} || [] }, 1, 'search by a trace id prefix finds one trace');
is($q->{traces}[0]{trace_id}, $tids{circular}, '... the right one');
$q = TGDemo::api($t, "/_traces/api/traces?q=00-$tids{circular}-0123456789abcdef-01");
is($q && $q->{traces}[0]{trace_id}, $tids{circular}, 'a pasted traceparent finds its trace');

my $r = TG::http_get($t->{port}, '/service-a/hello', headers => [[ 'X-Trace-ID', 'demo-order-4711' ]]);
is($r && $r->{status}, 200, 'a request with its own X-Trace-ID');
my $xt = TGDemo::trace_id_of($r);
TGDemo::wait_trace($t, $xt, 2);
$q = TGDemo::api($t, '/_traces/api/traces?q=DEMO-order-4711');
is($q && scalar @{ $q->{traces} }, 1, 'search by X-Trace-ID (case-insensitive)');
is($q && $q->{traces}[0]{x_trace_id}, 'demo-order-4711', 'x_trace_id in the list');
is($q && $q->{traces}[0]{trace_id}, $xt, '... of the right trace');

# API errors and the static files (the viewer answers a loopback listener
# only with a loopback name in Host)
my $vh = "localhost:$t->{port}";
$r = TG::http_get($t->{port}, '/_traces/api/traces/' . ('0' x 31) . '1', host => $vh);
is($r && $r->{status}, 404, 'unknown trace: 404');
$r = TG::http_get($t->{port}, '/_traces/api/traces/xyz', host => $vh);
is($r && $r->{status}, 400, 'malformed trace id: 400');
$r = TG::http_get($t->{port}, '/_traces/api/traces?limit=0', host => $vh);
is($r && $r->{status}, 400, 'limit=0: 400');
$r = TG::http_get($t->{port}, '/_traces/api/traces', method => 'POST', body => 'x', host => $vh);
is($r && $r->{status}, 405, 'POST to the API: 405');
$r = TG::http_get($t->{port}, '/_traces', host => $vh);
is($r && $r->{status}, 301, '/_traces redirects');
is(TG::hdr($r, 'location'), '/_traces/', '... to /_traces/');
for my $f ([ '/_traces/', qr{text/html} ], [ '/_traces/traces.js', qr{javascript} ],
           [ '/_traces/traces.css', qr{text/css} ]) {
    $r = TG::http_get($t->{port}, $f->[0], host => $vh);
    is($r && $r->{status}, 200, "GET $f->[0]");
    like(TG::hdr($r, 'content-type') // '', $f->[1], "$f->[0] content type");
}
my $stats = TGDemo::api($t, '/_traces/api/stats');
ok($stats, 'store stats answered');
cmp_ok(($stats || {})->{shared_memory_bytes} // 0, '>', 0, "store stats (shared memory: "
       . ($stats ? $stats->{shared_memory_bytes} : '?') . ' bytes)');
my @before = map { $_->{trace_id} } @{ TGDemo::api($t, '/_traces/api/traces?limit=1000')->{traces} };
TG::http_get($t->{port}, '/_traces/api/traces', host => $vh) for 1 .. 3;
my @after = map { $_->{trace_id} } @{ TGDemo::api($t, '/_traces/api/traces?limit=1000')->{traces} };
is(scalar @after, scalar @before, 'viewer requests make no traces of their own');

# the receiver itself
my $cp = $d->{collector};
sub post {
    my ($body, @h) = @_;
    return TG::http_get($cp, '/v1/traces', method => 'POST', body => $body,
                        headers => [ @h ]);
}
my $tid = '5b8efff798038103d269b633813fc60c';
my $json = '{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name",'
    . '"value":{"stringValue":"json-svc"}}]},"scopeSpans":[{"spans":[{"traceId":"'
    . uc($tid) . '","spanId":"eee19b7ec3c1b174","name":"json span","kind":"SPAN_KIND_SERVER",'
    . '"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":1700000000250000000,'
    . '"attributes":[{"key":"k\u00e9","value":{"stringValue":"v\"\\\\"}},'
    . '{"key":"n","value":{"intValue":42}},{"key":"b","value":{"boolValue":true}}],'
    . '"status":{"code":2,"message":"boom"}},{"traceId":"","spanId":"x"}]}]}]}';
$r = post($json, [ 'Content-Type', 'application/json' ]);
is($r && $r->{status}, 200, 'OTLP/JSON: 200');
like($r && $r->{body}, qr/"rejectedSpans":"1"/, 'OTLP/JSON: the bad span is rejected (partial success)');
my $tr = TGDemo::wait_trace($t, $tid, 1);
my $sp = $tr && $tr->{spans}[0];
is($sp && $sp->{service}, 'json-svc', 'JSON span: service.name from the resource');
is($sp && $sp->{kind}, 'SERVER', 'JSON span: kind by name');
is($sp && $sp->{status}, 'ERROR', 'JSON span: status');
is($sp && $sp->{attributes}{"k\x{e9}"}, "v\"\\", 'JSON span: escaped key and value');
is($sp && $sp->{attributes}{n}, 42, 'JSON span: int attribute');
is($sp && $sp->{duration_us}, 250000, 'JSON span: duration');

my $gz;
my $tid2 = 'aa' x 16;
(my $json2 = $json) =~ s/\Q@{[uc $tid]}\E/$tid2/;
gzip(\$json2 => \$gz);
$r = post($gz, [ 'Content-Type', 'application/json' ], [ 'Content-Encoding', 'gzip' ]);
is($r && $r->{status}, 200, 'gzip OTLP/JSON: 200');
ok(TGDemo::wait_trace($t, $tid2, 1), 'gzip OTLP/JSON: stored');

SKIP: {
    skip 'protoc not installed', 6 unless TGOTLPlite::have_protoc();
    my $tid3 = 'bb' x 16;
    my $pb = TGOTLPlite::encode(<<"TXT");
resource_spans {
  resource { attributes { key: "service.name" value { string_value: "pb-svc" } } }
  scope_spans { spans {
    trace_id: "@{[ join '', map { sprintf '\\x%02x', $_ } (0xbb) x 16 ]}"
    span_id: "\\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08"
    name: "pb span" kind: SPAN_KIND_CLIENT
    start_time_unix_nano: 1700000000000000000 end_time_unix_nano: 1700000000001000000
    attributes { key: "d" value { double_value: 2.5 } }
  } }
}
TXT
    $r = post($pb, [ 'Content-Type', 'application/x-protobuf' ]);
    is($r && $r->{status}, 200, 'protobuf: 200');
    is($r && length($r->{body}), 0, 'protobuf: an empty ExportTraceServiceResponse');
    my $t3 = TGDemo::wait_trace($t, $tid3, 1);
    is($t3 && $t3->{spans}[0]{service}, 'pb-svc', 'protobuf span: service');
    is($t3 && $t3->{spans}[0]{kind}, 'CLIENT', 'protobuf span: kind');
    $pb = TGOTLPlite::encode("resource_spans { scope_spans { spans { name: \"no ids\" } } }\n");
    $r = post($pb, [ 'Content-Type', 'application/x-protobuf' ]);
    is($r && $r->{status}, 200, 'protobuf, a span without ids: 200');
    like(TGOTLPlite::decode_response($r && $r->{body}),
         qr/partial_success\s*\{\s*rejected_spans: 1\s*error_message: "[^"]+"/,
         '... with partial_success rejected_spans 1');
}

$r = post('junk', [ 'Content-Type', 'application/x-protobuf' ]);
is($r && $r->{status}, 400, 'undecodable protobuf: 400');
$r = post('{"resourceSpans":[', [ 'Content-Type', 'application/json' ]);
is($r && $r->{status}, 400, 'truncated JSON: 400');
like($r && $r->{body}, qr/"code":3/, '... with a google.rpc.Status');
$r = post('x', [ 'Content-Type', 'text/plain' ]);
is($r && $r->{status}, 415, 'text/plain: 415');
$r = post('x', [ 'Content-Type', 'application/json' ], [ 'Content-Encoding', 'gzip' ]);
is($r && $r->{status}, 400, 'a gzip body that does not inflate: 400');
$r = TG::http_get($cp, '/v1/traces');
is($r && $r->{status}, 405, 'GET /v1/traces: 405');
$r = TG::http_get($cp, '/v1/metrics', method => 'POST', body => '{}',
                  headers => [[ 'Content-Type', 'application/json' ]]);
is($r && $r->{status}, 404, '/v1/metrics: 404');

# forwarded with the gateway's own spans to the configured exporter
ok(TG::wait_for(5, sub { (TG::slurp("$t->{dir}/logs/spans.jsonl") // '') =~ /pb-svc|json-svc/ }),
   'received spans are forwarded to the exporter (file)');
like(TG::slurp("$t->{dir}/logs/spans.jsonl") // '', qr/tracegate\.source\.service\.name/,
     '... naming the service that sent them');

$t->stop;
done_testing();

package TGOTLPlite;

sub have_protoc { return system('protoc --version >/dev/null 2>&1') == 0 }

sub decode_response {
    my ($bytes) = @_;
    my $dir = "$TG::ROOT/modules/otlp/proto";
    my $in = "$TG::TMP/pbr.$$.bin";
    TG::spew($in, $bytes // '');
    my $out = `protoc --proto_path=$dir --decode=opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse opentelemetry/proto/collector/trace/v1/trace_service.proto < $in`;
    unlink $in;
    return $out;
}

sub encode {
    my ($text) = @_;
    my $dir = "$TG::ROOT/modules/otlp/proto";
    my $in = "$TG::TMP/pb.$$.txt";
    TG::spew($in, $text);
    my $out = `protoc --proto_path=$dir --encode=opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest opentelemetry/proto/collector/trace/v1/trace_service.proto < $in`;
    unlink $in;
    return $out;
}
