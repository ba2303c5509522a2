#!/usr/bin/perl
# Keep-alive: client connection reuse, Connection: close, HTTP/1.0,
# upstream connection reuse, keepalive_timeout, keepalive_requests,
# keepalive_timeout = 0.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use TG;

my $up = TG::mock_upstream(name => 'a');
my $ub = TG::mock_upstream(name => 'b');     # fresh: counts upstream connections from zero
my $t = TG->new('41-keepalive');
$t->write_conf($t->main_conf("keepalive_timeout = 2s\nkeepalive_requests = 5") . <<"CONF");
[upstream service-a]
server = 127.0.0.1:$up->{port}
keepalive = 8

[upstream service-b]
server = 127.0.0.1:$ub->{port}
keepalive = 8

[route /service-a]
upstream = service-a

[route /service-b]
upstream = service-b
CONF
$t->start_ok;
my $port = $t->{port};

# several requests on one client connection
my $c = TG::Conn->new($port);
my @st;
for my $i (1 .. 4) {
    my $r = TG::request_on($c, "/service-a/ka$i", keepalive => 1);
    push @st, $r ? $r->{status} : 'none';
    if ($r) {
        unlike(TG::hdr($r, 'Connection') // '', qr/close/i, "response $i does not say Connection: close");
    }
}
is_deeply(\@st, [200, 200, 200, 200], 'four requests on one keep-alive connection');
ok(!$c->wait_closed(0.5), 'connection still open after four requests');

# keepalive_requests = 5: the 5th response closes
my $r = TG::request_on($c, '/service-a/ka5', keepalive => 1);
is($r && $r->{status}, 200, '5th request answered');
like(TG::hdr($r, 'Connection') // '', qr/close/i, 'keepalive_requests = 5: 5th response has Connection: close');
ok($c->wait_closed(2), 'keepalive_requests = 5: connection closed after the 5th response');

# Connection: close
$c = TG::Conn->new($port);
$r = TG::request_on($c, '/service-a/close');   # sends Connection: close
is($r && $r->{status}, 200, 'request with Connection: close answered');
like(TG::hdr($r, 'Connection') // '', qr/close/i, 'response says Connection: close');
ok($c->wait_closed(2), 'server closes after Connection: close');

# HTTP/1.0 without keep-alive
$c = TG::Conn->new($port);
$c->write("GET /service-a/v10 HTTP/1.0\r\nHost: tg.test\r\n\r\n");
$r = $c->read_response(timeout => 5);
is($r && $r->{status}, 200, 'HTTP/1.0 request answered');
ok($c->wait_closed(2), 'HTTP/1.0 without keep-alive: connection closed');

# HTTP/1.0 with Connection: keep-alive
$c = TG::Conn->new($port);
$c->write("GET /service-a/v10ka HTTP/1.0\r\nHost: tg.test\r\nConnection: keep-alive\r\n\r\n");
$r = $c->read_response(timeout => 5);
is($r && $r->{status}, 200, 'HTTP/1.0 keep-alive request answered');
like(TG::hdr($r, 'Connection') // '', qr/keep-alive/i, 'HTTP/1.0 keep-alive: response says Connection: keep-alive');
ok(!$c->wait_closed(0.5), 'HTTP/1.0 keep-alive: connection stays open');
$c->write("GET /service-a/v10ka2 HTTP/1.0\r\nHost: tg.test\r\n\r\n");
$r = $c->read_response(timeout => 5);
is($r && $r->{status}, 200, 'HTTP/1.0 keep-alive: second request answered');

# upstream connection reuse
my $ok = 0;
my %conn_ids;
for my $i (1 .. 10) {
    my $r = TG::http_get($port, "/service-b/reuse$i");
    $ok++ if $r && $r->{status} == 200;
    $conn_ids{ TG::hdr($r, 'X-Mock-Conn') // '?' }++ if $r;
}
my $s = $ub->stats;
diag("upstream reuse: 10 client connections -> $s->{conns} upstream connections, $s->{requests} requests");
is($ok, 10, '10 requests on 10 client connections succeed');
is($s->{requests}, 10, 'upstream saw 10 requests');
ok($s->{conns} < $s->{requests}, 'upstream connections are reused (accepted < requests)');
ok($s->{conns} <= 2, 'sequential requests use at most 2 upstream connections');

# keepalive_timeout = 2s closes an idle connection, not before
$c = TG::Conn->new($port);
$r = TG::request_on($c, '/service-a/idle', keepalive => 1);
is($r && $r->{status}, 200, 'request before idling');
my $t0 = time;
ok(!$c->wait_closed(1.0), 'idle connection still open after 1 s (keepalive_timeout = 2s)');
ok($c->wait_closed(3.5), 'idle connection closed by keepalive_timeout');
my $dt = time - $t0;
cmp_ok($dt, '>=', 1.5, sprintf('closed after %.2f s (keepalive_timeout = 2s)', $dt));
cmp_ok($dt, '<=', 4.5, sprintf('closed after %.2f s (keepalive_timeout = 2s)', $dt));

# keepalive_timeout = 0 disables keep-alive
my $t2 = TG->new('41-keepalive-off');
$t2->write_conf($t2->main_conf("keepalive_timeout = 0") . <<"CONF");
[upstream service-a]
server = 127.0.0.1:$up->{port}

[route /service-a]
upstream = service-a
CONF
$t2->start_ok;
$c = TG::Conn->new($t2->{port});
$r = TG::request_on($c, '/service-a/off', keepalive => 1);
is($r && $r->{status}, 200, 'keepalive_timeout = 0: request answered');
like(TG::hdr($r, 'Connection') // '', qr/close/i, 'keepalive_timeout = 0: Connection: close');
ok($c->wait_closed(2), 'keepalive_timeout = 0: connection closed after the response');

done_testing();
