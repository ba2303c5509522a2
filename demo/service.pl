#!/usr/bin/perl
# A demo microservice for the quick start and the tests (Perl core modules
# only). It propagates traceparent and X-Trace-ID, reports its own SERVER,
# CLIENT and INTERNAL spans as OTLP/JSON to the gateway's collector, and
# calls the other services through the gateway:
#
#   /service-a/api/demo/parallel          A calls B and C at once
#   /service-a/api/demo/sequential        A calls B, then C
#   /service-a/api/demo/circular          A -> B -> C -> A (back through the gateway)
#   /service-a/api/demo/failure/timeout   A gives up on a slow C (504)
#   /service-a/api/demo/failure/partial   B answers, C fails: A answers 200, degraded
#   /service-a/api/demo/failure/cascade   C fails, B and A fail with it (502)
#   /service-X/api/work                   leaf work (an INTERNAL span)
#   anything else                         a JSON echo of the trace context
#
# service-b sends traceparent downstream twice, comma-joined, the way double
# auto-instrumentation does, so the gateway's repair shows in the viewer.
#
# usage: service.pl NAME PORT [PIDFILE] [--gateway=URL] [--otlp=URL]
#   --gateway  base URL of the gateway (default http://127.0.0.1:8080)
#   --otlp     OTLP/HTTP traces URL (default http://127.0.0.1:4318/v1/traces;
#              "off" disables span export)
use strict;
use warnings;
use IO::Socket::INET;
use IO::Select;
use POSIX ();
use Time::HiRes ();

my (@pos, %opt);
for (@ARGV) {
    if (/^--(\w+)=(.*)$/) { $opt{$1} = $2 } else { push @pos, $_ }
}
my ($name, $port, $pidfile) = @pos;
die "usage: $0 NAME PORT [PIDFILE] [--gateway=URL] [--otlp=URL]\n"
    unless $name && $port;
