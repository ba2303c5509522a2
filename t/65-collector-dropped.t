#!/usr/bin/perl
# Attributes a received span could not keep are counted: a span with 2,002
# attributes keeps what fits and says it dropped the rest, plus what its
# sender had dropped already (dropped_attributes_count as sent), in the
# viewer's JSON API and in the spans forwarded to the exporter; protobuf and
# JSON alike.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use TG;
use TGDemo;
use TGPB;
TG::need_modules(qw(otlp traces collector));

my $t = TG->new('65-collector-dropped');
my $cport = TG::free_port();
$t->write_conf($t->main_conf
    . "[collector]\nlisten = 127.0.0.1:$cport\n\n"
    . "[traces]\nlocation = /_traces\nroot = $TG::ROOT/html/traces\n\n"
    . "[otlp]\nexporter = file\nfile = logs/spans.jsonl\nschedule_delay = 100ms\n");
$t->start_ok;
ok(TG::wait_for(5, sub { TG::port_accepts($cport, 0.2) }), 'the collector listens');

my %sent;
for my $enc ([ 'protobuf', 'application/x-protobuf', \&TGPB::pb ],
             [ 'JSON', 'application/json', \&TGPB::json ]) {
    my ($name, $ct, $encode) = @$enc;
    for my $case ([ 2002, 0 ], [ 2002, 5 ], [ 3, 7 ]) {
        my ($n, $sender) = @$case;
        my $what = "$name, $n attributes"
                 . ($sender ? ", $sender dropped by the sender" : '');
        my $req = TGPB::request(spans => 1, attrs => $n,
                                dropped_attributes_count => $sender);
        my $r = TG::http_get($cport, '/v1/traces', method => 'POST',
                             body => $encode->($req),
                             headers => [[ 'Content-Type', $ct ]]);
        is($r && $r->{status}, 200, "$what: 200") or diag(TG::summary($r));
        my $tr = TGDemo::wait_trace($t, $req->{trace_id}, 1);
        my $sp = $tr && $tr->{spans}[0];
        ok($sp, "$what: stored") or next;
        my $kept = scalar keys %{ $sp->{attributes} };
        cmp_ok($kept, ">", 0, "$what: keeps some ($kept)");
        cmp_ok($kept, "<=", $n, "$what: keeps at most $n");
        is($sp->{dropped_attributes_count}, $n + $sender - $kept,
           "$what: dropped_attributes_count is received + sent - kept");
        $sent{ $req->{trace_id} } = $n + $sender;
    }
}

# the exporter's copy: dropped = received + sent - what it carries (it
# also carries tracegate.source.service.name, when there is room)
ok(TG::wait_for(5, sub {
       my $f = TG::slurp("$t->{dir}/logs/spans.jsonl") // '';
       (() = $f =~ /"traceId"/g) >= 1
       && !grep { index($f, $_) < 0 } keys %sent }),
   'the received spans are forwarded');
my %exported;
for my $line (split /\n/, TG::slurp("$t->{dir}/logs/spans.jsonl") // '') {
    my $j = eval { JSON::PP::decode_json($line) } or next;
    for my $rs (@{ $j->{resourceSpans} || [] }) {
        for my $ss (@{ $rs->{scopeSpans} || [] }) {
            for my $sp (@{ $ss->{spans} || [] }) {
                my $tid = lc($sp->{traceId} // '');
                next unless $sent{$tid};
                my @own = grep { $_->{key} ne 'tracegate.source.service.name' }
                          @{ $sp->{attributes} || [] };
                $exported{$tid} = [ scalar @own, $sp->{droppedAttributesCount} // 0,
                                    @own < @{ $sp->{attributes} || [] } ? 0 : 1 ];
            }
        }
    }
}
for my $tid (sort keys %sent) {
    my $e = $exported{$tid};
    ok($e, "exported: trace $tid") or next;
    # the source attribute is dropped itself when there is no room left
    is($e->[1], $sent{$tid} - $e->[0] + $e->[2],
       "exported: $e->[0] kept, droppedAttributesCount $e->[1] of $sent{$tid}");
}

$t->stop;
done_testing();
