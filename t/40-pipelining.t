#!/usr/bin/perl
# Pipelining: several requests in one write are answered in order, also when
# the first upstream response is slow, with bodies, /health and 404 mixed in.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use TG;

my $up = TG::mock_upstream(name => 'a');
my $t = TG->new('40-pipelining');
$t->write_conf($t->main_conf . $t->service_a_conf($up));
$t->start_ok;
my $port = $t->{port};

sub req {
    my ($path, $extra) = @_;
    return "GET $path HTTP/1.1\r\nHost: tg.test\r\n" . ($extra // '') . "\r\n";
}

sub pipeline {
    my ($name, $bytes, $n, %o) = @_;
    my $c = TG::Conn->new($port) or do { fail("$name: connect: $@"); return () };
    $c->write($bytes);
    my @r;
    for my $i (1 .. $n) {
        my $r = $c->read_response(timeout => 10, head => ($o{heads} || [])->[$i - 1]);
        unless ($r) { diag("$name: response $i: $c->{error}"); last }
        push @r, $r;
    }
    $c->{n_ok} = scalar @r;
    return ($c, @r);
}

my $uri = sub { my $e = TG::parse_echo($_[0] && $_[0]{body}); $e ? $e->{uri} : '(none)' };

# 1. three GETs in one write
my ($c, @r) = pipeline('3 GETs',
    req('/service-a/1') . req('/service-a/2') . req('/service-a/3', "Connection: close\r\n"), 3);
is(scalar @r, 3, 'three pipelined requests get three responses');
is_deeply([map { $_->{status} } @r], [200, 200, 200], 'all 200');
is_deeply([map { $uri->($_) } @r], ['/service-a/1', '/service-a/2', '/service-a/3'],
          'responses come in request order');
ok($c->wait_closed(3), 'connection closed after the request with Connection: close');
is($c->{extra} // '', '', 'nothing after the third response');

# 2. slow first response
my $t0 = time;
($c, @r) = pipeline('slow first',
    req('/service-a/slow?delay=800') . req('/service-a/fast1') . req('/service-a/fast2', "Connection: close\r\n"), 3);
my $dt = time - $t0;
is_deeply([map { $uri->($_) } @r], ['/service-a/slow?delay=800', '/service-a/fast1', '/service-a/fast2'],
          'slow first upstream response: responses still in request order');
ok($dt >= 0.75, sprintf('the slow response was really slow (%.2f s)', $dt));
ok($dt < 5, 'all three answered within 5 s');

# 3. bodies, /health and 404 mixed in one write
my $bytes = req('/service-a/p1')
          . "POST /service-a/p2 HTTP/1.1\r\nHost: tg.test\r\nContent-Length: 5\r\n\r\nhello"
          . req('/health')
          . req('/nomatch')
          . "POST /service-a/p3 HTTP/1.1\r\nHost: tg.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
          . "HEAD /service-a/p4?len=100 HTTP/1.1\r\nHost: tg.test\r\n\r\n"
          . req('/service-a/p5', "Connection: close\r\n");
($c, @r) = pipeline('mixed', $bytes, 7, heads => [0, 0, 0, 0, 0, 1, 0]);
is(scalar @r, 7, 'seven mixed pipelined requests get seven responses');
is_deeply([map { $_->{status} } @r], [200, 200, 200, 404, 200, 200, 200], 'statuses in order');
is($uri->($r[0]), '/service-a/p1', '1st: GET p1');
my $e = TG::parse_echo($r[1] && $r[1]{body});
is($e && $e->{uri}, '/service-a/p2', '2nd: POST p2');
is($e && $e->{body}, 'hello', '2nd: body "hello" reached the upstream');
is($r[2] && $r[2]{body}, "ok\n", '3rd: /health');
is($r[3] && $r[3]{body}, $t->html('404.html'), '4th: 404 page');
$e = TG::parse_echo($r[4] && $r[4]{body});
is($e && $e->{body}, 'abc', '5th: chunked POST body "abc"');
is(TG::hdr($r[5], 'Content-Length'), '100', '6th: HEAD has Content-Length 100');
is($uri->($r[6]), '/service-a/p5', '7th: GET p5 (HEAD had no body)');
ok($c->wait_closed(3), 'closed after the last (Connection: close)');

# 4. a pipeline split at awkward places (byte by byte for the first bytes)
$bytes = req('/service-a/s1') . req('/service-a/s2', "Connection: close\r\n");
$c = TG::Conn->new($port);
for my $i (0 .. 40) { $c->write(substr($bytes, $i, 1)); select(undef, undef, undef, 0.005) }
$c->write(substr($bytes, 41));
@r = map { $c->read_response(timeout => 5) } 1 .. 2;
is_deeply([map { $uri->($_) } @r], ['/service-a/s1', '/service-a/s2'], 'requests split into tiny writes');

# 5. one read holds a whole request and the start of the next (the head cut
#    inside a header, then inside a body): what the first leaves waits for
#    the rest, which comes in a later read
for my $cut (['in a header', 'Ho'], ['in the body', "Content-Length: 10\r\n\r\n01234"]) {
    my ($what, $tail) = @$cut;
    my $second = $what eq 'in the body'
        ? "POST /service-a/b2 HTTP/1.1\r\nHost: tg.test\r\nContent-Length: 10\r\n\r\n0123456789"
        : req('/service-a/h2', "Connection: close\r\n");
    my $first = req('/service-a/h1');
    my $head = $what eq 'in the body' ? "POST /service-a/b2 HTTP/1.1\r\nHost: tg.test\r\n$tail" : "GET /service-a/h2 HTTP/1.1\r\n$tail";
    $c = TG::Conn->new($port);
    $c->write($first . $head);
    my $r1 = $c->read_response(timeout => 5);
    select(undef, undef, undef, 0.2);
    $c->write(substr($second, length $head));
    my $r2 = $c->read_response(timeout => 5);
    is($uri->($r1), '/service-a/h1', "cut $what: the whole request is answered at once");
    my $e = TG::parse_echo($r2 && $r2->{body});
    is($e ? $e->{uri} : '(none)', $what eq 'in the body' ? '/service-a/b2' : '/service-a/h2',
       "cut $what: the rest completes the next request");
    is($e && $e->{body}, '0123456789', "cut $what: its body whole") if $what eq 'in the body';
}

done_testing();
