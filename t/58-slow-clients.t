#!/usr/bin/perl
# Slow and abusive clients (issue 8 item 4): slowloris (up to 1000
# connections trickling a request head), slow POST, a slow reader of a large
# response, a flood of connections beyond worker_connections. In each case a
# well-behaved client keeps being served within a generous latency bound
# (measured and printed: the numbers go into the issue note), the worker's
# memory stays bounded and the limits answer as they should.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS);
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);
use TG;

my $up = TG::mock_upstream(name => 'ok');

sub pct {
    my ($l, $p) = @_;
    my @s = sort { $a <=> $b } @$l;
    return 0 unless @s;
    my $i = int(@s * $p);
    $i = $#s if $i > $#s;
    return $s[$i];
}

# One GET on a new connection; returns (ms, ok).
sub good_get {
    my ($port, $path) = @_;
    my $s = time;
    my $r = TG::http_get($port, $path, timeout => 5);
    my $ms = (time - $s) * 1000;
    return ($ms, ($r && $r->{status} == 200 && TG::parse_echo($r->{body})) ? 1 : 0);
}

# $n good requests, one every $gap s; returns ([ms...], failures).
sub good_run {
    my ($port, $n, $gap, $tag) = @_;
    my (@lat, $fail);
    $fail = 0;
    for my $i (1 .. $n) {
        my $s = time;
        my ($ms, $ok) = good_get($port, "/ok/$tag/$i");
        push @lat, $ms;
        $fail++ unless $ok;
        my $left = $gap - (time - $s);
        sleep $left if $left > 0;
    }
    return (\@lat, $fail);
}

sub lat_line {
    my ($what, $lat, $fail) = @_;
    return sprintf('%s: %d requests, %d failed, median %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms',
                   $what, scalar(@$lat), $fail, pct($lat, 0.5), pct($lat, 0.9), pct($lat, 0.99),
                   pct($lat, 1));
}

# the good client in a forked child (so that its latency is not our select
# loop's): results in $file as "ms ok" lines
sub good_bg {
    my ($port, $n, $gap, $tag, $file) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $TG::IS_CHILD = 1;
        my $out = '';
        for my $i (1 .. $n) {
            my $s = time;
            my ($ms, $ok) = good_get($port, "/ok/$tag/$i");
            $out .= sprintf("%.3f %d\n", $ms, $ok);
            my $left = $gap - (time - $s);
            sleep $left if $left > 0;
        }
        TG::spew($file, $out);
        POSIX::_exit(0);
    }
    return $pid;
}

sub good_bg_result {
    my ($pid, $file, $timeout) = @_;
    my $done = TG::wait_for($timeout, sub { waitpid($pid, POSIX::WNOHANG()) == $pid });
    unless ($done) { kill 'KILL', $pid; waitpid($pid, 0) }
    my (@lat, $fail);
    $fail = 0;
    for my $l (split /\n/, TG::slurp($file) // '') {
        my ($ms, $ok) = split ' ', $l;
        push @lat, $ms;
        $fail++ unless $ok;
    }
    return (\@lat, $fail);
}

# ---------------------------------------------------------------------------
my $t = TG->new('58-slow-clients');
$t->write_conf($t->main_conf("worker_connections = 4000\nclient_header_timeout = 2s\n"
                             . "client_body_timeout = 1s\nclient_max_body_size = 0") . <<"CONF");
[upstream ok]
server = 127.0.0.1:$up->{port}
keepalive = 16

[route /ok]
upstream = ok
CONF
$t->start_ok;
my $port = $t->{port};
my ($worker) = $t->workers;
ok($worker, "one worker ($worker)");

# baseline
my ($base, $bfail) = good_run($port, 50, 0.005, 'base');
diag(lat_line('baseline (idle proxy)', $base, $bfail));
is($bfail, 0, 'baseline: every request succeeds');
my ($rss0) = TG::rss($worker);

