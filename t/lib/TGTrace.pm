package TGTrace;

# Helpers for the trace-context and span tests (t/2*, t/3*, t/6*, t/85).
# Perl core modules only; builds on TG.pm.
#
#   TGTrace::clean_env();                 # no OTEL_* from the caller's shell
#   my ($t, $up) = TGTrace::gateway(name => '20-tp', trace => "x = y\n");
#   my ($r, $e) = TGTrace::via($t, '/service-a/x', headers => [...]);
#   my $tp = TGTrace::one($e, 'traceparent');   # exactly one line, or undef
#   my ($ver, $tid, $pid, $flags) = TGTrace::tp($tp);
#
# gateway() writes one [upstream a] (the mock, or servers given), a route
# /service-a to it, [trace] and [otlp] sections (exporter = none unless otlp
# is given) and starts tracegate (start_ok: the test file ends when it does
# not start).

use strict;
use warnings;

use JSON::PP ();
use Test::More ();
use Time::HiRes qw(time sleep);
use TG;

our $TP_RE = qr/^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

sub clean_env {
    delete $ENV{$_} for grep { /^OTEL_/ } keys %ENV;
}

# Options: name, up (a TG::Mock) or servers (text of server lines), handler,
# main (extra [main] lines), loglevel, route (extra [route /service-a]
# lines), trace ([trace] body), otlp ([otlp] body; default exporter = none),
# extra (more sections), env => { OTEL_X => v } (set for the start only).
sub gateway {
    my (%o) = @_;
    my $up = $o{up};
    $up //= TG::mock_upstream(name => 'a', handler => $o{handler})
        unless defined $o{servers};
    my $t = TG->new($o{name} // 'trace');
    my $main = $t->main_conf($o{main});
    $main =~ s/error\.log info/error.log $o{loglevel}/ if $o{loglevel};
    my $servers = $o{servers} // "server = 127.0.0.1:$up->{port}\n";
    my $conf = $main
             . "[upstream a]\n$servers\n"
             . "[route /service-a]\nupstream = a\n" . ($o{route} // '') . "\n"
             . "[trace]\n" . ($o{trace} // '') . "\n"
             . "[otlp]\n" . ($o{otlp} // "exporter = none\n") . "\n"
             . ($o{extra} // '');
    $t->write_conf($conf);
    my %env = %{ $o{env} || {} };
    my %old = map { ($_ => $ENV{$_}) } keys %env;
    $ENV{$_} = $env{$_} for keys %env;
    my $pid = $t->start;
    for (keys %old) { if (defined $old{$_}) { $ENV{$_} = $old{$_} } else { delete $ENV{$_} } }
    Test::More::ok($pid, "$t->{name}: tracegate started")
        or do { Test::More::done_testing(); exit 1 };
    return ($t, $up);
}

# One request through the gateway; returns (response, echo of the upstream).
sub via {
    my ($t, $path, %o) = @_;
    my $r = TG::request($t->{port}, $path, %o);
    my $e = TG::parse_echo($r && $r->{body});
    return ($r, $e);
}

# The value of header $name as the upstream received it when it came as
# exactly one line; undef (and a diag) otherwise.
sub one {
    my ($e, $name) = @_;
    return undef unless $e;
    my $v = $e->{h}{lc $name} || [];
    return $v->[0] if @$v == 1;
    Test::More::diag("upstream got " . scalar(@$v) . " '$name' lines: @$v") if @$v > 1;
    return undef;
}

# Names of the upstream's header lines that match lc $name (to check casing).
sub names {
    my ($e, $name) = @_;
    return () unless $e;
    return map { $_->[0] } grep { lc $_->[0] eq lc $name } @{ $e->{headers} };
}

# ("00", trace id, parent id, flags) of a v00 traceparent, or ().
sub tp {
    my ($v) = @_;
    return () unless defined $v && $v =~ $TP_RE;
    return ('00', $1, $2, $3);
}

# The response header $name when present exactly once, else undef.
sub rhdr1 {
    my ($r, $name) = @_;
    return undef unless $r;
    my $v = $r->{h}{lc $name} || [];
    return @$v == 1 ? $v->[0] : undef;
}

# Spans written by the file exporter (OTLP/JSON lines) as flat hashes:
# { trace_id, span_id, parent_span_id, name, kind, start_ns, end_ns (strings
#   of digits), status, attributes
#   => { k => v }, links => [..], resource => { k => v } }.
sub file_spans {
    my ($file) = @_;
    my @s;
    open my $fh, '<', $file or return ();
    my $json = JSON::PP->new->utf8;
    while (my $l = <$fh>) {
        next unless $l =~ /\S/;
        my $j = eval { $json->decode($l) } or do {
            Test::More::diag("not JSON in $file: " . substr($l, 0, 200));
            next;
        };
        for my $rs (@{ $j->{resourceSpans} || [] }) {
            my %res = map { ($_->{key} => _jv($_->{value})) }
                      @{ $rs->{resource}{attributes} || [] };
            for my $ss (@{ $rs->{scopeSpans} || [] }) {
                for my $sp (@{ $ss->{spans} || [] }) {
                    push @s, {
                        trace_id => $sp->{traceId} // '',
                        span_id => $sp->{spanId} // '',
                        parent_span_id => $sp->{parentSpanId} // '',
                        name => $sp->{name} // '',
                        kind => $sp->{kind} // 0,
                        start_ns => $sp->{startTimeUnixNano} // 0,
                        end_ns => $sp->{endTimeUnixNano} // 0,
                        status => ($sp->{status} && $sp->{status}{code}) // 0,
                        attributes => { map { ($_->{key} => _jv($_->{value})) }
                                        @{ $sp->{attributes} || [] } },
                        links => $sp->{links} || [],
                        resource => \%res,
                        scope => $ss->{scope} || {},
                    };
                }
            }
        }
    }
    return @s;
}

sub _jv {
    my ($v) = @_;
    return undef unless ref $v eq 'HASH';
    for my $k (qw(stringValue intValue boolValue doubleValue)) {
        return $v->{$k} if exists $v->{$k};
    }
    return undef;
}

# Waits (bounded by $timeout) until $n spans were accepted (2xx) by the
# TGOTLP receiver $c; returns the count seen.
sub wait_spans {
    my ($c, $n, $timeout) = @_;
    my $got = 0;
    TG::wait_for($timeout // 5, sub {
        $got = 0;
        $got += $_->{spans} for grep { $_->{status} =~ /^2/ } $c->requests;
        $got >= $n;
    });
    return $got;
}

# Waits until the file exporter has written >= $n spans to $file.
sub wait_file_spans {
    my ($file, $n, $timeout) = @_;
    my @s;
    TG::wait_for($timeout // 5, sub { @s = file_spans($file); @s >= $n });
    return @s;
}

1;
