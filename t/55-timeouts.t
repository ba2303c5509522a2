#!/usr/bin/perl
# Timeouts: upstream read -> 504, upstream connect -> 504, upstream send ->
# 504, client_header_timeout / client_body_timeout -> 408 (or close),
# keepalive_timeout, an idle connection without any request.
# read_timeout is the longest gap between two reads, not a limit on the
# whole response: a response in pieces with short gaps gets through, a stall
# is cut read_timeout after the last read, also on a reused upstream
# connection and whatever keepalive_timeout the pool has, and a response the
# client is slow to take is not cut. An idle pooled upstream connection is
# closed after the upstream's keepalive_timeout.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Socket::INET;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use TG;

my $hang  = TG::mock_upstream(name => 'hang', mode => 'hang');            # reads, never answers
my $sink  = TG::mock_upstream(name => 'sink', mode => 'blackhole', rcvbuf => 4096); # never reads
my $ok    = TG::mock_upstream(name => 'ok');
my $drip  = TG::mock_upstream(name => 'drip');                            # query-driven pieces
my ($bh_port, $bh_keep) = TG::blackhole_port();                           # SYNs dropped

# A real upstream that answers one keep-alive request and then writes down
# how long the connection stayed open before the proxy closed it.
sub idle_upstream {
    my ($name) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
                                  Listen => 16, ReuseAddr => 1) or die "listen: $!";
    my $file = "$TG::TMP/55-idle.$$.$name." . $l->sockport;
    unlink $file;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $TG::IS_CHILD = 1;
        alarm 30;
        my $c = $l->accept or POSIX::_exit(1);
        my $buf = '';
        while (index($buf, "\r\n\r\n") < 0) {
            sysread($c, $buf, 4096, length $buf) or POSIX::_exit(1);
        }
        syswrite $c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        my $t0 = time;
        my $n = sysread($c, $buf, 4096);              # EOF when the proxy closes
        TG::spew("$file.tmp", sprintf("%.3f %d\n", time - $t0, $n // -1));
        rename "$file.tmp", $file;
        POSIX::_exit(0);
    }
    my $port = $l->sockport;
    close $l;
    $TG::STARTED{$pid} = { kind => 'mock', sig => 'KILL' };
    return { port => $port, file => $file };
}
my $idle_short = idle_upstream('short');   # read_timeout < keepalive_timeout
my $idle_long  = idle_upstream('long');    # read_timeout > keepalive_timeout

# the harness's own check that the blackhole really makes connect() hang
my $probe = TG::Conn->new($bh_port, timeout => 0.5);
ok(!$probe, 'self-check: connect to the full-backlog listener hangs') or diag('blackhole accepted a connection');

my $t = TG->new('55-timeouts');
$t->write_conf($t->main_conf("client_header_timeout = 1s\nclient_body_timeout = 1s\nkeepalive_timeout = 1s\nclient_max_body_size = 0") . <<"CONF");
[upstream hang]
server = 127.0.0.1:$hang->{port}
read_timeout = 1s

[upstream blackhole]
server = 127.0.0.1:$bh_port
connect_timeout = 1s

[upstream sink]
server = 127.0.0.1:$sink->{port}
send_timeout = 1s
read_timeout = 30s

[upstream ok]
server = 127.0.0.1:$ok->{port}

[route /hang]
upstream = hang

[route /blackhole]
upstream = blackhole

[route /sink]
upstream = sink

[route /ok]
upstream = ok

[upstream drip]
server = 127.0.0.1:$drip->{port}
read_timeout = 1s
keepalive_timeout = 30s

[route /drip]
upstream = drip

[upstream idle-short]
server = 127.0.0.1:$idle_short->{port}
read_timeout = 300ms
keepalive_timeout = 1s

[route /idle-short]
upstream = idle-short

[upstream idle-long]
server = 127.0.0.1:$idle_long->{port}
read_timeout = 5s
keepalive_timeout = 1s

[route /idle-long]
upstream = idle-long
CONF
$t->start_ok;
my $port = $t->{port};
my $page = $t->html('50x.html');

sub timed {
    my ($code) = @_;
    my $t0 = time;
    my @r = $code->();
    return (time - $t0, @r);
}

# read timeout
my ($dt, $r) = timed(sub { TG::http_get($port, '/hang/x', timeout => 10) });
is($r && $r->{status}, 504, 'upstream never answers, read_timeout = 1s: 504') or diag(TG::summary($r));
is($r && $r->{body}, $page, '504 carries the 50x page');
cmp_ok($dt, '>=', 0.8, sprintf('504 after %.2f s (read_timeout = 1s)', $dt));
cmp_ok($dt, '<', 3, sprintf('504 after %.2f s (read_timeout = 1s)', $dt));

