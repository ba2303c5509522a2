#!/usr/bin/perl
# Chunked request and response bodies (framing passed through), Expect:
# 100-continue, HEAD/204/304 without body, close-delimited responses.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use TG;

my $up = TG::mock_upstream(name => 'a', handler => sub {
    my ($req) = @_;
    if ($req->{path} =~ m{/explicit-chunks$}) {
        return { chunks => ['first,', 'second chunk,', 'x' x 3000, 'last'] };
    }
    if ($req->{path} =~ m{/trailers$}) {
        return { chunks => ['body'], trailers => "X-Checksum: 42\r\n" };
    }
    if ($req->{path} =~ m{/304$}) {
        return { status => 304, headers => [['ETag', '"v1"']] };
    }
    return undef;
});
my $t = TG->new('42-chunked');
$t->write_conf($t->main_conf . $t->service_a_conf($up));
$t->start_ok;
my $port = $t->{port};

# chunked request body
my @chunks = ('hello', ' world', 'y' x 1000, "\r\n\x00binary\xff");
my $body = join('', @chunks);
my $raw = "POST /service-a/upload HTTP/1.1\r\nHost: tg.test\r\nTransfer-Encoding: chunked\r\n\r\n"
        . join('', map { sprintf("%x\r\n%s\r\n", length $_, $_) } @chunks) . "0\r\n\r\n";
my $c = TG::Conn->new($port);
$c->write($raw);
my $r = $c->read_response(timeout => 5);
my $e = TG::parse_echo($r && $r->{body});
is($r && $r->{status}, 200, 'chunked POST answered') or diag(TG::summary($r));
is($e && $e->{body}, $body, 'chunked request body arrives intact at the upstream');
is($e && $e->{body_len}, length $body, 'upstream body length');
like(join(',', @{ ($e && $e->{h}{'transfer-encoding'}) || [] }), qr/chunked/i,
     'upstream saw Transfer-Encoding: chunked');
is($e ? $e->{h}{'content-length'} : 'no echo', undef, 'upstream saw no Content-Length');
is($e && $e->{chunks}, join(',', (map { length } @chunks), 0), 'chunk framing passed through (same chunk sizes)');

# chunked request body sent slowly, chunk by chunk
$c = TG::Conn->new($port);
$c->write("POST /service-a/slow-upload HTTP/1.1\r\nHost: tg.test\r\nTransfer-Encoding: chunked\r\n\r\n");
for my $ch (@chunks) { sleep 0.1; $c->write(sprintf("%x\r\n%s\r\n", length $ch, $ch)) }
sleep 0.1;
$c->write("0\r\n\r\n");
$r = $c->read_response(timeout => 5);
$e = TG::parse_echo($r && $r->{body});
is($e && $e->{body}, $body, 'slowly sent chunked body arrives intact');

# chunked responses
$r = TG::http_get($port, '/service-a/explicit-chunks');
is($r && $r->{status}, 200, 'chunked response answered');
is($r && $r->{chunked}, 1, 'client gets Transfer-Encoding: chunked') or diag(TG::summary($r));
is($r ? TG::hdr($r, 'Content-Length') : 'no response', undef, 'no Content-Length on the chunked response');
is($r && $r->{body}, 'first,second chunk,' . ('x' x 3000) . 'last', 'chunked response body intact');
is(join(',', @{ ($r && $r->{chunks}) || [] }), '6,13,3000,4,0', 'chunk framing passed through');

my $n = 3 * 1024 * 1024 + 17;
$r = TG::http_get($port, "/service-a/gen?len=$n&chunked=1&chunk_size=100000", sink => 1);
is($r && $r->{body_len}, $n, 'large chunked response: length');
is($r && $r->{body_md5}, TG::gen_md5($n), 'large chunked response: checksum');

$r = TG::http_get($port, '/service-a/gen?len=2000&chunked=1&chunk_size=500&chunk_delay=100');
is($r && $r->{body_md5}, TG::gen_md5(2000), 'slowly produced chunked response intact');

$r = TG::http_get($port, '/service-a/trailers');
is($r && $r->{body}, 'body', 'chunked response with trailers: body');

# Expect: 100-continue
$c = TG::Conn->new($port);
$c->write("POST /service-a/expect HTTP/1.1\r\nHost: tg.test\r\nExpect: 100-continue\r\n"
        . "Content-Length: 11\r\n\r\n");
my $i = $c->read_response(interim => 1, timeout => 3);
is($i && $i->{status}, 100, 'Expect: 100-continue: "100 Continue" before the body is sent')
    or diag('got: ' . TG::summary($i));
like($i && $i->{raw_head}, qr{^HTTP/1\.1 100 Continue\r\n}, 'status line is HTTP/1.1 100 Continue');
$c->write('hello world');
$r = $c->read_response(timeout => 5);
$e = TG::parse_echo($r && $r->{body});
is($r && $r->{status}, 200, 'Expect: final response 200');
is($e && $e->{body}, 'hello world', 'Expect: body reached the upstream');

# HEAD, 204, 304: no body; the next pipelined response must parse cleanly
for my $case (['HEAD', '/service-a/h?len=1000', 200],
              ['GET',  '/service-a/n?status=204', 204],
              ['GET',  '/service-a/304', 304]) {
    my ($m, $path, $st) = @$case;
    $c = TG::Conn->new($port);
    $c->write("$m $path HTTP/1.1\r\nHost: tg.test\r\n\r\n"
            . "GET /service-a/after HTTP/1.1\r\nHost: tg.test\r\nConnection: close\r\n\r\n");
    my $r1 = $c->read_response(timeout => 5, head => $m eq 'HEAD');
    my $r2 = $c->read_response(timeout => 5);
    is($r1 && $r1->{status}, $st, "$m $path: status $st");
    is($r1 && $r1->{body}, '', "$m $path: no body");
    if ($m eq 'HEAD') {
        is(TG::hdr($r1, 'Content-Length'), '1000', 'HEAD keeps the upstream Content-Length');
    }
    my $e2 = TG::parse_echo($r2 && $r2->{body});
    is($e2 && $e2->{uri}, '/service-a/after', "$m $path: the following response is intact")
        or diag('second: ' . TG::summary($r2));
}

# close-delimited response
$c = TG::Conn->new($port);
$c->write("GET /service-a/cd?len=300000&close=1 HTTP/1.1\r\nHost: tg.test\r\n\r\n");
$r = $c->read_response(timeout => 10);
ok($r, 'close-delimited upstream response relayed') or diag($c->{error});
is($r && $r->{body_len}, 300000, 'close-delimited: all 300000 bytes');
is($r && $r->{body_md5}, TG::gen_md5(300000), 'close-delimited: checksum');
ok($c->wait_closed(3), 'close-delimited: client connection closed afterwards');

done_testing();
