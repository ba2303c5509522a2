#!/usr/bin/perl
# Errors: malformed requests (400 + Connection: close), limits (431, 414,
# 413), framing errors (bad Content-Length, CL + TE), upstream failures (502).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use TG;
TG::need_modules(qw(status));

my $up = TG::mock_upstream(name => 'a');
my %bad = map { $_ => TG::mock_upstream(name => $_) } qw(partial garbage rst);
my ($refused, $refused_sock) = TG::refused_port();
my $t = TG->new('56-errors');
$t->write_conf($t->main_conf(join "\n",
    'client_max_body_size = 1k', 'client_max_header_size = 8k',
    'client_max_headers = 20', 'client_max_uri_size = 1k') . <<"CONF");
[upstream service-a]
server = 127.0.0.1:$up->{port}

[upstream refused]
server = 127.0.0.1:$refused

[upstream partial]
server = 127.0.0.1:$bad{partial}{port}

[upstream garbage]
server = 127.0.0.1:$bad{garbage}{port}

[upstream rst]
server = 127.0.0.1:$bad{rst}{port}

[route /service-a]
upstream = service-a

[route /partial]
upstream = partial

[route /garbage]
upstream = garbage

[route /rst]
upstream = rst

[route /refused]
upstream = refused
CONF
$t->start_ok;
my $port = $t->{port};

