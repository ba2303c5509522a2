#!/usr/bin/perl
# The file exporter's OTLP/JSON lines (logs/spans.jsonl) read by a decoder
# that is not ours: tests/otlp-json/decode.js runs every line through the
# protobufjs classes that @opentelemetry/otlp-transformer generates from the
# upstream opentelemetry-proto files (fromObject, verify, a binary round
# trip, toObject) and holds it to the OTLP/JSON rules the Collector's file
# exporter follows: no null, no default-valued field, ids as lowercase hex,
# times and intValue as decimal strings, enums as integers, lowerCamelCase
# keys. Then ids, parents, times, kinds, status, attributes and links as
# decoded are checked against the requests that made them. Spans received
# by [collector] and forwarded take the same way: one sent with nothing but
# its ids must come out without name, kind or times (all default), as the
# protobuf encoder already leaves them out.
#
# Needs node and `npm ci` in tests/otlp-json (.ci/run does both); skipped
# without them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use Time::HiRes qw(time);
use TG;
use TGTrace;
TG::need_modules(qw(otlp collector));

my $dir = "$TG::ROOT/tests/otlp-json";
my ($node) = grep { -x } map { "$_/node" } split /:/, $ENV{PATH} // '';
plan skip_all => 'node not installed (Debian: apt-get install nodejs npm)' unless $node;
plan skip_all => "$dir/node_modules/\@opentelemetry/otlp-transformer missing: "
               . "run (cd tests/otlp-json && npm ci)"
    unless -d "$dir/node_modules/\@opentelemetry/otlp-transformer";

TGTrace::clean_env();

my $T  = '4bf92f3577b34da6a3ce929d0e0e4736';
my $P  = '00f067aa0ba902b7';
my $P2 = 'b7ad6b7169203331';

my $cport = TG::free_port();
my ($t) = TGTrace::gateway(
    name => '64-otlp-json-node',
    otlp => "exporter = file\nschedule_delay = 100ms\n",
    extra => "[route /edge]\nupstream = a\ntrust_incoming_context = off\n\n"
           . "[collector]\nlisten = 127.0.0.1:$cport\n");
my $spans = "$t->{dir}/logs/spans.jsonl";
my $t0 = int(time * 1e9);

