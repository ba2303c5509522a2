#!/usr/bin/perl
# Access log: combined (nginx's, byte for byte), trace (the default:
# combined + trace fields that match what the upstream received), json (one
# object per line, OpenTelemetry key names), custom log_format, escaping of
# hostile values, secrets never logged, "off", configuration errors with
# FILE:LINE, -T, and USR1 rotation under load losing no line.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use TG;
use TGTrace;
TG::need_modules(qw(otlp status access_log));

my $up = TG::mock_upstream(name => 'a');
my $UP = "127.0.0.1:$up->{port}";

# nginx's combined format, as log tools parse it
my $COMBINED = qr/^(\S+) - (\S+) \[([^\]]+)\] "([^"]*)" (\d{3}) (\d+) "([^"]*)" "([^"]*)"$/;
my $TIME_LOCAL = qr/^\d{2}\/(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}$/;
my $TRACE_TAIL = qr/ trace_id=(\S+) span_id=(\S+) parent_id=(\S+) sampled=(\S+) x_trace_id=(\S+) upstream=(\S+) upstream_status=(\S+) rt=(\S+) urt=(\S+)$/;

sub gateway {
    my ($name, $main_extra) = @_;
    my $t = TG->new("70-access-log-$name");
    $t->write_conf($t->main_conf($main_extra) . <<"CONF");
[upstream service-a]
server = $UP
keepalive = 16

[route /service-a]
upstream = service-a
CONF
    $t->start_ok;
    return $t;
}

# Lines of $file once it has at least $n of them (bounded: the flush timer
# writes within about a second).
sub log_lines {
    my ($file, $n, $timeout) = @_;
    my @l;
    TG::wait_for($timeout // 5, sub {
        @l = split /\n/, (TG::slurp($file) // '');
        @l >= $n;
    });
    return @l;
}

# nginx's escaping, to state what a logged client value must look like
sub esc {
    my ($s, $space) = @_;
    my $re = $space ? qr/([\x00-\x20"\\\x7f-\xff])/ : qr/([\x00-\x1f"\\\x7f-\xff])/;
    $s =~ s/$re/sprintf('\\x%02X', ord $1)/ge;
    return $s;
}

sub upstream_ids {
    my ($r) = @_;
    my $e = TG::parse_echo($r && $r->{body}) or return ();
    my ($tid, $sid) = ($e->{h}{traceparent}[0] // '') =~ /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;
    return ($tid, $sid, $e->{h}{'x-trace-id'}[0], $e);
}

my $HOSTILE_UA = qq{Mozilla "evil" \\ x\tTAB \xff\xfe \xc3\xa9 end};

# --------------------------------------------------------------------------
# combined
{
    # reject_ambiguous_paths off: the hostile path below has a backslash
    my $t = gateway('combined', "access_log = logs/access.log combined\nreject_ambiguous_paths = off");
    my $port = $t->{port};
    my $r1 = TG::http_get($port, '/service-a/x?q=1',
                          headers => [['Referer', 'http://ref.example/p'],
                                      ['User-Agent', 'test-agent/1.0']]);
    is($r1 && $r1->{status}, 200, 'combined: proxied request answered');
    my $r2 = TG::http_get($port, '/nothing-here');
    is($r2 && $r2->{status}, 404, 'combined: unrouted request is 404');
    my ($raw) = TG::raw_exchange($port,
        "GET /service-a/\"q\"\\x HTTP/1.1\r\nHost: tg.test\r\n"
        . "User-Agent: $HOSTILE_UA\r\nReferer: a\r\n  folded\r\nConnection: close\r\n\r\n");
    like($raw, qr/^HTTP\/1\.1 200 /, 'combined: hostile request answered');

    my @l = log_lines("$t->{dir}/logs/access.log", 3);
    is(scalar @l, 3, 'combined: one line per request');
    like($_, $COMBINED, "combined: line matches nginx's combined regex") for @l;
    my ($time) = $l[0] =~ /\[([^\]]+)\]/;
    like($time // '', $TIME_LOCAL, 'combined: $time_local as nginx writes it');
    is($l[0], qq{127.0.0.1 - - [$time] "GET /service-a/x?q=1 HTTP/1.1" 200 }
              . length($r1->{body}) . q{ "http://ref.example/p" "test-agent/1.0"},
       'combined: proxied line byte for byte');
    like($l[1], qr/^127\.0\.0\.1 - - \[[^\]]+\] "GET \/nothing-here HTTP\/1\.1" 404 \d+ "-" "-"$/,
         'combined: 404 line, absent headers as "-"');
    my ($ua) = $l[2] =~ /"([^"]*)"$/;
    is($ua, esc($HOSTILE_UA), 'combined: hostile User-Agent escaped as \\xHH');
    # (a raw high byte in the target is a 400 from the strict parser)
    like($l[2], qr/"GET \/service-a\/\\x22q\\x22\\x5Cx HTTP\/1\.1"/,
         'combined: quote and backslash in the path escaped');
    unlike(TG::slurp("$t->{dir}/logs/access.log"), qr/[\x00-\x09\x0b-\x1f\x7f-\xff]/,
           'combined: no raw control or high bytes reach the file');
    $t->stop;
}

