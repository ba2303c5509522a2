#!/usr/bin/perl
# Timeouts: upstream read -> 504, upstream connect -> 504, upstream send ->
# 504, client_header_timeout / client_body_timeout -> 408 (or close),
# keepalive_timeout, an idle connection without any request.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use TG;

my $hang  = TG::mock_upstream(name => 'hang', mode => 'hang');            # reads, never answers
my $sink  = TG::mock_upstream(name => 'sink', mode => 'blackhole', rcvbuf => 4096); # never reads
my $ok    = TG::mock_upstream(name => 'ok');
my ($bh_port, $bh_keep) = TG::blackhole_port();                           # SYNs dropped

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
ok($dt >= 0.8 && $dt < 3, sprintf('504 after %.2f s (read_timeout = 1s)', $dt));

# connect timeout
($dt, $r) = timed(sub { TG::http_get($port, '/blackhole/x', timeout => 10) });
is($r && $r->{status}, 504, 'connect never completes, connect_timeout = 1s: 504') or diag(TG::summary($r));
is($r && $r->{body}, $page, '504 carries the 50x page');
ok($dt >= 0.8 && $dt < 3, sprintf('504 after %.2f s (connect_timeout = 1s)', $dt));

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
    ok($dt >= 0.8 && $dt < 3.5, sprintf('closed after %.2f s', $dt));
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
    ok($closed && $dt >= 0.8 && $dt < 3.5, sprintf('idle new connection closed after %.2f s', $dt));
}

# client_body_timeout
{
    my $c = TG::Conn->new($port);
    my $t0 = time;
    $c->write("POST /ok/body HTTP/1.1\r\nHost: tg.test\r\nContent-Length: 100\r\n\r\n0123456789");
    my $closed = $c->wait_closed(5);
    my $dt = time - $t0;
    ok($closed, 'incomplete body: connection closed (client_body_timeout = 1s)');
    ok($dt >= 0.8 && $dt < 3.5, sprintf('closed after %.2f s', $dt));
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
    ok($dt >= 0.8 && $dt < 3.5, sprintf('closed after %.2f s', $dt));
    is($c->{extra} // '', '', 'no bytes sent on the idle keep-alive close');
}

# the worker survived all this
my $r2 = TG::http_get($port, '/ok/after');
is($r2 && $r2->{status}, 200, 'proxy still serves after the timeouts');

done_testing();