# ---------------------------------------------------------------------------
# (a) slowloris
{
    my $limit = `sh -c 'ulimit -n'`;
    chomp $limit;
    $limit = 1 << 20 if $limit !~ /^\d+$/;       # unlimited
    my $N = 1000;
    if ($limit < $N + 200) {
        $N = $limit - 200;
        $N = 50 if $N < 50;
        diag("ulimit -n is $limit: slowloris scaled down to $N connections");
    }
    my $head = "GET /ok/slowloris HTTP/1.1\r\nHost: tg.test\r\nX-Slow: " . ('a' x 64);
    my @c;                    # { s, off, opened, closed, got }
    my $t0 = time;
    for my $i (1 .. $N) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                      Proto => 'tcp', Timeout => 3);
        unless ($s) { diag("slowloris connection $i failed: $!"); last }
        $s->blocking(0);
        push @c, { s => $s, off => 0, opened => time };
        syswrite($s, substr($head, 0, 1));
        $c[-1]{off} = 1;
    }
    my $opened = @c;
    diag(sprintf('slowloris: %d connections opened in %.2f s', $opened, time - $t0));
    is($opened, $N, "slowloris: $N connections opened");

    my $gfile = "$t->{dir}/logs/good-slowloris";
    my $gpid = good_bg($port, 100, 0.005, 'sl', $gfile);

    my %by_fd = map { (fileno($_->{s}) => $_) } @c;
    my $sel = IO::Select->new(map { $_->{s} } @c);
    my $end = $t0 + 8;
    my $next_tick = time + 0.5;
    my $rss_peak = 0;
    my $closed = 0;
    while (time < $end && $sel->count) {
        my $wait = $next_tick - time;
        $wait = 0 if $wait < 0;
        for my $s ($sel->can_read($wait)) {
            my $e = $by_fd{ fileno $s };
            my $buf = '';
            my $n = sysread($s, $buf, 4096);
            next if !defined $n && ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR);
            $e->{got} .= $buf if $n;
            next if $n;
            $e->{closed} = time;
            $closed++;
            $sel->remove($s);
        }
        if (time >= $next_tick) {
            $next_tick += 0.5;
            for my $e (@c) {
                next if $e->{closed} || $e->{off} >= length $head;
                my $n = syswrite($e->{s}, substr($head, $e->{off}, 1));
                $e->{off}++ if $n;
            }
            my ($r) = TG::rss($worker);
            $rss_peak = $r if $r && $r > $rss_peak;
        }
    }
    my ($lat, $fail) = good_bg_result($gpid, $gfile, 15);
    my @dt = sort { $a <=> $b } map { $_->{closed} - $_->{opened} } grep { $_->{closed} } @c;
    my $r408 = grep { ($_->{got} // '') =~ m{^HTTP/1\.[01] 408 } } @c;
    my $other = grep { length($_->{got} // '') && $_->{got} !~ m{^HTTP/1\.[01] 408 } } @c;
    diag(sprintf('slowloris: %d of %d closed by the proxy (%d with a 408, %d with something else); '
                 . 'close after %.2f s (min) / %.2f s (median) / %.2f s (max)',
                 $closed, $opened, $r408, $other, $dt[0] // -1, pct(\@dt, 0.5), $dt[-1] // -1));
    diag(lat_line('slowloris: good client', $lat, $fail));
    my ($rss1) = TG::rss($worker);
    diag(sprintf('slowloris: worker VmRSS %.1f MB before, %.1f MB peak, %.1f MB after',
                 $rss0 / 1024, $rss_peak / 1024, ($rss1 // 0) / 1024));

    is(scalar(@$lat), 100, 'slowloris: the good client made 100 requests');
    is($fail, 0, 'slowloris: every good request succeeded');
    ok(pct($lat, 0.5) < 50, sprintf('slowloris: good client median %.2f ms < 50 ms', pct($lat, 0.5)));
    ok(pct($lat, 0.99) < 200, sprintf('slowloris: good client p99 %.2f ms < 200 ms', pct($lat, 0.99)));
    is($closed, $opened, 'slowloris: every trickling connection closed by the proxy within 8 s');
    ok(scalar @dt, 'slowloris: the close times of the trickling connections are known');
    cmp_ok($dt[0] // -1, '>=', 1.8, sprintf('slowloris: none closed before client_header_timeout (first %.2f s)',
                                            $dt[0] // -1));
    cmp_ok(pct(\@dt, 0.5), '<', 4, sprintf('slowloris: closed about client_header_timeout = 2s after opening '
                                           . '(median %.2f s), not reset by each byte', pct(\@dt, 0.5)));
    is($other, 0, 'slowloris: nothing but a 408 was ever answered');
    ok($rss_peak - $rss0 < 64 * 1024,
       sprintf('slowloris: worker RSS grew by %.1f MB (< 64 MB) for %d connections',
               ($rss_peak - $rss0) / 1024, $opened));
    is($up->stats->{request_log} && scalar(grep { /slowloris/ } @{ $up->stats->{request_log} }), 0,
       'slowloris: no partial request reached the upstream');
    $_->{s}->close for @c;
    ok(TG::alive($worker), 'slowloris: the worker is still the same process');
}

# ---------------------------------------------------------------------------
# (b) slow POST
{
    # one byte every 300 ms: client_body_timeout = 1s is between reads
    my $body = '0123456789';
    my $c = TG::Conn->new($port);
    my $t0 = time;
    $c->write("POST /ok/slowpost HTTP/1.1\r\nHost: tg.test\r\nConnection: close\r\n"
              . "Content-Length: " . length($body) . "\r\n\r\n");
    for my $i (0 .. length($body) - 1) {
        sleep 0.3;
        $c->write(substr($body, $i, 1));
        last if $c->{eof};
    }
    my $r = $c->read_response(timeout => 5);
    my $dt = time - $t0;
    my $e = TG::parse_echo($r && $r->{body});
    is($r && $r->{status}, 200, sprintf('slow POST (1 byte / 300 ms, %.1f s in all, client_body_timeout = 1s): 200',
                                        $dt)) or diag(TG::summary($r));
    is($e && $e->{body_len}, 10, 'slow POST: the upstream got the whole body');
    is($e && $e->{body}, $body, 'slow POST: byte for byte');
    ok($dt > 2.5, 'slow POST took longer than client_body_timeout in all');
    $c->close;

    # a body that stalls for more than 1 s
    $c = TG::Conn->new($port);
    $t0 = time;
    $c->write("POST /ok/stall HTTP/1.1\r\nHost: tg.test\r\nContent-Length: 10\r\n\r\n01234");
    my $closed = $c->wait_closed(5);
    $dt = time - $t0;
    ok($closed, sprintf('stalled body: closed after %.2f s', $dt));
    cmp_ok($dt, '>=', 0.8, 'stalled body: closed about client_body_timeout = 1s');
    cmp_ok($dt, '<', 3.5, 'stalled body: closed about client_body_timeout = 1s');
    my $got = $c->{extra} // '';
    if (length $got) {
        my ($r) = @{ TG::parse_responses($got) };
        is($r && $r->{status}, 408, 'stalled body: answered 408') or diag("got: $got");
    } else {
        pass('stalled body: closed without a response');
    }
    $c->close;
}

# ---------------------------------------------------------------------------
# (c) a slow reader of a large response
{
    my $size = 64 * 1024 * 1024;
    my $c = TG::Conn->new($port, rcvbuf => 4096);
    $c->write("GET /ok/big?len=$size HTTP/1.1\r\nHost: tg.test\r\nConnection: close\r\n\r\n");
    sleep 0.3;
    my ($lat, $fail) = good_run($port, 100, 0.01, 'sr');
    diag(lat_line('slow reader of 64 MB: good client', $lat, $fail));
    is($fail, 0, 'slow reader: every good request succeeded');
    ok(pct($lat, 0.5) < 50, sprintf('slow reader: good client median %.2f ms < 50 ms', pct($lat, 0.5)));
    ok(pct($lat, 0.99) < 200, sprintf('slow reader: good client p99 %.2f ms < 200 ms', pct($lat, 0.99)));
    # the slow reader still gets its bytes when it reads
    $c->fill(1);
    cmp_ok(length($c->{buf}), '>', 0, 'slow reader: bytes of its response arrived');
    like($c->{buf}, qr{^HTTP/1\.1 200 }, 'slow reader: its response started');
    my ($rss) = TG::rss($worker);
    diag(sprintf('slow reader: worker VmRSS %.1f MB', ($rss // 0) / 1024));
    ok(($rss // 0) - $rss0 < 64 * 1024, 'slow reader: the 64 MB response is not buffered in the worker');
    $c->close;
}

my $rfinal = TG::http_get($port, '/ok/final');
is($rfinal && $rfinal->{status}, 200, 'the proxy still serves after (a)-(c)');
$t->stop(5);

# ---------------------------------------------------------------------------
# (d) a connection flood beyond worker_connections
{
    my $t2 = TG->new('58-slow-clients-flood');
    $t2->write_conf($t2->main_conf("worker_connections = 50\nclient_header_timeout = 30s") . <<"CONF");
[upstream ok]
server = 127.0.0.1:$up->{port}

[route /ok]
upstream = ok
CONF
    $t2->start_ok;
    my $p2 = $t2->{port};
    my ($w2) = $t2->workers;
    my @flood;
    my $sa = Socket::pack_sockaddr_in($p2, Socket::inet_aton('127.0.0.1'));
    for (1 .. 200) {
        my $s = IO::Socket::INET->new(Proto => 'tcp', Blocking => 0) or last;
        connect($s, $sa) or $! == EINPROGRESS or do { diag("flood connect: $!"); last };
        push @flood, $s;
    }
    diag(scalar(@flood) . ' flood connections opened (worker_connections = 50)');
    sleep 1;
    # during the flood: the good client may have to wait; it must not crash anything
    my ($ms, $okd) = good_get($p2, '/ok/during');
    diag(sprintf('flood: a good request during the flood: %s after %.1f ms',
                 $okd ? 'served' : 'not served', $ms));
    ok(TG::alive($w2), 'flood: worker alive');
    ok(TG::alive($t2->{pid}), 'flood: master alive');
    $_->close for @flood;
    my $served = TG::wait_for(5, sub { (good_get($p2, '/ok/probe'))[1] }, 0.1);
    ok($served, 'flood released: the proxy serves again');
    my ($lat, $fail) = good_run($p2, 50, 0.01, 'fl');
    diag(lat_line('after the flood: good client', $lat, $fail));
    is($fail, 0, 'after the flood: every good request succeeded');
    ok(pct($lat, 0.99) < 200, sprintf('after the flood: good client p99 %.2f ms < 200 ms', pct($lat, 0.99)));
    like($t2->error_log, qr/50 worker_connections are not enough/,
         'error log: worker_connections are not enough');
    my @w = $t2->workers;
    is_deeply(\@w, [$w2], 'flood: no worker crashed or was replaced');
    $t2->stop(5);
}

done_testing();
