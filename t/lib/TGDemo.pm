package TGDemo;

# The demo set-up for t/80 and t/81: a gateway with [collector] and [traces]
# on free ports and the three demo services (demo/service.pl) behind it.
#
#   my $d = TGDemo::start($t, workers => 2) or exit;   # ok()s on its way
#   my $j = TGDemo::api($t, '/_traces/api/traces');     # decoded JSON or undef
#   my $tr = TGDemo::wait_trace($t, $trace_id, $spans); # polls until $spans
#
# Services are started with fork/exec, recorded in %TG::STARTED and stopped
# by TG's END block like every other process of a test.

use strict;
use warnings;

use JSON::PP ();
use POSIX ();
use Test::More ();
use Time::HiRes qw(time sleep);
use TG;

our %SPANS = (                      # spans per scenario (gateway + services)
    'parallel'         => 13,
    'sequential'       => 13,
    'circular'         => 16,
    'failure/timeout'  => 8,
    'failure/partial'  => 13,
    'failure/cascade'  => 12,
);

sub start {
    my ($t, %o) = @_;
    my $cport = TG::free_port();
    my @sp = map { TG::free_port() } 1 .. 3;
    my %svc = (a => $sp[0], b => $sp[1], c => $sp[2]);
    my $conf = $t->main_conf('workers = ' . ($o{workers} // 2));
    for my $s (qw(a b c)) {
        $conf .= "[upstream service-$s]\nserver = 127.0.0.1:$svc{$s}\n\n"
               . "[route /service-$s]\nupstream = service-$s\n\n";
    }
    $conf .= "[collector]\nlisten = 127.0.0.1:$cport\n\n"
           . "[traces]\nlocation = /_traces\nroot = $TG::ROOT/html/traces\n"
           . ($o{traces_extra} // '') . "\n"
           . "[otlp]\nexporter = file\nfile = logs/spans.jsonl\n"
           . "schedule_delay = 100ms\n";
    $t->write_conf($conf);
    for my $s (qw(a b c)) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            $TG::IS_CHILD = 1;
            open STDIN, '<', '/dev/null';
            open STDOUT, '>>', "$t->{dir}/logs/service-$s.log";
            open STDERR, '>>', "$t->{dir}/logs/service-$s.log";
            { exec $^X, "$TG::ROOT/demo/service.pl", "service-$s", $svc{$s},
                  "--gateway=http://127.0.0.1:$t->{port}",
                  "--otlp=http://127.0.0.1:$cport/v1/traces",
                  '--slow_ms=1000', '--timeout_ms=300' }
            POSIX::_exit(127);
        }
        $TG::STARTED{$pid} = { kind => 'mock', sig => 'TERM' };
    }
    for my $s (qw(a b c)) {
        TG::wait_for(10, sub { TG::port_accepts($svc{$s}, 0.2) })
            or do { Test::More::diag("service-$s did not listen"); return undef };
    }
    $t->start_ok;
    Test::More::ok(TG::wait_for(10, sub { TG::port_accepts($cport, 0.2) }),
                   "collector listens on 127.0.0.1:$cport");
    return { collector => $cport, services => \%svc };
}

# GET $path on the gateway; the decoded JSON body, or undef. The viewer's
# API answers a loopback listener only with a loopback name in Host.
sub api {
    my ($t, $path) = @_;
    my $r = TG::http_get($t->{port}, $path, host => "localhost:$t->{port}")
        or return undef;
    return undef unless $r->{status} == 200 && ($r->{body} // '') =~ /^\{/;
    my $j = eval { JSON::PP::decode_json($r->{body}) };
    return $j;
}

# The trace once it has $n spans (and no more arrive for 200 ms), or the
# last state seen after 10 s.
sub wait_trace {
    my ($t, $tid, $n) = @_;
    my ($last, $since);
    my $end = time + 10;
    while (time < $end) {
        my $j = api($t, "/_traces/api/traces/$tid");
        my $cnt = $j ? scalar @{ $j->{spans} } : 0;
        if ($last && $j && $cnt == scalar @{ $last->{spans} }) {
            return $j if $cnt >= $n && time - $since >= 0.2;
        } else {
            $since = time;
        }
        $last = $j if $j;
        sleep 0.1;
    }
    return $last;
}

# (roots, orphans): spans without a parent, spans whose parent is missing.
sub shape {
    my ($tr) = @_;
    my %ids = map { $_->{span_id} => 1 } @{ $tr->{spans} };
    my @roots = grep { !defined $_->{parent_span_id} } @{ $tr->{spans} };
    my @orph = grep { defined $_->{parent_span_id} && !$ids{ $_->{parent_span_id} } }
               @{ $tr->{spans} };
    return (\@roots, \@orph);
}

# The trace id a gateway response belongs to (traceresponse header).
sub trace_id_of {
    my ($r) = @_;
    my $tr = TG::hdr($r, 'traceresponse') // '';
    return $tr =~ /^00-([0-9a-f]{32})-/ ? $1 : undef;
}

1;
