#!/usr/bin/perl
# Sockets are edge-triggered: epoll reports a socket once when bytes
# arrive, not again while they wait. These send more than one read takes
# (64 KiB) in one go, with nothing after it to announce the rest, and a
# peer's FIN right behind its last bytes: each must come through at once,
# not when a timeout fires.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time);
use Digest::MD5;
use TG;

my $BIG = join('', map { sprintf "%09d\n", $_ } 0 .. 29_999);    # 300000 bytes

my $up = TG::mock_upstream(name => 'a', handler => sub {
    my ($req) = @_;
    # head and body in one write; the connection stays open
    return { body => $BIG, one_write => 1 } if $req->{uri} =~ m{/big-keepalive$};
    # no length: the body ends where the upstream closes, right after it
    return { raw => "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n$BIG" }
        if $req->{uri} =~ m{/big-close$};
    return { raw => "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nsmall $req->{req}" }
        if $req->{uri} =~ m{/small-close$};
    return { len => 3_000_000, chunk_size => 1 << 20 } if $req->{uri} =~ m{/stream$};
    return undef;
});
my $t = TG->new('48-edge-triggered');
$t->write_conf($t->main_conf . $t->service_a_conf($up));
$t->start_ok;
my $port = $t->{port};

sub req { "GET $_[0] HTTP/1.1\r\nHost: tg.test\r\n" . ($_[1] // '') . "\r\n" }

# 1. 300 KB in one write from a keep-alive upstream: after the first 64 KiB
#    read nothing new arrives, the rest waits in the socket
my $c = TG::Conn->new($port);
my $t0 = time;
$c->write(req('/service-a/big-keepalive'));
my $r = $c->read_response(timeout => 5);
my $took = time - $t0;
is($r && $r->{status}, 200, 'keep-alive upstream, 300 KB at once: 200');
ok(($r ? $r->{body} // '' : 'no response') eq $BIG, 'keep-alive upstream, 300 KB at once: body intact')
    or diag('got ' . length($r && $r->{body} // '') . ' bytes');
cmp_ok($took, '<', 2, 'keep-alive upstream, 300 KB at once: no wait for a timeout')
    or diag(sprintf '%.2f s', $took);

# 2. 300 KB then the upstream's FIN, body delimited by the close
$t0 = time;
$c->write(req('/service-a/big-close'));
$r = $c->read_response(timeout => 5);
$took = time - $t0;
is($r && $r->{status}, 200, 'close-delimited 300 KB: 200');
ok(($r ? $r->{body} // '' : 'no response') eq $BIG, 'close-delimited 300 KB: body intact')
    or diag('got ' . length($r && $r->{body} // '') . ' bytes');
cmp_ok($took, '<', 2, 'close-delimited 300 KB: the close is seen at once')
    or diag(sprintf '%.2f s', $took);

# 3. small close-delimited responses: the FIN comes with the last bytes, in
#    the same wakeup
my @slow;
my $ok = 0;
for my $i (1 .. 20) {
    $t0 = time;
    $c = TG::Conn->new($port);
    $c->write(req('/service-a/small-close'));
    $r = $c->read_response(timeout => 5);
    $took = time - $t0;
    $ok++ if $r && ($r->{body} // '') =~ /^small \d+$/;
    push @slow, sprintf('%d: %.2f s', $i, $took) if $took >= 1;
}
is($ok, 20, 'close-delimited small bodies: 20 of 20 answered');
is("@slow", '', 'close-delimited small bodies: none waited for a timeout');

# 4. a client sends a 300 KB request body in one write
my $body = $BIG;
$c = TG::Conn->new($port);
$t0 = time;
$c->write("POST /service-a/echo HTTP/1.1\r\nHost: tg.test\r\nContent-Length: "
          . length($body) . "\r\n\r\n$body");
$r = $c->read_response(timeout => 5);
$took = time - $t0;
my $e = TG::parse_echo($r && $r->{body});
diag(substr($r && $r->{body} // '(no response)', 0, 300)) unless $e;
is($e && $e->{body_len}, length $body, 'request body of 300 KB in one write: all of it upstream');
is($e && $e->{body_md5}, Digest::MD5::md5_hex($body), 'request body of 300 KB in one write: intact');
cmp_ok($took, '<', 2, 'request body of 300 KB in one write: no wait for a timeout')
    or diag(sprintf '%.2f s', $took);

# 5. a client that sends its request and its FIN together gets its answer
$c = TG::Conn->new($port);
$c->write(req('/service-a/last'));
shutdown($c->sock, 1);
$r = $c->read_response(timeout => 5);
like($r && $r->{body} // '', qr{uri /service-a/last}, 'request then FIN: answered');

# 6. a client that reads nothing for a while: the response fills the
#    socket and waits in the output buffer; once the client reads, the
#    socket drains (one edge) and the rest must follow without another
$c = TG::Conn->new($port, rcvbuf => 4096);
$c->write(req('/service-a/stream', "Connection: close\r\n"));
select(undef, undef, undef, 0.5);
$t0 = time;
my $all = '';
my $sock = $c->sock;
$sock->blocking(1);
while (time - $t0 < 10) {
    my $n = sysread($sock, my $buf, 1 << 20);
    last unless $n;
    $all .= $buf;
}
$took = time - $t0;
my ($head, $got) = split /\r\n\r\n/, $all, 2;
is(length($got // ''), 3_000_000, 'paused reader: all 3 MB arrive');
is(Digest::MD5::md5_hex($got // ''), TG::gen_md5(3_000_000), 'paused reader: intact');
cmp_ok($took, '<', 3, 'paused reader: no wait for a timeout') or diag(sprintf '%.2f s', $took);

done_testing();
