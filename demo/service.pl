#!/usr/bin/perl
# A small demo upstream for the quick start: answers every request with a
# JSON document showing the trace context it received from the gateway.
# usage: service.pl NAME PORT [PIDFILE]
use strict;
use warnings;
use IO::Socket::INET;
use POSIX ();

my ($name, $port, $pidfile) = @ARGV;
die "usage: $0 NAME PORT [PIDFILE]\n" unless $name && $port;

my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
    Listen => 128, ReuseAddr => 1) or die "$name: listen on $port: $!\n";
if ($pidfile) {
    open my $fh, '>', $pidfile or die "$pidfile: $!\n";
    print $fh "$$\n";
    close $fh;
}
$SIG{CHLD} = sub { 1 while waitpid(-1, POSIX::WNOHANG()) > 0 };
$SIG{TERM} = sub { unlink $pidfile if $pidfile; exit 0 };

sub json_str {
    my $s = shift // '';
    $s =~ s/(["\\])/\\$1/g;
    $s =~ s/([\x00-\x1f])/sprintf('\\u%04x', ord $1)/ge;
    return "\"$s\"";
}

while (1) {
    my $c = $srv->accept or next;
    my $pid = fork;
    if (!defined $pid || $pid) { close $c; next; }
    close $srv;
    my $buf = '';
    while (1) {
        while ($buf !~ /\r\n\r\n/) {
            my $n = sysread($c, $buf, 65536, length $buf);
            exit 0 unless $n;
        }
        my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
        my ($line, @lines) = split /\r\n/, $head;
        my %h;
        for (@lines) { my ($k, $v) = split /:\s*/, $_, 2; $h{lc $k} = $v; }
        my $len = $h{'content-length'} // 0;
        while (length($rest) < $len) {
            my $n = sysread($c, $rest, 65536, length $rest);
            exit 0 unless $n;
        }
        $buf = substr($rest, $len);
        my ($method, $target) = split / /, $line;
        my $body = sprintf("{\"service\":%s,\"method\":%s,\"target\":%s,"
            . "\"traceparent\":%s,\"tracestate\":%s,\"x_trace_id\":%s}\n",
            json_str($name), json_str($method), json_str($target),
            json_str($h{traceparent}), json_str($h{tracestate}),
            json_str($h{'x-trace-id'}));
        my $close = ($h{connection} // '') =~ /close/i;
        print $c "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            . "Content-Length: " . length($body) . "\r\n"
            . ($close ? "Connection: close\r\n" : "") . "\r\n"
            . ($method eq 'HEAD' ? '' : $body);
        exit 0 if $close;
    }
}
