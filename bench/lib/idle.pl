#!/usr/bin/perl
# idle.pl PORT N READYFILE [HOLD_SECONDS] [PATH]
# Opens N keep-alive connections to 127.0.0.1:PORT one after the other, sends one
# "GET PATH HTTP/1.1" on each and reads the whole response, then keeps them all open
# and idle. When done it writes "opened=.. ok=.. failed=.. seconds=.." to READYFILE,
# then holds the connections until SIGTERM/SIGINT or HOLD_SECONDS (default 60),
# and finally tells how many the server still had open. Sockets close with
# SO_LINGER 0 (RST), so no TIME_WAIT piles up across runs. Perl core modules only.
use strict; use warnings;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_LINGER SO_RCVTIMEO SO_SNDTIMEO IPPROTO_TCP
              TCP_NODELAY MSG_PEEK MSG_DONTWAIT inet_aton pack_sockaddr_in);
use Time::HiRes qw(time sleep);

my ($port, $n, $ready, $hold, $path) = @ARGV;
die "usage: idle.pl PORT N READYFILE [HOLD_SECONDS] [PATH]\n" unless $port && $n && $ready;
$hold //= 60; $path //= '/2b';
my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
my $addr = pack_sockaddr_in($port, inet_aton('127.0.0.1'));
my $req = "GET $path HTTP/1.1\r\nHost: bench\r\nUser-Agent: tracegate-bench-idle\r\n\r\n";
my $tv = pack('l!l!', 5, 0);
my (@socks, $ok, $failed, $err);
($ok, $failed) = (0, 0);
my $t0 = time;
for my $i (1 .. $n) {
    last if $stop;
    my $s;
    unless (socket($s, PF_INET, SOCK_STREAM, 0)) { $err = "socket: $!"; $failed++; last; }
    setsockopt($s, SOL_SOCKET, SO_RCVTIMEO, $tv);
    setsockopt($s, SOL_SOCKET, SO_SNDTIMEO, $tv);
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1);
    unless (connect($s, $addr)) { $err = "connect: $!"; $failed++; close $s; next; }
    unless (defined syswrite($s, $req)) { $err = "write: $!"; $failed++; close $s; next; }
    my $buf = '';
    my $good = 0;
    while (1) {
        my $r = sysread($s, $buf, 65536, length $buf);
        if (!$r) { $err = defined $r ? 'closed by server' : "read: $!"; last; }
        my $he = index($buf, "\r\n\r\n");
        next if $he < 0;
        my ($cl) = substr($buf, 0, $he) =~ /\r\nContent-Length:\s*(\d+)/i;
        $cl //= 0;
        next if length($buf) < $he + 4 + $cl;
        $good = $buf =~ m{^HTTP/1\.1 200 } && substr($buf, 0, $he) !~ /\r\nConnection:\s*close/i;
        $err = 'status: ' . (split /\r\n/, $buf)[0] unless $good;
        last;
    }
    if ($good) { $ok++; push @socks, $s } else { $failed++; close $s }
}
my $secs = time - $t0;
open(my $f, '>', "$ready.tmp") or die "$ready.tmp: $!";
printf $f "opened=%d ok=%d failed=%d seconds=%.2f%s\n", $n, $ok, $failed, $secs,
    $err ? " last_error=\"$err\"" : '';
close $f;
rename "$ready.tmp", $ready;
my $end = time + $hold;
sleep 0.1 while !$stop && time < $end;
# how many are still open on the server side (a peek returns 0 bytes once it closed)
my $open = 0;
for my $s (@socks) {
    my $b = '';
    my $r = recv($s, $b, 1, MSG_PEEK | MSG_DONTWAIT);
    $open++ if (!defined $r && ($!{EAGAIN} || $!{EWOULDBLOCK})) || (defined $r && length $b);
}
printf "held=%d of ok=%d\n", $open, $ok;
close $_ for @socks;