# connect timeout
($dt, $r) = timed(sub { TG::http_get($port, '/blackhole/x', timeout => 10) });
is($r && $r->{status}, 504, 'connect never completes, connect_timeout = 1s: 504') or diag(TG::summary($r));
is($r && $r->{body}, $page, '504 carries the 50x page');
cmp_ok($dt, '>=', 0.8, sprintf('504 after %.2f s (connect_timeout = 1s)', $dt));
cmp_ok($dt, '<', 3, sprintf('504 after %.2f s (connect_timeout = 1s)', $dt));

# send timeout: the upstream never reads a 32 MB body
{
    my $size = 32 * 1024 * 1024;
    my $c = TG::Conn->new($port);
    my $t0 = time;
    $c->write("POST /sink/x HTTP/1.1\r\nHost: tg.test\r\nContent-Length: $size\r\n\r\n");
    my $sent = 0;
    my $end = time + 15;
    TG::gen_stream($size, sub {
        my $n = $c->write($_[0], 0.2);
        $sent += $n;
        return undef if $c->{eof} || index($c->{buf}, "\r\n\r\n") >= 0 || time > $end;
        return 1;
    }, 65536);
    my $r = $c->read_response(timeout => 10);
    my $dt = time - $t0;
    is($r && $r->{status}, 504, 'upstream never reads the body, send_timeout = 1s: 504')
        or diag(TG::summary($r) . " ($c->{error})");
    ok($dt < 10, sprintf('answered after %.2f s, client had sent %.1f MB', $dt, $sent / 1048576));
}

# client_header_timeout
{
    my $c = TG::Conn->new($port);
    my $t0 = time;
    $c->write("GET /ok/x HTTP/1.1\r\nHost: tg.test\r\n");      # no final CRLF
    my $closed = $c->wait_closed(5);
    my $dt = time - $t0;
    ok($closed, 'partial request head: connection closed (client_header_timeout = 1s)');
    cmp_ok($dt, '>=', 0.8, sprintf('closed after %.2f s', $dt));
    cmp_ok($dt, '<', 3.5, sprintf('closed after %.2f s', $dt));
    my $got = $c->{extra} // '';
    if (length $got) {
        my ($r) = @{ TG::parse_responses($got) };
        is($r && $r->{status}, 408, 'the response sent before closing is 408');
    } else {
        pass('closed without a response (nginx style)');
    }
    is($ok->stats->{requests}, 0, 'the upstream saw nothing of the partial request');
}

# idle connection without any request
{
    my $c = TG::Conn->new($port);
    my $t0 = time;
    my $closed = $c->wait_closed(5);
    my $dt = time - $t0;
    ok($closed, 'idle new connection closed');
    cmp_ok($dt, '>=', 0.8, sprintf('idle new connection closed after %.2f s', $dt));
    cmp_ok($dt, '<', 3.5, sprintf('idle new connection closed after %.2f s', $dt));
}

# client_body_timeout
{
    my $c = TG::Conn->new($port);
    my $t0 = time;
    $c->write("POST /ok/body HTTP/1.1\r\nHost: tg.test\r\nContent-Length: 100\r\n\r\n0123456789");
    my $closed = $c->wait_closed(5);
    my $dt = time - $t0;
    ok($closed, 'incomplete body: connection closed (client_body_timeout = 1s)');
    cmp_ok($dt, '>=', 0.8, sprintf('closed after %.2f s', $dt));
    cmp_ok($dt, '<', 3.5, sprintf('closed after %.2f s', $dt));
    my $got = $c->{extra} // '';
    if (length $got) {
        my ($r) = @{ TG::parse_responses($got) };
        is($r && $r->{status}, 408, 'the response sent before closing is 408')
            or diag("got: $got");
    } else {
        pass('closed without a response');
    }
}

