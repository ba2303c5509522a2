#!/usr/bin/perl
# freeport.pl N: print N distinct TCP ports that are free on 127.0.0.1 right now
# (the kernel picks them: bind to port 0; all sockets stay open until all are picked).
use strict; use warnings;
use Socket qw(PF_INET SOCK_STREAM SOL_SOCKET SO_REUSEADDR inet_aton sockaddr_in pack_sockaddr_in);
my $n = shift // 1;
my (@socks, @ports);
for (1 .. $n) {
    socket(my $s, PF_INET, SOCK_STREAM, 0) or die "socket: $!";
    bind($s, pack_sockaddr_in(0, inet_aton('127.0.0.1'))) or die "bind: $!";
    my ($port) = sockaddr_in(getsockname($s));
    push @socks, $s; push @ports, $port;
}
print join(' ', @ports), "\n";