# one request; returns (trace id, SERVER span id) from traceresponse and
# the CLIENT span id from the traceparent the upstream got (or '')
sub req {
    my ($path, $status, @h) = @_;
    my ($r, $e) = TGTrace::via($t, $path, headers => \@h);
    is($r && $r->{status}, $status, "$path: $status");
    my (undef, $tid, $sid) = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
    my (undef, undef, $cid) = TGTrace::tp(TGTrace::one($e, 'traceparent'));
    return ($tid // '', $sid // '', $cid // '');
}

my %want;    # span id => expected fields
my @root   = req('/service-a/root', 200);
my @child  = req('/service-a/child', 200, ['traceparent', "00-$T-$P-01"]);
my @fail   = req('/service-a/fail?status=503', 503, ['traceparent', "00-$T-$P2-01"]);
my @none   = req('/nowhere', 404);
my @repair = req('/service-a/dup', 200, ['traceparent', "ff-$T-$P-01,00-$T-$P2-01"]);
my @edge   = req('/edge/x', 200, ['traceparent', "00-$T-$P-01"]);

$want{ $root[1] } = { what => 'root SERVER', trace => $root[0], parent => '', kind => 2,
                      status => 0, code => 200 };
$want{ $root[2] } = { what => 'root CLIENT', trace => $root[0], parent => $root[1], kind => 3,
                      status => 0, code => 200 };
$want{ $child[1] } = { what => 'continued SERVER', trace => $T, parent => $P, kind => 2,
                       status => 0, code => 200 };
$want{ $child[2] } = { what => 'continued CLIENT', trace => $T, parent => $child[1], kind => 3,
                       status => 0, code => 200 };
$want{ $fail[1] } = { what => '503 SERVER', trace => $T, parent => $P2, kind => 2,
                      status => 2, code => 503 };
$want{ $fail[2] } = { what => '503 CLIENT', trace => $T, parent => $fail[1], kind => 3,
                      status => 2, code => 503 };
$want{ $none[1] } = { what => '404 SERVER', trace => $none[0], parent => '', kind => 2,
                      status => 0, code => 404 };
$want{ $repair[1] } = { what => 'repaired SERVER', trace => $T, parent => $P2, kind => 2,
                        status => 0, code => 200, repaired => 1 };
$want{ $repair[2] } = { what => 'repaired CLIENT', trace => $T, parent => $repair[1], kind => 3,
                        status => 0, code => 200 };
$want{ $edge[1] } = { what => 'untrusted SERVER', trace => $edge[0], parent => '', kind => 2,
                      status => 0, code => 200, link => [$T, $P] };
$want{ $edge[2] } = { what => 'untrusted CLIENT', trace => $edge[0], parent => $edge[1], kind => 3,
                      status => 0, code => 200 };
is(scalar(grep { length $_ == 16 } keys %want), 11, '11 span ids known from the wire');

# two spans through the collector: one bare (ids only), one full
my $RT = 'a1a2a3a4a5a6a7a8a9aaabacadaeafb0';
my $post = JSON::PP->new->canonical->encode({ resourceSpans => [{
    resource => { attributes => [{ key => 'service.name',
                                   value => { stringValue => 'sender' } }] },
    scopeSpans => [{ spans => [
        { traceId => $RT, spanId => '0000000000000bee' },
        { traceId => $RT, spanId => '00000000000f0011', parentSpanId => '0000000000000bee',
          name => 'recv', kind => 3, startTimeUnixNano => '1700000000000000001',
          endTimeUnixNano => '1700000000000000002', status => { code => 1 },
          attributes => [{ key => 'n', value => { intValue => '-5' } },
                         { key => 'yes', value => { boolValue => JSON::PP::true } }] },
    ] }] }] });
my $pr = TG::http_get($cport, '/v1/traces', method => 'POST', body => $post,
                      headers => [['Content-Type', 'application/json']]);
is($pr && $pr->{status}, 200, 'collector: two spans accepted') or diag(TG::summary($pr));

my @file = TGTrace::wait_file_spans($spans, 13, 5);
is(scalar(@file), 13, '13 spans in spans.jsonl');
my $t1 = int(time * 1e9);     # every span has ended by now
$t->stop;

my $raw = TG::slurp($spans) // '';
unlike($raw, qr/\bnull\b/, 'no null in spans.jsonl');

my $out = `cd '$dir' && '$node' decode.js '$spans' 2>&1`;
my $rc = $? >> 8;
is($rc, 0, 'every line decoded by the OpenTelemetry JS classes') or diag($out);
my @errs = grep { /^(ERROR|MISSING)/ } split /\n/, $out;
is(scalar(@errs), 0, 'no line breaks the OTLP/JSON rules') or diag(join "\n", @errs);

my %got;
for my $l (grep { /^\{/ } split /\n/, $out) {
    my $s = JSON::PP->new->decode($l);
    $got{ $s->{spanId} } = $s;
}
is(scalar(keys %got), 13, '13 spans decoded');
my %perl = map { ($_->{span_id} => $_) } @file;

for my $id (sort { $want{$a}{what} cmp $want{$b}{what} } keys %want) {
    my $w = $want{$id};
    my $what = $w->{what};
    my $s = $got{$id};
    ok($s, "$what: decoded, span id $id") or next;
    is($s->{traceId}, $w->{trace}, "$what: traceId");
    is($s->{parentSpanId}, $w->{parent}, "$what: parentSpanId " . ($w->{parent} || 'absent'));
    is($s->{kind}, $w->{kind}, "$what: kind $w->{kind}");
    is($s->{status}, $w->{status}, "$what: status code $w->{status}");
    like($s->{start}, qr/^\d+$/, "$what: start time, decimal");
    like($s->{end}, qr/^\d+$/, "$what: end time, decimal");
    if (($s->{start} // '') =~ /^\d+$/ && ($s->{end} // '') =~ /^\d+$/) {
        cmp_ok($s->{start}, '>=', $t0, "$what: start within the test")
            or diag("start $s->{start} end $s->{end} window $t0 .. $t1");
        cmp_ok($s->{start}, '<=', $s->{end}, "$what: start <= end");
        cmp_ok($s->{end}, '<=', $t1, "$what: end within the test")
            or diag("start $s->{start} end $s->{end} window $t0 .. $t1");
    }
    my $a = $s->{attributes};
    is_deeply($a->{'http.response.status_code'}, { type => 'intValue', value => "$w->{code}" },
              "$what: http.response.status_code as intValue \"$w->{code}\"");
    is_deeply($a->{'http.request.method'}, { type => 'stringValue', value => 'GET' },
              "$what: http.request.method as stringValue")
        if $w->{kind} == 2;
    is_deeply($a->{'tracegate.traceparent_repaired'},
              $w->{repaired} ? { type => 'boolValue', value => JSON::PP::true } : undef,
              "$what: tracegate.traceparent_repaired " . ($w->{repaired} ? 'true' : 'absent'));
    my @links = map { [$_->{traceId}, $_->{spanId}] } @{ $s->{links} };
    is_deeply(\@links, $w->{link} ? [ $w->{link} ] : [], "$what: links");
    is($s->{flags} & 0xff, 1, "$what: sampled flag");
    is($s->{resource}{'service.name'}{type}, 'stringValue', "$what: resource service.name");
    is($s->{scope}{name}, 'tracegate', "$what: scope name");

    # what our own reader (JSON::PP) saw is what the decoder saw
    my $p = $perl{$id} || {};
    is_deeply([ @$p{qw(trace_id parent_span_id kind status start_ns end_ns name)} ],
              [ @$s{qw(traceId parentSpanId kind status start end name)} ],
              "$what: JSON::PP and protobufjs agree");
}

# the forwarded ones
{
    my $b = $got{'0000000000000bee'};
    ok($b, 'bare received span: decoded') and do {
        is_deeply([ @$b{qw(traceId parentSpanId name kind start end status)} ],
                  [ $RT, '', '', 0, '0', '0', 0 ],
                  'bare received span: only its ids (name, kind, times absent)');
        is_deeply($b->{attributes}{'tracegate.source.service.name'},
                  { type => 'stringValue', value => 'sender' }, 'bare received span: sender kept');
    };
    my $f = $got{'00000000000f0011'};
    ok($f, 'full received span: decoded') and do {
        is_deeply([ @$f{qw(traceId parentSpanId name kind start end status)} ],
                  [ $RT, '0000000000000bee', 'recv', 3, '1700000000000000001',
                    '1700000000000000002', 1 ],
                  'full received span: ids, name, kind, times, status OK');
        is_deeply($f->{attributes}{n}, { type => 'intValue', value => '-5' },
                  'full received span: negative intValue');
        is_deeply($f->{attributes}{yes}, { type => 'boolValue', value => JSON::PP::true },
                  'full received span: boolValue');
    };
}

done_testing();