# keepalive timeout
{
    my $c = TG::Conn->new($port);
    my $r = TG::request_on($c, '/ok/ka', keepalive => 1);
    is($r && $r->{status}, 200, 'request before idling');
    my $t0 = time;
    ok(!$c->wait_closed(0.5), 'still open after 0.5 s idle');
    ok($c->wait_closed(3), 'keep-alive connection closed after keepalive_timeout = 1s');
    my $dt = time - $t0;
    cmp_ok($dt, '>=', 0.8, sprintf('closed after %.2f s', $dt));
    cmp_ok($dt, '<', 3.5, sprintf('closed after %.2f s', $dt));
    is($c->{extra} // '', '', 'no bytes sent on the idle keep-alive close');
}

# read_timeout = 1s: six pieces 350 ms apart (2.1 s in all) get through
($dt, $r) = timed(sub { TG::http_get($port, '/drip/gaps?len=600&chunk_size=100&chunk_delay=350',
                                     timeout => 10) });
is($r && $r->{status}, 200, 'response in pieces, gaps < read_timeout, total > read_timeout: 200')
    or diag(TG::summary($r));
is($r && $r->{body_len}, 600, 'the whole body got through');
is($r && $r->{body_md5}, TG::gen_md5(600), 'the body is intact');
ok($dt > 1.5, sprintf('the response took %.2f s, longer than read_timeout', $dt));

# head and a first piece, then a stall: cut read_timeout after the last read
sub stall_cut {
    my ($path, $what) = @_;
    my $c = TG::Conn->new($port);
    $c->write("GET $path HTTP/1.1\r\nHost: tg.test\r\nConnection: close\r\n\r\n");
    my ($end, $hend) = (time + 5, -1);
    until ((($hend = index($c->{buf}, "\r\n\r\n")) >= 0 && length($c->{buf}) >= $hend + 4 + 100)
           || $c->{eof} || time >= $end)
    {
        $c->fill($end - time);
    }
    my $t0 = time;                                # the last read: head and 100 bytes
    my $closed = $c->wait_closed(5);
    my $dt = time - $t0;
    my $got = $c->{extra} // '';
    ok($closed, "$what: the connection is closed");
    like($got, qr{^HTTP/1\.1 200 }, "$what: the response had started");
    cmp_ok($hend, '>', 0, "$what: a whole response head");
    is(length($got), $hend + 4 + 100, "$what: the body is cut after the first piece");
    cmp_ok($dt, '>=', 0.9, sprintf('%s: cut %.2f s after the last bytes (read_timeout = 1s)', $what, $dt));
    cmp_ok($dt, '<', 1.6, sprintf('%s: cut %.2f s after the last bytes (read_timeout = 1s)', $what, $dt));
}
stall_cut('/drip/stall?len=500&chunk_size=100&chunk_delay=5000', 'stall after the head');
like($t->error_log, qr/upstream 127\.0\.0\.1:$drip->{port} timed out reading the response/,
     'the stall is logged as a read timeout');

# a reused upstream connection (keepalive_timeout = 30s in the pool): the
# stall of its second request is cut read_timeout after that request, both
# right after the first request and after a pause longer than read_timeout
for my $pause (0, 1.5) {
    $drip->reset_stats;
    my $r1 = TG::http_get($port, "/drip/fast-$pause");
    is($r1 && $r1->{status}, 200, "pause $pause s: first request on the upstream connection");
    sleep $pause if $pause;
    my ($dt, $r) = timed(sub { TG::http_get($port, "/drip/hang-$pause?hang=1", timeout => 10) });
    is($r && $r->{status}, 504, "pause $pause s: second request stalls: 504") or diag(TG::summary($r));
    cmp_ok($dt, '>=', 0.9, sprintf('pause %s s: 504 after %.2f s (read_timeout = 1s)', $pause, $dt));
    cmp_ok($dt, '<', 1.6, sprintf('pause %s s: 504 after %.2f s (read_timeout = 1s)', $pause, $dt));
    my $log = $drip->stats->{request_log};
    my ($c1) = map { /^(\d+) 1 GET \/drip\/fast-/ ? $1 : () } @$log;
    my ($c2) = map { /^(\d+) 2 GET \/drip\/hang-/ ? $1 : () } @$log;
    ok(defined $c1, "pause $pause s: the first request reached the upstream")
        or diag(join("\n", @$log));
    is($c2, $c1, "pause $pause s: the second request reused the upstream connection")
        or diag(join("\n", @$log));
}

# a client that takes nothing for 2.5 s: the upstream is not read meanwhile,
# which is no read timeout; the whole response arrives once it reads
{
    my $n = 8_000_000;
    my $c = TG::Conn->new($port, rcvbuf => 65536);
    $c->write("GET /drip/big?len=$n HTTP/1.1\r\nHost: tg.test\r\nConnection: close\r\n\r\n");
    sleep 2.5;
    my $r = $c->read_response(timeout => 20, sink => 1);
    is($r && $r->{status}, 200, 'slow client, read_timeout = 1s: 200') or diag($c->{error});
    is($r && $r->{body_len}, $n, 'slow client: the whole body arrived');
    is($r && $r->{body_md5}, TG::gen_md5($n), 'slow client: the body is intact');
}

# an idle pooled upstream connection is closed after keepalive_timeout = 1s,
# whether read_timeout is shorter (300 ms) or longer (5 s)
for my $u (['idle-short', $idle_short], ['idle-long', $idle_long]) {
    my ($name, $up) = @$u;
    my $r = TG::http_get($port, "/$name/x");
    is($r && $r->{status}, 200, "$name: request answered");
    ok(TG::wait_for(6, sub { -e $up->{file} }), "$name: the upstream saw its connection closed");
    my ($dt, $n) = split ' ', TG::slurp($up->{file}) // '';
    is($n, 0, "$name: closed by the proxy without sending anything");
    ok(defined $dt, "$name: the upstream saw the close");
    my $closed_after = sprintf('%s: idle upstream connection closed after %.2f s (keepalive_timeout = 1s)',
                               $name, $dt // -1);
    cmp_ok($dt // -1, '>=', 0.9, $closed_after);
    cmp_ok($dt // -1, '<', 1.6, $closed_after);
}

# the worker survived all this
my $r2 = TG::http_get($port, '/ok/after');
is($r2 && $r2->{status}, 200, 'proxy still serves after the timeouts');

done_testing();
