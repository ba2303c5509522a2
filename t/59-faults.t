#!/usr/bin/perl
# Faults (issue 8 item 5): an upstream killed mid-response (the client sees
# a truncated response and a closed connection, never a complete wrong one;
# the spans say ERROR, error.type response_truncated), an upstream that
# accepts and never answers (504 after read_timeout), the collector killed
# and restarted on the same port (requests keep succeeding, spans sent after
# the restart arrive), a full disk under the access log (/dev/full: logged
# at most once per 10 s, requests keep succeeding), a worker SIGKILLed under
# load with workers = 2 (respawned; only requests in flight on it fail).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use TG;
use TGTrace;
use TGOTLP;
TG::need_modules(qw(otlp access_log));

TGTrace::clean_env();

my $ok   = TG::mock_upstream(name => 'ok');
my $hang = TG::mock_upstream(name => 'hang', mode => 'hang');

# An upstream that we kill ourselves: one forked process that accepts one
# connection, answers the head and 64 KB of a 1 MB Content-Length body, and
# then waits to be killed. Returns ($port, $pid).
my $TRUNC_LEN = 1_000_000;
sub killable_upstream {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
                                  Listen => 16, ReuseAddr => 1) or die "listen: $!";
    my $port = $l->sockport;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $TG::IS_CHILD = 1;
        alarm 60;
        my $c = $l->accept or POSIX::_exit(1);
        my $buf = '';
        while (index($buf, "\r\n\r\n") < 0) {
            sysread($c, $buf, 65536, length $buf) or POSIX::_exit(1);
        }
        TG::mock_write($c, "HTTP/1.1 200 OK\r\nContent-Length: $TRUNC_LEN\r\n"
                           . "Content-Type: application/octet-stream\r\n\r\n"
                           . TG::gen_body(65536));
        sleep 1 while 1;
    }
    close $l;
    $TG::STARTED{$pid} = { kind => 'mock', sig => 'KILL' };
    return ($port, $pid);
}

my ($kport, $kpid) = killable_upstream();
my $col = TGOTLP->new(dir => "$TG::TMP/59-faults.$$.otlp");
my $cport = $col->port;

my $t = TG->new('59-faults');
$t->write_conf($t->main_conf("access_log = /dev/full combined flush=100ms") . <<"CONF");
[upstream trunc]
server = 127.0.0.1:$kport
read_timeout = 10s

[upstream hang]
server = 127.0.0.1:$hang->{port}
read_timeout = 1s

[upstream ok]
server = 127.0.0.1:$ok->{port}
keepalive = 8

[route /trunc]
upstream = trunc

[route /hang]
upstream = hang

[route /ok]
upstream = ok

[trace]

[otlp]
endpoint = http://127.0.0.1:$cport/v1/traces
schedule_delay = 100ms
export_timeout = 1s
CONF
$t->start_ok;
my $port = $t->{port};

sub spans_of_trace {
    my ($c, $tid) = @_;
    return grep { $_->{trace_id} eq $tid } $c->spans;
}

