#!/usr/bin/perl
# OTLP encoding checked independently of protobuf-c: tests/tools/otlp_dump
# writes a request with three known spans, `protoc --decode` (Debian's
# protobuf-compiler) reads it with our .proto files, and JSON::PP reads the
# OTLP/JSON form.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use File::Path qw(make_path remove_tree);
use TGOTLP;
use TG;
TG::need_modules(qw(otlp));

my $tool = "$TGOTLP::ROOT/objs/tests/tools/otlp_dump";
plan skip_all => "$tool not built (make)" unless -x $tool;

my $tmp = "$TGOTLP::ROOT/t/tmp/62-otlp-encode.$$";
make_path($tmp);

SKIP: {
    skip 'protoc not installed (apt: protobuf-compiler)', 1
        unless TGOTLP::have_protoc();

    system("'$tool' > '$tmp/req.bin'") == 0 or die "otlp_dump failed";
    my @s = TGOTLP::decode_file("$tmp/req.bin");
    is(scalar @s, 3, 'three spans decoded by protoc');

    my ($root, $client, $remote) = @s;
    is($root->{trace_id}, 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf', 'trace id bytes');
    is($root->{span_id}, '0102030405060708', 'span id bytes');
    is($root->{parent_span_id}, '', 'root span: empty parent_span_id');
    is($root->{name}, 'GET /service-a', 'name');
    is($root->{kind}, 'SPAN_KIND_SERVER', 'kind SERVER');
    is($root->{start}, '1700000000000000001', 'start_time_unix_nano');
    is($root->{end}, '1700000000500000002', 'end_time_unix_nano');
    is($root->{flags}, 257, 'flags: sampled, parent not remote');
    is($root->{status}, 'STATUS_CODE_UNSET', 'status unset');
    is($root->{attributes}{'http.request.method'}, 'GET', 'string attribute');
    is($root->{types}{'http.request.method'}, 'string_value', '... as string');
    is($root->{attributes}{'http.response.status_code'}, 200, 'int attribute');
    is($root->{types}{'http.response.status_code'}, 'int_value', '... as int');
    is($root->{attributes}{'tracegate.repaired'}, 'true', 'bool attribute');
    is($root->{types}{'tracegate.repaired'}, 'bool_value', '... as bool');
    is(scalar keys %{ $root->{attributes} }, 6, 'six attributes');
    is_deeply($root->{links},
              [ { trace_id => 'cc' x 16, span_id => 'dd' x 8, flags => 768 } ],
              'link to the incoming context');
    is($root->{resource}{'service.name'}, 'otlp-dump', 'resource service.name');
    is($root->{resource}{'telemetry.sdk.language'}, 'c', 'sdk language');
    is($root->{scope}{name}, 'tracegate', 'scope name');
    like($root->{scope}{version}, qr/^\d+\.\d+\.\d+/, 'scope version');

    is($client->{parent_span_id}, '0102030405060708', 'child: parent id');
    is($client->{kind}, 'SPAN_KIND_CLIENT', 'kind CLIENT');
    is($client->{status}, 'STATUS_CODE_ERROR', 'status ERROR');
    is($client->{dropped_attributes_count}, 2, 'dropped_attributes_count');
    is($client->{attributes}{'http.request.resend_count'}, 1, 'resend_count');
    is_deeply($client->{links}, [], 'no links');

    is($remote->{flags}, 769, 'SERVER with a parent: remote parent flag');
    is($remote->{name}, 'POST "q"', 'quote in a name');
    is($remote->{attributes}{'user_agent.original'}, "curl\xef\xbf\xbd/8",
       'invalid UTF-8 replaced by U+FFFD');
    is($remote->{attributes}{negative}, -7, 'negative int');
    is($remote->{attributes}{off}, 'false', 'false bool is sent');
}

my $json = `'$tool' --json`;
is($? >> 8, 0, 'otlp_dump --json ran');
is(($json =~ tr/\n//), 1, 'one line');
my $j = eval { JSON::PP->new->utf8->decode($json) };
ok($j, 'valid JSON') or diag($@);
my $spans = $j->{resourceSpans}[0]{scopeSpans}[0]{spans} || [];
is(scalar @$spans, 3, 'three spans in JSON');
is($spans->[0]{traceId}, 'a0a1a2a3a4a5a6a7a8a9aaabacadaeaf', 'traceId hex');
is($spans->[0]{spanId}, '0102030405060708', 'spanId hex');
ok(!exists $spans->[0]{parentSpanId}, 'root: no parentSpanId');
is($spans->[1]{parentSpanId}, '0102030405060708', 'parentSpanId hex');
is($spans->[0]{kind}, 2, 'kind as an integer');
is($spans->[0]{startTimeUnixNano}, '1700000000000000001',
   'times as decimal strings');
my %a = map { $_->{key} => $_->{value} } @{ $spans->[0]{attributes} };
is_deeply($a{'http.response.status_code'}, { intValue => '200' },
          'intValue as a string');
ok($a{'tracegate.repaired'}{boolValue}, 'boolValue true');
is($spans->[1]{status}{code}, 2, 'status code as an integer');
is($spans->[1]{droppedAttributesCount}, 2, 'droppedAttributesCount');
is($spans->[2]{name}, 'POST "q"', 'escaped quote round-trips');
my %a2 = map { $_->{key} => $_->{value} } @{ $spans->[2]{attributes} };
is($a2{'user_agent.original'}{stringValue}, "curl\x{fffd}/8",
   'U+FFFD in JSON');
is($j->{resourceSpans}[0]{scopeSpans}[0]{scope}{name}, 'tracegate',
   'JSON scope');

remove_tree($tmp) if Test::More->builder->is_passing;
done_testing();