# --------------------------------------------------------------------------
# trace: the default when access_log is not set
{
    my $t = gateway('trace', '');
    my $port = $t->{port};
    my $log = "$t->{dir}/logs/access.log";

    my $ra = TG::http_get($port, '/service-a/t1',
                          headers => [['Authorization', 'Bearer s3cr3t-token'],
                                      ['Cookie', 'session=c00kie-value']]);
    my ($tid_a, undef, $xid_a) = upstream_ids($ra);
    my $rb = TG::http_get($port, '/service-a/t2', headers =>
        [['traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']]);
    my ($tid_b, $sid_b, $xid_b) = upstream_ids($rb);
    my $rc = TG::http_get($port, '/service-a/t3', headers =>
        [['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00']]);
    my $rd = TG::http_get($port, '/nothing-here');
    my $re = TG::http_get($port, '/service-a/t5', headers => [['X-Trace-ID', 'order 42 "x"']]);
    my (undef, undef, $xid_e) = upstream_ids($re);

    ok($tid_a, 'trace: the upstream received traceparent');
    ok($xid_a, 'trace: the upstream received X-Trace-ID');
    my @l = log_lines($log, 5);
    is(scalar @l, 5, 'trace: one line per request (default logs/access.log)');
    like($_, qr/^127\.0\.0\.1 - - \[[^\]]+\] "[^"]*" \d{3} \d+ "[^"]*" "[^"]*"$TRACE_TAIL/,
         'trace: combined followed by the trace fields') for @l;

    my @a = $l[0] =~ $TRACE_TAIL;
    is($a[0], $tid_a, 'trace: trace_id is the one the upstream received');
    like($a[1], qr/^[0-9a-f]{16}$/, 'trace: span_id is 16 hex');
    is($a[2], '-', 'trace: no parent_id for a new trace');
    is($a[3], '1', 'trace: sampled=1');
    is($a[4], esc($xid_a, 1), 'trace: x_trace_id is the one the upstream received');
    is($a[4], esc(TG::hdr($ra, 'X-Trace-ID') // '', 1), 'trace: x_trace_id is the one the client received');
    is($a[5], $UP, 'trace: upstream=HOST:PORT');
    is($a[6], '200', 'trace: upstream_status=200');
    like($a[7], qr/^\d+\.\d{3}$/, 'trace: rt in seconds with ms');
    like($a[8], qr/^\d+\.\d{3}$/, 'trace: urt in seconds with ms');

    my @b = $l[1] =~ $TRACE_TAIL;
    is($b[0], '4bf92f3577b34da6a3ce929d0e0e4736', 'trace: continued trace id logged');
    is($tid_b, '4bf92f3577b34da6a3ce929d0e0e4736', 'trace: and sent upstream');
    is($b[2], '00f067aa0ba902b7', 'trace: parent_id is the incoming parent span');
    isnt($b[1], $sid_b, 'trace: span_id is the SERVER span, not the CLIENT span sent upstream');
    my $tr = TG::hdr($rb, 'traceresponse');
    if (defined $tr) {
        like($tr, qr/^00-$b[0]-$b[1]-01$/, 'trace: span_id matches the traceresponse');
    }
    my @c = $l[2] =~ $TRACE_TAIL;
    is("$c[0] $c[3]", '0af7651916cd43dd8448eb211c80319c 0', 'trace: unsampled parent logged with sampled=0');
    my @d = $l[3] =~ $TRACE_TAIL;
    is("$d[5] $d[6] $d[8]", '- - -', 'trace: 404 has no upstream, upstream_status or urt');
    like($d[0], qr/^[0-9a-f]{32}$/, 'trace: a 404 still carries a trace id');
    my @e = $l[4] =~ $TRACE_TAIL;
    is($e[4], esc($xid_e // '', 1), 'trace: an incoming X-Trace-ID is logged escaped, one field');

    my $all = TG::slurp($log);
    unlike($all, qr/s3cr3t|c00kie/, 'trace: Authorization and Cookie values never logged');
    $t->stop;
}

# --------------------------------------------------------------------------
# json
{
    my $t = gateway('json', 'access_log = logs/access.json json');
    my $port = $t->{port};
    my $r1 = TG::http_get($port, '/service-a/j?a=1&b=2',
                          headers => [['User-Agent', $HOSTILE_UA],
                                      ['Authorization', 'Basic s3cr3t']]);
    my ($tid) = upstream_ids($r1);
    my $r2 = TG::http_get($port, '/nothing-here');
    my @l = log_lines("$t->{dir}/logs/access.json", 2);
    is(scalar @l, 2, 'json: one line per request');
    my $js = JSON::PP->new->utf8;
    my @o = map { my $l = $_; my $o = eval { $js->decode($l) }; $o } @l;
    is_deeply([map { ref } @o[0, 1]], ['HASH', 'HASH'], 'json: every line is a JSON object (strict UTF-8)')
        or diag(join("\n", @l));
    my @keys = qw(timestamp trace_id span_id parent_id trace_flags sampled x_trace_id
                  http.request.method url.path url.query http.route
                  http.response.status_code client.address client.port server.address
                  server.port network.protocol.version user_agent.original
                  http.request.header.referer http.request.body.size http.response.body.size
                  bytes_sent duration_ms upstream upstream_status upstream_duration_ms
                  upstream_attempts connection);
    for my $k (@keys) {
        ok(exists(($o[0] || {})->{$k}), "json: key $k");
    }
    my $o = $o[0] || {};
    like($o->{timestamp} // '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'json: RFC 3339 UTC timestamp with ms');
    is($o->{trace_id}, $tid, 'json: trace_id is the one the upstream received');
    like($o->{span_id} // '', qr/^[0-9a-f]{16}$/, 'json: span_id');
    is($o->{trace_flags}, '01', 'json: trace_flags');
    is($o->{'http.request.method'}, 'GET', 'json: method');
    is($o->{'url.path'}, '/service-a/j', 'json: url.path');
    is($o->{'url.query'}, 'a=1&b=2', 'json: url.query');
    is($o->{'http.route'}, '/service-a', 'json: http.route');
    like($l[0], qr/"http\.response\.status_code":200[,}]/, 'json: status code is a number');
    is($o->{'client.address'}, '127.0.0.1', 'json: client.address');
    is($o->{'server.port'}, $port, 'json: server.port');
    is($o->{upstream}, $UP, 'json: upstream');
    is($o->{upstream_status}, 200, 'json: upstream_status');
    is($o->{'http.response.body.size'}, length($r1->{body}), 'json: body size');
    like($o->{duration_ms}, qr/^\d+$/, 'json: duration_ms');
    is($o->{'user_agent.original'}, "Mozilla \"evil\" \\ x\tTAB \x{fffd}\x{fffd} \x{e9} end",
       'json: hostile User-Agent round-trips (valid UTF-8 kept, U+FFFD for each invalid byte)');
    ok(!defined $o->{parent_id}, 'json: absent parent_id is null');
    my $p = $o[1] || {};
    is($p->{'http.response.status_code'}, 404, 'json: 404 line');
    is($p->{upstream}, undef, 'json: 404 has null upstream');
    is($p->{'http.route'}, undef, 'json: 404 has null route');
    unlike(TG::slurp("$t->{dir}/logs/access.json"), qr/s3cr3t/, 'json: Authorization never logged');
    $t->stop;

    # the line's time is the instant the SERVER span ended (one clock read)
    my ($srv) = grep { $_->{trace_id} eq ($tid // '') && $_->{kind} == 2 }
                TGTrace::file_spans("$t->{dir}/logs/spans.jsonl");
    my $end = $srv ? $srv->{end_ns} : 0;
    my @tm = gmtime(int($end / 1e9));
    my $want = sprintf('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', $tm[5] + 1900, $tm[4] + 1, @tm[3, 2, 1, 0],
                       substr($end, -9, 3));
    is($o->{timestamp}, $srv ? $want : 'a SERVER span', 'json: timestamp is the SERVER span\'s end');

    # durations in whole ms of the spans' own clock (not of a coarse one)
    my ($cli) = grep { $_->{trace_id} eq ($tid // '') && $_->{kind} == 3 }
                TGTrace::file_spans("$t->{dir}/logs/spans.jsonl");
    my $ms = sub {    # the times exceed a double's 53 bits: their last 12 digits
        my ($s) = @_;
        return undef unless $s;
        my $d = substr($s->{end_ns}, -12) - substr($s->{start_ns}, -12);
        $d += 1e12 if $d < 0;
        return int($d / 1e6);
    };
    is($o->{duration_ms}, $ms->($srv), 'json: duration_ms is the SERVER span\'s duration');
    is($o->{upstream_duration_ms}, $ms->($cli), 'json: upstream_duration_ms is the CLIENT span\'s duration');
}

# --------------------------------------------------------------------------
# custom log_format, secrets redacted
{
    my $fmt = '$request_method|$request_uri|$uri|$args|$status|$host|$server_port|$connection'
            . '|$connection_requests|$pid|$route|$traceparent|$http_x_custom_hdr|$upstream_status';
    my $t = gateway('custom', "log_format = custom $fmt\n"
                    . "log_format = secrets \"\$http_authorization\" \${http_cookie} \$http_proxy_authorization \$http_x_other\n"
                    . 'access_log = logs/custom.log custom flush=200ms');
    my $port = $t->{port};
    my $c = TG::Conn->new($port);
    my $r1 = TG::request_on($c, '/service-a/c1?x=1', keepalive => 1, host => 'shop.example:8443',
                            headers => [['X-Custom-Hdr', 'hello world']]);
    my ($tid) = upstream_ids($r1);
    my $r2 = TG::request_on($c, '/service-a/c2', keepalive => 1);
    $c->close;
    my @l = log_lines("$t->{dir}/logs/custom.log", 2);
    is(scalar @l, 2, 'custom: one line per request');
    my @f1 = split /\|/, $l[0] // '', -1;
    my @f2 = split /\|/, $l[1] // '', -1;
    is(scalar @f1, 14, 'custom: every variable rendered');
    is_deeply([@f1[0 .. 6]], ['GET', '/service-a/c1?x=1', '/service-a/c1', 'x=1', '200', 'shop.example', $port],
              'custom: method, request_uri, uri, args, status, host (no port), server_port');
    like($f1[7], qr/^\d+$/, 'custom: $connection');
    is($f1[8], '1', 'custom: $connection_requests of the first request');
    is($f2[8], '2', 'custom: $connection_requests counts this request');
    is($f2[7], $f1[7], 'custom: same $connection on keep-alive');
    ok(scalar(grep { $_ == $f1[9] } $t->workers), 'custom: $pid is a worker');
    is($f1[10], '/service-a', 'custom: $route');
    like($f1[11], qr/^00-\Q$tid\E-[0-9a-f]{16}-01$/, 'custom: $traceparent carries the trace id sent upstream');
    is($f1[12], 'hello world', 'custom: $http_x_custom_hdr');
    is($f1[13], '200', 'custom: $upstream_status');
    is("$f2[3] $f2[12]", '- -', 'custom: absent args and header are "-"');

    my ($rc, $out) = $t->cli('-T');
    is($rc, 0, '-T exits 0');
    like($out, qr/^access_log = \Q$t->{dir}\E\/logs\/custom\.log custom buffer=\d+ flush=200ms$/m,
         '-T prints the effective access_log');
    like($out, qr/^log_format = custom escape=default \Q$fmt\E$/m, '-T prints the log_format');
    $t->stop;

    # the same gateway with the secrets format
    my $conf = TG::slurp($t->{conf});
    $conf =~ s/logs\/custom\.log custom/logs\/secrets.log secrets/;
    $t->write_conf($conf);
    $t->start_ok;
    TG::http_get($port, '/service-a/s', headers => [['Authorization', 'Bearer s3cr3t-token'],
                                                      ['Cookie', 'a=c00kie'],
                                                      ['Proxy-Authorization', 'Basic pr0xy']]);
    @l = log_lines("$t->{dir}/logs/secrets.log", 1);
    is($l[0], '"[redacted]" [redacted] [redacted] -', 'custom: secret headers log [redacted], absent ones "-"');
    unlike(TG::slurp("$t->{dir}/logs/secrets.log"), qr/s3cr3t|c00kie|pr0xy/, 'custom: secret values never logged');
    $t->stop;
}

# --------------------------------------------------------------------------
# off
{
    my $t = gateway('off', 'access_log = off');
    my $r = TG::http_get($t->{port}, '/service-a/off');
    is($r && $r->{status}, 200, 'off: request answered');
    sleep 1.5;
    my @logs = glob("$t->{dir}/logs/access*");
    is(scalar @logs, 0, 'off: no access log written') or diag("@logs");
    $t->stop;
}

# --------------------------------------------------------------------------
# configuration errors name FILE:LINE
{
    my $t = TG->new('70-access-log-errors');
    my @bad = (
        ['log_format = bad $remote_addr $nope', qr/unknown variable "\$nope"/, 'log_format'],
        ['access_log = logs/x.log nosuch', qr/unknown format "nosuch"/, 'access_log'],
        ['log_format = combined $status', qr/built-in/, 'log_format'],
        ['log_format = b ${remote_addr', qr/missing "\}"/, 'log_format'],
        ['log_format = b $status $', qr/without a variable name/, 'log_format'],
        ['access_log = logs/x.log combined buffer=1', qr/buffer=1/, 'access_log'],
        ['access_log = logs/x.log combined bogus', qr/unexpected "bogus"/, 'access_log'],
        ['access_log = /nonexistent-dir/x.log', qr/cannot open/, 'access_log'],
    );
    for my $b (@bad) {
        my ($lines, $re, $key) = @$b;
        my $text = $t->main_conf($lines) . "[upstream u]\nserver = $UP\n";
        $t->write_conf($text);
        my $line = TG::line_of($text, qr/^\Q$key\E\s*=/);
        my ($rc, $out, $err) = $t->cli('-t');
        isnt($rc, 0, "-t fails: $lines");
        like($err, qr/\Q$t->{conf}\E:$line: .*$re/, "-t names FILE:LINE: $lines") or diag($err);
    }
}

# --------------------------------------------------------------------------
# USR1 rotation under load: every line lands in the old or the new file
{
    my $t = gateway('rotate', "workers = 2\naccess_log = logs/rot.log combined");
    my $port = $t->{port};
    my $master = $t->{pid};
    my $log = "$t->{dir}/logs/rot.log";
    my $per = 1000;
    my @kids;
    for my $k (1 .. 2) {
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            $TG::IS_CHILD = 1;
            # at least $per requests, and load for at least 4 s so that
            # several rotations (each after the first 1 s flush) fall in it
            my ($n, $tried, $c) = (0, 0, undef);
            my $busy = time + 4;
            my $end = time + 60;
            for (my $i = 1; $i <= $per || time < $busy; $i++) {
                last if time > $end;
                $tried++;
                $c ||= TG::Conn->new($port) or last;
                my $r = TG::request_on($c, "/service-a/rot?k=$k&i=$i", keepalive => 1);
                last unless $r;
                $n++;
                if ((TG::hdr($r, 'Connection') // '') =~ /close/i) { $c->close; $c = undef }
            }
            TG::spew("$t->{dir}/count.$k", $n);
            TG::spew("$t->{dir}/tried.$k", $tried);
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    my $rot = 0;
    my $end = time + 90;
    while (time < $end) {
        sleep 0.3;
        last unless grep { waitpid($_, WNOHANG) == 0 } @kids;
        next if $rot >= 5 || !-e $log;
        $rot++;
        rename $log, "$log.$rot" or die "rename: $!";
        kill 'USR1', $master;
    }
    for my $k (@kids) {
        TG::wait_for(30, sub { waitpid($k, WNOHANG) != 0 });
        kill 'KILL', $k if TG::alive($k);
    }
    my ($sent, $tried) = (0, 0);
    $sent += TG::slurp("$t->{dir}/count.$_") // 0 for 1 .. 2;
    $tried += TG::slurp("$t->{dir}/tried.$_") // 0 for 1 .. 2;
    cmp_ok($tried, '>=', 2 * $per, "rotate: at least ${\ (2 * $per)} requests sent ($tried)");
    is($sent, $tried, 'rotate: every request was answered');
    cmp_ok($rot, '>=', 2, "rotate: the log was renamed and USR1 sent $rot times while under load");
    my $count = sub {
        my $n = 0;
        for my $f ($log, map { "$log.$_" } 1 .. $rot) {
            $n += () = (TG::slurp($f) // '') =~ /\n/g;
        }
        return $n;
    };
    TG::wait_for(5, sub { $count->() >= $sent });
    sleep 1.2;    # a late flush would show up now
    is($count->(), $sent, "rotate: lines in old + new files == requests sent ($sent)");
    my @files = grep { -s $_ } $log, map { "$log.$_" } 1 .. $rot;
    cmp_ok(scalar @files, '>=', 2, 'rotate: lines went to more than one file (workers reopened)');
    my $bad = 0;
    for my $f (@files) {
        $bad += grep { $_ !~ $COMBINED } split /\n/, TG::slurp($f);
    }
    is($bad, 0, 'rotate: no torn or interleaved line');
    $t->stop;
}

done_testing();