# ---------------------------------------------------------------------------
# upstream killed mid-response
{
    my $c = TG::Conn->new($port);
    $c->write("GET /trunc/x HTTP/1.1\r\nHost: tg.test\r\n\r\n");      # keep-alive
    my $got = 0;
    my $r = $c->read_response(timeout => 3, sink => 1,
                              on_body => sub { $got += length $_[0];
                                               if ($got >= 65536 && $kpid) {
                                                   kill 'KILL', $kpid;
                                                   waitpid($kpid, 0);
                                                   delete $TG::STARTED{$kpid};
                                                   $kpid = undef;
                                               } });
    if ($kpid) {             # never got that far: kill it anyway
        kill 'KILL', $kpid; waitpid($kpid, 0); delete $TG::STARTED{$kpid};
    }
    ok(!$r, 'upstream killed mid-response: the client does not get a complete response')
        or diag('got a complete response: ' . TG::summary($r));
    my $p = $c->{partial};
    is($p && $p->{status}, 200, 'the status line and head the upstream sent were passed on');
    my $plen = $p ? $p->{body_len} : -1;
    cmp_ok($plen, '>=', 65536, sprintf('truncated: %d of %d body bytes (the first 64 KB passed on)',
                                       $plen, $TRUNC_LEN));
    cmp_ok($plen, '<', $TRUNC_LEN, sprintf('truncated: %d of %d body bytes', $plen, $TRUNC_LEN));
    like($c->{error} // '', qr/^eof in body/, 'the proxy closed the client connection (not a timeout)')
        or diag("error: " . ($c->{error} // ''));
    my $tr = $p && TGTrace::rhdr1($p, 'traceresponse');
    my (undef, $tid) = TGTrace::tp($tr);
    ok($tid, 'the truncated response carried a traceresponse') or diag(TG::summary($p));
    $c->close;
    like($t->error_log, qr/upstream 127\.0\.0\.1:$kport truncated the response/,
         'error log: upstream truncated the response');
    my @s;
    TG::wait_for(5, sub { @s = spans_of_trace($col, $tid // 'none'); @s >= 2 });
    diag(join("\n", map { "span $_->{name} kind $_->{kind} status $_->{status} error.type "
                          . ($_->{attributes}{'error.type'} // '-') } @s));
    diag(sprintf("trace %s: none of the %d spans the collector accepted so far belongs to it", $tid // "?", scalar($col->spans))) unless @s;
    is(scalar(@s), 2, 'two spans (SERVER and CLIENT) exported for the truncated request');
    for my $sp (@s) {
        like($sp->{status}, qr/ERROR|^2$/, "$sp->{kind} span: status ERROR");
        is($sp->{attributes}{'error.type'}, 'response_truncated',
           "$sp->{kind} span: error.type response_truncated");
    }
}

# ---------------------------------------------------------------------------
# upstream accepts and never answers
{
    my $t0 = time;
    my $r = TG::http_get($port, '/hang/x', timeout => 10);
    my $dt = time - $t0;
    is($r && $r->{status}, 504, 'upstream never answers: 504') or diag(TG::summary($r));
    cmp_ok($dt, '>=', 0.8, sprintf('504 after %.2f s (read_timeout = 1s)', $dt));
    cmp_ok($dt, '<', 3, sprintf('504 after %.2f s (read_timeout = 1s)', $dt));
}

# ---------------------------------------------------------------------------
# disk full for the access log (access_log = /dev/full): by now several
# flushes have failed
{
    my $fail = 0;
    for my $i (1 .. 30) {
        my $r = TG::http_get($port, "/ok/full/$i", timeout => 5);
        $fail++ unless $r && $r->{status} == 200;
        sleep 0.05;
    }
    is($fail, 0, 'access log on a full disk: 30 requests succeed');
    sleep 0.3;                                   # one more flush
    my @l = grep { /access_log: write\(\) to "\/dev\/full" failed/ } split /\n/, $t->error_log;
    diag("error log: $_") for @l;
    ok(@l >= 1, 'error log: the failed access log write is reported');
    is(scalar(@l), 1, 'error log: at most once per 10 s (the test ran < 10 s)');
    like($l[0] // '', qr/No space left on device|ENOSPC/, 'error log: says why (ENOSPC)');
}

# ---------------------------------------------------------------------------
# collector killed and restarted on the same port
{
    my ($r, $e) = TGTrace::via($t, '/ok/before');
    my (undef, $tid) = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
    ok(TG::wait_for(5, sub { spans_of_trace($col, $tid // 'none') >= 2 }),
       'collector up: spans arrive');
    kill 'KILL', $col->{pid};
    waitpid($col->{pid}, 0);
    delete $col->{pid};
    my $fail = 0;
    for my $i (1 .. 20) {
        my $r = TG::http_get($port, "/ok/down/$i", timeout => 5);
        $fail++ unless $r && $r->{status} == 200;
        sleep 0.05;
    }
    is($fail, 0, 'collector killed: 20 requests succeed');
    my $col2 = TGOTLP->new(dir => "$TG::TMP/59-faults.$$.otlp2", port => $cport);
    is($col2->port, $cport, "collector restarted on the same port $cport");
    my %tids;
    $fail = 0;
    for my $i (1 .. 10) {
        my $r = TG::http_get($port, "/ok/after/$i", timeout => 5);
        $fail++ unless $r && $r->{status} == 200;
        my (undef, $id) = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
        $tids{$id} = 1 if $id;
        sleep 0.05;
    }
    is($fail, 0, 'collector restarted: 10 requests succeed');
    my $arrived = 0;
    TG::wait_for(10, sub {
        my %seen = map { ($_->{trace_id} => 1) } $col2->spans;
        $arrived = grep { $seen{$_} } keys %tids;
        $arrived == keys %tids;
    }, 0.2);
    is($arrived, scalar(keys %tids), "spans sent after the restart arrive ($arrived of "
                                     . scalar(keys %tids) . ' traces)');
    $t->stop(10);
    $col2->stop;
}

# ---------------------------------------------------------------------------
# worker killed under load, workers = 2
{
    my $t2 = TG->new('59-faults-workers');
    $t2->write_conf($t2->main_conf("workers = 2") . <<"CONF");
[upstream ok]
server = 127.0.0.1:$ok->{port}

[route /ok]
upstream = ok
CONF
    my $master = $t2->start_ok;
    my $p2 = $t2->{port};
    ok(TG::wait_for(3, sub { scalar($t2->workers) == 2 }), 'workers = 2: two workers');
    my @w = $t2->workers;

    # 4 client loops, a new connection per request, each request held 50 ms
    # by the upstream; each line: "client_port ok status"
    my (@kids, @files);
    my $stop_at = time + 3;
    for my $k (1 .. 4) {
        my $f = "$t2->{dir}/logs/client-$k";
        push @files, $f;
        my $pid = fork // die "fork: $!";
        if ($pid == 0) {
            $TG::IS_CHILD = 1;
            my $out = '';
            for my $i (1 .. 1000) {
                last if time > $stop_at;
                my $c = TG::Conn->new($p2, timeout => 3) or do { $out .= "0 0 connect\n"; next };
                my $lp = $c->sock->sockport;
                my $r = TG::request_on($c, "/ok/load/$k/$i?delay=50", timeout => 5);
                $c->close;
                $out .= sprintf("%d %d %s\n", $lp, ($r && $r->{status} == 200) ? 1 : 0,
                                $r ? $r->{status} : ($TG::last_error // 'none'));
            }
            TG::spew($f, $out);
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    sleep 1;
    # freeze the victim, note the client connections it holds, then kill it
    my $victim = $w[0];
    kill 'STOP', $victim;
    my %victim_ports = victim_client_ports($victim, $p2);
    kill 'KILL', $victim;
    for my $k (@kids) {
        TG::wait_for(10, sub { waitpid($k, POSIX::WNOHANG()) == $k }) or do { kill 'KILL', $k; waitpid($k, 0) };
    }
    my ($total, $failed, $on_victim, $other) = (0, 0, 0, 0);
    my @other;
    for my $f (@files) {
        for my $l (split /\n/, TG::slurp($f) // '') {
            my ($lp, $okr, $st) = split ' ', $l, 3;
            $total++;
            next if $okr;
            $failed++;
            if ($victim_ports{$lp}) { $on_victim++ } else { $other++; push @other, $l }
        }
    }
    diag(sprintf('worker %d killed under load: %d requests, %d failed (%d in flight on the killed worker, '
                 . '%d elsewhere); the killed worker held %d client connections',
                 $victim, $total, $failed, $on_victim, $other, scalar(keys %victim_ports)));
    diag("failed elsewhere: $_") for @other[0 .. ($#other < 4 ? $#other : 4)];
    ok($total > 40, "the client loops made $total requests");
    is($other, 0, 'no request failed except those in flight on the killed worker');
    ok($failed <= scalar(keys %victim_ports), 'failures <= connections the killed worker held');
    my @now;
    TG::wait_for(3, sub { @now = $t2->workers; @now == 2 && !grep { $_ == $victim } @now });
    is(scalar(@now), 2, 'two workers again') or diag("workers: @now");
    ok(!grep({ $_ == $victim } @now), 'a new worker replaced the killed one') or diag("workers: @now");
    ok(TG::alive($w[1]), 'the other worker was not touched');
    like($t2->error_log, qr/worker process $victim exited on signal 9/, 'error log: the worker exited on signal 9');
    my $r = TG::http_get($p2, '/ok/after-kill');
    is($r && $r->{status}, 200, 'serving after the respawn');
    $t2->stop(5);
}

# Client ports of the established connections worker $pid holds on the
# listener port $lport (socket inodes of /proc/PID/fd matched against
# /proc/net/tcp{,6}).
sub victim_client_ports {
    my ($pid, $lport) = @_;
    my %ino;
    opendir my $d, "/proc/$pid/fd" or return ();
    for my $f (readdir $d) {
        my $l = readlink("/proc/$pid/fd/$f") // next;
        $ino{$1} = 1 if $l =~ /^socket:\[(\d+)\]$/;
    }
    closedir $d;
    my %ports;
    for my $tab ('/proc/net/tcp', '/proc/net/tcp6') {
        for my $line (split /\n/, TG::slurp($tab) // '') {
            my @f = split ' ', $line;
            next unless @f > 9 && $f[1] =~ /:([0-9A-F]{4})$/;
            my $local = hex $1;
            next unless $local == $lport && $ino{ $f[9] };
            $ports{ hex $1 } = 1 if $f[2] =~ /:([0-9A-F]{4})$/ && hex($1) != 0;
        }
    }
    return %ports;
}

done_testing();