# Sends raw bytes; expects one response with $status, then the connection
# closed (when $must_close).
sub expect_status {
    my ($name, $bytes, $status, %o) = @_;
    my $c = TG::Conn->new($port) or return fail("$name: connect");
    $c->write($bytes, 5);
    my $r = $c->read_response(timeout => 5);
    is($r && $r->{status}, $status, "$name: $status") or diag('got: ' . TG::summary($r) . ' ' . ($c->{error} // ''));
    if ($o{close}) {
        like(TG::hdr($r, 'Connection') // '', qr/close/i, "$name: Connection: close");
        ok($c->wait_closed(3), "$name: connection closed");
    }
    is(TG::hdr($r, 'Server'), 'tracegate', "$name: Server: tracegate") if $o{server};
    return $r;
}

my $before = $up->stats->{requests};

expect_status('garbage request line', "GARBAGE\r\n\r\n", 400, close => 1, server => 1);
expect_status('header line without colon', "GET /service-a/x HTTP/1.1\r\nHost: tg.test\r\nBad Header\r\n\r\n", 400, close => 1);
expect_status('space before colon', "GET /service-a/x HTTP/1.1\r\nHost : tg.test\r\n\r\n", 400, close => 1);
expect_status('HTTP/1.1 without Host', "GET /service-a/x HTTP/1.1\r\n\r\n", 400, close => 1);
expect_status('control character in URI', "GET /service-a/\x01x HTTP/1.1\r\nHost: tg.test\r\n\r\n", 400, close => 1);

# limits
expect_status('header of 10 KB (client_max_header_size = 8k)',
    "GET /service-a/x HTTP/1.1\r\nHost: tg.test\r\nX-Big: " . ('b' x 10240) . "\r\n\r\n", 431, close => 1, server => 1);
expect_status('30 headers (client_max_headers = 20)',
    "GET /service-a/x HTTP/1.1\r\nHost: tg.test\r\n" . join('', map { "X-H$_: v\r\n" } 1 .. 30) . "\r\n",
    431, close => 1);
my $r = expect_status('20 headers are fine',
    "GET /service-a/x HTTP/1.1\r\nHost: tg.test\r\nConnection: close\r\n" . join('', map { "X-H$_: v\r\n" } 1 .. 17) . "\r\n", 200);
expect_status('URI of 2 KB (client_max_uri_size = 1k)',
    "GET /service-a/" . ('u' x 2048) . " HTTP/1.1\r\nHost: tg.test\r\n\r\n", 414, close => 1, server => 1);
expect_status('Content-Length 5000 (client_max_body_size = 1k)',
    "POST /service-a/x HTTP/1.1\r\nHost: tg.test\r\nContent-Length: 5000\r\n\r\n" . ('p' x 5000), 413, server => 1);
expect_status('chunked body of 5000 bytes (client_max_body_size = 1k)',
    "POST /service-a/x HTTP/1.1\r\nHost: tg.test\r\nTransfer-Encoding: chunked\r\n\r\n"
  . join('', map { "3e8\r\n" . ('c' x 1000) . "\r\n" } 1 .. 5) . "0\r\n\r\n", 413);
expect_status('body of exactly 1k is fine',
    "POST /service-a/x HTTP/1.1\r\nHost: tg.test\r\nConnection: close\r\nContent-Length: 1024\r\n\r\n" . ('p' x 1024), 200);

# framing errors
expect_status('Content-Length: abc', "POST /service-a/x HTTP/1.1\r\nHost: tg.test\r\nContent-Length: abc\r\n\r\n", 400, close => 1);
expect_status('Content-Length: -1', "POST /service-a/x HTTP/1.1\r\nHost: tg.test\r\nContent-Length: -1\r\n\r\n", 400, close => 1);
expect_status('two different Content-Length', "POST /service-a/x HTTP/1.1\r\nHost: tg.test\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, close => 1);
expect_status('Content-Length and Transfer-Encoding',
    "POST /service-a/x HTTP/1.1\r\nHost: tg.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, close => 1);
expect_status('bad chunk size', "POST /service-a/x HTTP/1.1\r\nHost: tg.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", 400, close => 1);

is($up->stats->{requests} - $before, 2, 'only the two valid requests reached the upstream')
    or diag(join("\n", @{ $up->stats->{request_log} }));

# upstream failures
my $page = $t->html('50x.html');
$r = TG::http_get($port, '/refused/x');
is($r && $r->{status}, 502, 'upstream refused: 502') or diag(TG::summary($r));
is($r && $r->{body}, $page, 'upstream refused: 50x page');
is(TG::hdr($r, 'Server'), 'tracegate', 'upstream refused: Server: tracegate');

$r = TG::http_get($port, '/partial/x?partial=1');
is($r && $r->{status}, 502, 'upstream closes mid-headers: 502') or diag(TG::summary($r));
is($r && $r->{body}, $page, 'upstream closes mid-headers: 50x page');

$r = TG::http_get($port, '/garbage/x?garbage=1');
is($r && $r->{status}, 502, 'upstream sends garbage: 502') or diag(TG::summary($r));

$r = TG::http_get($port, '/rst/x?rst=1', method => 'POST', body => 'x');
is($r && $r->{status}, 502, 'upstream resets before any byte (POST, not retried): 502') or diag(TG::summary($r));
is($bad{rst}->stats->{requests}, 1, 'the upstream really got that POST (and reset it)');

# nginx semantics: a pool with a single server is never marked down, so the
# next request after an upstream error is tried again
for my $name (qw(partial garbage rst)) {
    $r = TG::http_get($port, "/$name/next");
    is($r && $r->{status}, 200, "single-server pool \"$name\": the request after the error reaches the upstream")
        or diag(TG::summary($r));
}

# a keep-alive connection survives an upstream error response
my $c = TG::Conn->new($port);
$r = TG::request_on($c, '/refused/x', keepalive => 1);
is($r && $r->{status}, 502, '502 on a keep-alive connection');
$r = TG::request_on($c, '/service-a/after-502');
is($r && $r->{status}, 200, 'the next request on that connection works');

# truncated upstream body after headers were sent: the client must see an
# incomplete response (connection closed early), never a complete one
{
    my $up2 = TG::mock_upstream(name => 'trunc', handler => sub {
        return { raw => "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" . ('t' x 100) };
    });
    my $t2 = TG->new('56-errors-trunc');
    $t2->write_conf($t2->main_conf . "[upstream t]\nserver = 127.0.0.1:$up2->{port}\n\n[route /t]\nupstream = t\n");
    $t2->start_ok;
    my $c2 = TG::Conn->new($t2->{port});
    $c2->write("GET /t/x HTTP/1.1\r\nHost: tg.test\r\n\r\n");
    my $r2 = $c2->read_response(timeout => 5);
    ok(!$r2, 'truncated upstream body: the client does not get a complete response');
    like($c2->{error} // '', qr/eof/, 'truncated upstream body: client connection closed')
        or diag("error: " . ($c2->{error} // 'none'));
}

done_testing();