my $gateway = $opt{gateway} // 'http://127.0.0.1:8080';
my $otlp = $opt{otlp} // 'http://127.0.0.1:4318/v1/traces';
my ($ghost, $gport) = $gateway =~ m{^http://([^:/]+):(\d+)} or die "bad --gateway\n";
my ($ohost, $oport, $opath) = $otlp =~ m{^http://([^:/]+):(\d+)(/\S*)?$};
$opath //= '/v1/traces';
my $slow_ms = $opt{slow_ms} // 1200;      # how long the slow endpoint takes
my $timeout_ms = $opt{timeout_ms} // 400;  # A's patience in failure/timeout

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
    Listen => 128, ReuseAddr => 1) or die "$name: listen on $port: $!\n";
if ($pidfile) {
    open my $fh, '>', $pidfile or die "$pidfile: $!\n";
    print $fh "$$\n";
    close $fh;
}
$SIG{CHLD} = sub { 1 while waitpid(-1, POSIX::WNOHANG()) > 0 };
$SIG{TERM} = sub { unlink $pidfile if $pidfile; exit 0 };
$SIG{PIPE} = 'IGNORE';

sub json_str {
    my $s = shift // '';
    $s =~ s/(["\\])/\\$1/g;
    $s =~ s/([\x00-\x1f])/sprintf('\\u%04x', ord $1)/ge;
    return "\"$s\"";
}

sub rand_hex {
    my $n = shift;
    my $h;
    do { $h = join '', map { sprintf '%02x', int rand 256 } 1 .. $n }
        while $h =~ /^0+$/;
    return $h;
}

sub now_ns { return sprintf '%.0f', Time::HiRes::time() * 1e9 }

# --------------------------------------------------------------------------
# spans of the current request

my @spans;

sub span_start {
    my (%s) = @_;
    $s{span_id} //= rand_hex(8);
    $s{start} = now_ns();
    $s{attrs} //= [];
    return \%s;
}

sub span_end {
    my ($s, %o) = @_;
    $s->{end} = now_ns();
    $s->{status} = $o{status} if defined $o{status};
    $s->{message} = $o{message} if defined $o{message};
    push @{$s->{attrs}}, @{$o{attrs} || []};
    push @spans, $s;
}

sub attr_json {
    my ($k, $v) = @_;
    my $val = $v =~ /^-?\d{1,15}$/ ? "{\"intValue\":\"$v\"}"
            : $v eq 'true' || $v eq 'false' ? "{\"boolValue\":$v}"
            : '{"stringValue":' . json_str($v) . '}';
    return '{"key":' . json_str($k) . ",\"value\":$val}";
}

sub export_spans {
    return unless @spans && $ohost;
    my @js;
    for my $s (@spans) {
        my @a;
        my @kv = @{$s->{attrs}};
        while (@kv) { my $k = shift @kv; my $v = shift @kv; push @a, attr_json($k, $v) }
        push @js, sprintf('{"traceId":"%s","spanId":"%s","parentSpanId":"%s",'
            . '"name":%s,"kind":%d,"startTimeUnixNano":"%s","endTimeUnixNano":"%s",'
            . '"attributes":[%s],"status":{"code":%d%s}}',
            $s->{trace_id}, $s->{span_id}, $s->{parent_id} // '', json_str($s->{name}),
            $s->{kind}, $s->{start}, $s->{end}, join(',', @a), $s->{status} // 0,
            defined $s->{message} ? ',"message":' . json_str($s->{message}) : '');
    }
    my $body = '{"resourceSpans":[{"resource":{"attributes":['
        . attr_json('service.name', $name) . ','
        . attr_json('service.namespace', 'tracegate-demo') . ','
        . attr_json('telemetry.sdk.language', 'perl')
        . ']},"scopeSpans":[{"scope":{"name":"tracegate-demo"},"spans":['
        . join(',', @js) . ']}]}]}';
    @spans = ();
    my $c = IO::Socket::INET->new(PeerAddr => $ohost, PeerPort => $oport,
                                  Timeout => 2) or return;
    print $c "POST $opath HTTP/1.1\r\nHost: $ohost:$oport\r\n"
        . "Content-Type: application/json\r\nContent-Length: " . length($body)
        . "\r\nConnection: close\r\n\r\n$body";
    my $sel = IO::Select->new($c);
    my $buf = '';
    while ($sel->can_read(2)) { last unless sysread($c, $buf, 4096, length $buf) }
    warn "$name: span export: " . ($buf =~ /^(\S+ \d+[^\r\n]*)/ ? $1 : 'no answer')
        . "\n" unless $buf =~ m{^HTTP/1\.\d 200};
}

# --------------------------------------------------------------------------
# calls through the gateway

# Starts a GET of $path through the gateway as a CLIENT span of $parent.
sub call_start {
    my ($ctx, $path) = @_;
    my $cs = span_start(name => "GET", kind => 3, trace_id => $ctx->{trace_id},
                        parent_id => $ctx->{server}{span_id});
    my $tp = "00-$ctx->{trace_id}-$cs->{span_id}-01";
    # double auto-instrumentation: the same header value twice, comma-joined
    $tp = "$tp,$tp" if $name eq 'service-b';
    $cs->{attrs} = ['http.request.method', 'GET',
                    'url.full', "$gateway$path", 'server.address', $ghost,
                    'server.port', $gport];
    push @{$cs->{attrs}}, 'tracegate.demo.duplicated_traceparent', 'true'
        if $name eq 'service-b';
    my $s = IO::Socket::INET->new(PeerAddr => $ghost, PeerPort => $gport,
                                  Timeout => 2);
    my $call = { span => $cs, path => $path, sock => $s, buf => '' };
    unless ($s) {
        $call->{error} = "connect: $!";
        return $call;
    }
    print $s "GET $path HTTP/1.1\r\nHost: $ghost:$gport\r\ntraceparent: $tp\r\n"
        . ($ctx->{xid} ? "X-Trace-ID: $ctx->{xid}\r\n" : '')
        . "Connection: close\r\n\r\n";
    return $call;
}

# Reads the answers of @calls (started together) until $timeout_s.
sub call_finish {
    my ($timeout_s, @calls) = @_;
    my $end = Time::HiRes::time() + $timeout_s;
    my %open = map { ($_->{sock} ? (fileno($_->{sock}) => $_) : ()) } @calls;
    my $sel = IO::Select->new(map { $_->{sock} } values %open);
    while (%open) {
        my $left = $end - Time::HiRes::time();
        last if $left <= 0;
        for my $fh ($sel->can_read($left)) {
            my $c = $open{fileno $fh};
            my $n = sysread($fh, $c->{buf}, 65536, length $c->{buf});
            next if $n;
            $sel->remove($fh);
            delete $open{fileno $fh};
        }
    }
    for my $c (@calls) {
        my $cs = $c->{span};
        if (!$c->{error} && $c->{sock} && $open{fileno $c->{sock}}) {
            $c->{error} = 'timeout';
        }
        close $c->{sock} if $c->{sock};
        if (!$c->{error} && $c->{buf} =~ m{^HTTP/1\.\d (\d{3})[^\r\n]*\r\n(.*?)\r\n\r\n(.*)\z}s) {
            $c->{status} = $1;
            $c->{body} = $3;
        } elsif (!$c->{error}) {
            $c->{error} = 'invalid response';
        }
        if ($c->{error}) {
            span_end($cs, status => 2, message => $c->{error},
                     attrs => ['error.type', $c->{error} eq 'timeout' ? 'timeout' : 'connection']);
        } else {
            span_end($cs, status => $c->{status} >= 400 ? 2 : 0,
                     attrs => ['http.response.status_code', $c->{status},
                               $c->{status} >= 400 ? ('error.type', $c->{status}) : ()]);
        }
    }
    return @calls;
}

sub call {
    my ($ctx, $timeout_s, @paths) = @_;
    return call_finish($timeout_s, map { call_start($ctx, $_) } @paths);
}

sub work {
    my ($ctx, $what, $ms) = @_;
    my $s = span_start(name => $what, kind => 1, trace_id => $ctx->{trace_id},
                       parent_id => $ctx->{server}{span_id});
    Time::HiRes::sleep($ms / 1000);
    span_end($s, attrs => ['demo.work_ms', $ms]);
}

sub summary {
    my @calls = @_;
    return '[' . join(',', map {
        '{"path":' . json_str($_->{path}) . ',"status":'
        . ($_->{status} // 0) . ($_->{error} ? ',"error":' . json_str($_->{error}) : '')
        . '}' } @calls) . ']';
}

# --------------------------------------------------------------------------
# request handling

sub handle {
    my ($ctx, $method, $target) = @_;
    my $path = $target =~ s/\?.*//r;
    my $svc = $name;
    my $b = '/service-b';
    my $c = '/service-c';

    if ($path =~ m{^/\Q$svc\E/api/work$}) {
        work($ctx, $svc eq 'service-c' ? 'SELECT inventory' : 'compute',
             $svc eq 'service-c' ? 25 : 10);
        return (200, "{\"service\":\"$svc\",\"work\":\"done\"}");
    }
    if ($path =~ m{^/\Q$svc\E/api/slow$}) {
        work($ctx, 'slow query', $slow_ms);
        return (200, "{\"service\":\"$svc\",\"work\":\"slow\"}");
    }
    if ($path =~ m{^/\Q$svc\E/api/fail$}) {
        work($ctx, 'SELECT inventory', 5);
        $ctx->{server}{message} = 'inventory database unavailable';
        return (500, "{\"service\":\"$svc\",\"error\":\"inventory database unavailable\"}");
    }
    # B's and C's legs of the chained scenarios
    if ($path =~ m{^/service-b/api/chain/(circular|cascade)$} && $svc eq 'service-b') {
        my @r = call($ctx, 3, $1 eq 'circular' ? "$c/api/chain/circular" : "$c/api/fail");
        my $ok = ($r[0]{status} // 0) == 200;
        return ($ok ? 200 : 502, "{\"service\":\"$svc\",\"calls\":" . summary(@r) . "}");
    }
    if ($path =~ m{^/service-c/api/chain/circular$} && $svc eq 'service-c') {
        my @r = call($ctx, 3, '/service-a/api/work');
        my $ok = ($r[0]{status} // 0) == 200;
        return ($ok ? 200 : 502, "{\"service\":\"$svc\",\"calls\":" . summary(@r) . "}");
    }

    if ($svc eq 'service-a' && $path =~ m{^/service-a/api/demo/(.+)$}) {
        my $sc = $1;
        my @r;
        if ($sc eq 'parallel') {
            @r = call($ctx, 3, "$b/api/work", "$c/api/work");
        } elsif ($sc eq 'sequential') {
            @r = (call($ctx, 3, "$b/api/work"), call($ctx, 3, "$c/api/work"));
        } elsif ($sc eq 'circular') {
            @r = call($ctx, 5, "$b/api/chain/circular");
        } elsif ($sc eq 'failure/timeout') {
            @r = call($ctx, $timeout_ms / 1000, "$c/api/slow");
            return (504, "{\"service\":\"$svc\",\"scenario\":\"$sc\","
                . "\"error\":\"service-c did not answer in ${timeout_ms} ms\","
                . "\"calls\":" . summary(@r) . "}") if $r[0]{error};
        } elsif ($sc eq 'failure/partial') {
            @r = call($ctx, 3, "$b/api/work", "$c/api/fail");
            my @failed = grep { ($_->{status} // 0) != 200 } @r;
            return (200, "{\"service\":\"$svc\",\"scenario\":\"$sc\","
                . "\"degraded\":" . (@failed ? 'true' : 'false')
                . ",\"calls\":" . summary(@r) . "}");
        } elsif ($sc eq 'failure/cascade') {
            @r = call($ctx, 3, "$b/api/chain/cascade");
        } else {
            return (404, "{\"error\":\"unknown scenario\",\"scenarios\":[\"parallel\","
                . "\"sequential\",\"circular\",\"failure/timeout\",\"failure/partial\","
                . "\"failure/cascade\"]}");
        }
        my @failed = grep { ($_->{status} // 0) != 200 } @r;
        my $st = @failed ? 502 : 200;
        $ctx->{server}{message} = "a downstream call failed" if @failed;
        return ($st, "{\"service\":\"$svc\",\"scenario\":\"$sc\",\"calls\":"
            . summary(@r) . "}");
    }
    return (200, undef); # echo
}

while (1) {
    my $cl = $srv->accept or next;
    my $pid = fork;
    if (!defined $pid || $pid) { close $cl; next; }
    close $srv;
    my $buf = '';
    while (1) {
        while ($buf !~ /\r\n\r\n/) {
            my $n = sysread($cl, $buf, 65536, length $buf);
            exit 0 unless $n;
        }
        my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
        my ($line, @lines) = split /\r\n/, $head;
        my %h;
        for (@lines) {
            my ($k, $v) = split /:\s*/, $_, 2;
            $k = lc $k;
            $h{$k} = exists $h{$k} ? "$h{$k}, $v" : $v;
        }
        my $len = $h{'content-length'} // 0;
        while (length($rest) < $len) {
            my $n = sysread($cl, $rest, 65536, length $rest);
            exit 0 unless $n;
        }
        $buf = substr($rest, $len);
        my ($method, $target) = split / /, $line;

        # the first valid traceparent continues the trace, else a new one
        my ($tid, $pid_in);
        for my $tp (split /\s*,\s*/, $h{traceparent} // '') {
            if ($tp =~ /^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$/
                && $1 !~ /^0+$/ && $2 !~ /^0+$/) {
                ($tid, $pid_in) = ($1, $2);
                last;
            }
        }
        $tid //= rand_hex(16);
        my $xid = (split /\s*,\s*/, $h{'x-trace-id'} // '')[0];
        my $route = $target =~ s/\?.*//r;
        my $server = span_start(name => "$method $route", kind => 2,
                                trace_id => $tid, parent_id => $pid_in);
        my $ctx = { trace_id => $tid, server => $server, xid => $xid };
        my ($status, $body) = handle($ctx, $method, $target);
        $body //= sprintf("{\"service\":%s,\"method\":%s,\"target\":%s,"
            . "\"traceparent\":%s,\"tracestate\":%s,\"x_trace_id\":%s}",
            json_str($name), json_str($method), json_str($target),
            json_str($h{traceparent}), json_str($h{tracestate}),
            json_str($h{'x-trace-id'}));
        $body .= "\n";
        my $close = ($h{connection} // '') =~ /close/i;
        my $reason = { 200 => 'OK', 404 => 'Not Found', 500 => 'Internal Server Error',
                       502 => 'Bad Gateway', 504 => 'Gateway Timeout' }->{$status};
        print $cl "HTTP/1.1 $status $reason\r\nContent-Type: application/json\r\n"
            . "Content-Length: " . length($body) . "\r\n"
            . ($close ? "Connection: close\r\n" : "") . "\r\n"
            . ($method eq 'HEAD' ? '' : $body);
        span_end($server, status => $status >= 500 ? 2 : 0,
                 attrs => ['http.request.method', $method, 'url.path', $route,
                           'http.route', $route, 'http.response.status_code', $status,
                           $xid ? ('http.request.header.x-trace-id', $xid) : (),
                           $status >= 500 ? ('error.type', $status) : ()]);
        export_spans();
        exit 0 if $close;
    }
}
