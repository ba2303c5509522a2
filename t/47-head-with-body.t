#!/usr/bin/perl
# A response whose head and whole body come in one read is written to the
# client together, from where it was read. These check what that must not
# change: the body intact and in order, also when the client's receive
# window takes only part of it at first (the rest waits in the output
# buffer), HEAD and 204 answers without a body, and the pipelined requests
# behind them.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_RCVBUF pack_sockaddr_in inet_aton);
use TG;

my $BIG = join('', map { sprintf "%07d\n", $_ } 0 .. 7499);    # 60000 bytes, no two lines alike

my $up = TG::mock_upstream(name => 'a', handler => sub {
    my ($req) = @_;
    # head and body in one write, so that they come in one read
    return { raw => "HTTP/1.1 200 OK\r\nContent-Length: " . length($BIG) . "\r\n\r\n$BIG" }
        if $req->{uri} =~ m{/big$};
    return { status => 204 } if $req->{uri} =~ m{/empty$};
    return { body => "kept $req->{conn}", one_write => 1 } if $req->{uri} =~ m{/ka$};
    return undef;
});
my $t = TG->new('47-head-with-body');
$t->write_conf($t->main_conf . $t->service_a_conf($up));
$t->start_ok;
my $port = $t->{port};
my $uri = sub { my $e = TG::parse_echo($_[0] && $_[0]{body}); $e ? $e->{uri} : '(none)' };

sub req { "GET $_[0] HTTP/1.1\r\nHost: tg.test\r\n" . ($_[1] // '') . "\r\n" }

# 1. an ordinary client
my $c = TG::Conn->new($port);
$c->write(req('/service-a/big') . req('/service-a/next'));
my $r1 = $c->read_response(timeout => 5);
my $r2 = $c->read_response(timeout => 5);
is($r1 && $r1->{status}, 200, 'big: 200');
is(TG::hdr($r1, 'Content-Length'), length $BIG, 'big: Content-Length kept');
ok(($r1 ? $r1->{body} // '' : 'no response') eq $BIG, 'big: body intact')
    or diag('got ' . length($r1 && $r1->{body} // '') . ' bytes');
is($uri->($r2), '/service-a/next', 'the pipelined request behind it answered');

# 2. a client with a 4 KiB receive buffer that reads nothing for a while:
#    a write takes part of a response once the socket is full, the rest
#    follows in order
socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
setsockopt($s, SOL_SOCKET, SO_RCVBUF, 4096) or die "setsockopt: $!";
connect($s, pack_sockaddr_in($port, inet_aton('127.0.0.1'))) or die "connect: $!";
binmode $s;
my $reqs = req('/service-a/big') x 100 . req('/service-a/last', "Connection: close\r\n");
syswrite($s, $reqs) == length $reqs or die "write: $!";
select(undef, undef, undef, 0.5);
my $all = '';
my $deadline = time + 10;
while (time < $deadline) {
    my $n = sysread($s, my $buf, 65536);
    last unless $n;
    $all .= $buf;
}
close $s;
my @parts = split /(?=HTTP\/1\.1 \d{3} )/, $all;
is(scalar @parts, 101, 'slow reader: 101 responses') or diag(length($all) . ' bytes read');
my @bad;
for my $i (0 .. 99) {
    my ($head, $body) = split /\r\n\r\n/, $parts[$i] // '', 2;
    push @bad, $i + 1 unless defined $body && $body eq $BIG;
}
is("@bad", '', 'slow reader: every body intact and in order (6 MB, more than the socket takes at once)');
like($parts[100] // '', qr{uri /service-a/last}, 'slow reader: the last one follows them');

# 3. HEAD and 204: a head without a body, then the next request
$c = TG::Conn->new($port);
$c->write("HEAD /service-a/big HTTP/1.1\r\nHost: tg.test\r\n\r\n" . req('/service-a/empty') . req('/service-a/after'));
my $h = $c->read_response(timeout => 5, head => 1);
my $e = $c->read_response(timeout => 5);
my $a = $c->read_response(timeout => 5);
is($h && $h->{status}, 200, 'HEAD: 200');
is(TG::hdr($h, 'Content-Length'), length $BIG, 'HEAD: Content-Length of the body it does not carry');
is($e && $e->{status}, 204, '204 answered');
is($uri->($a), '/service-a/after', 'the request after HEAD and 204 answered');

# 4. a keep-alive upstream connection that sent head and body in one write
#    is reused: what went out with the head was consumed, not left to be
#    read as the next response
my %conns;
for my $i (1 .. 5) {
    my $r = TG::http_get($port, '/service-a/ka');
    $conns{$1}++ if ($r && $r->{body} // '') =~ /^kept (\S+)$/;
    like($r && $r->{body} // '', qr/^kept \S+$/,
         "keep-alive upstream, head and body in one write: request $i answered");
}
is(scalar keys %conns, 1, 'one upstream connection served all five (reused)')
    or diag(join ' ', %conns);

done_testing();
