#!/usr/bin/perl
# Reload under sustained load: wrk keeps 100 keep-alive connections busy
# while the master is sent HUP several times. No request may fail, no
# connection may be reset: old workers answer each busy connection's next
# request with "Connection: close" and only close connections that stayed
# idle. TG_RELOAD_SECONDS / TG_RELOADS make the long run (30 s, 10).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use POSIX ();
use TG;

my $wrk = `command -v wrk 2>/dev/null`;
chomp $wrk;
plan skip_all => 'wrk is not installed (apt: wrk)' unless $wrk;

my $seconds = $ENV{TG_RELOAD_SECONDS} || 10;
my $reloads = $ENV{TG_RELOADS} || 5;

my $up = TG::mock_upstream(name => 'a');
my $t = TG->new('97-reload');
my $conf = $t->main_conf("workers = 2") . <<"CONF";
[upstream up]
server = 127.0.0.1:$up->{port}
keepalive = 32

[route /svc]
upstream = up
CONF
$t->write_conf($conf);
my $master = $t->start_ok;
my $port = $t->{port};

my $out = "$t->{dir}/wrk.out";
my $pid = fork // die "fork: $!";
if ($pid == 0) {
    open STDOUT, '>', $out or POSIX::_exit(1);
    open STDERR, '>&', \*STDOUT;
    exec($wrk, '-t2', '-c100', "-d${seconds}s", '--timeout', '5s',
        "http://127.0.0.1:$port/svc/x") or POSIX::_exit(127);
}

# spread the reloads over the run, away from its first and last second
my $gap = ($seconds - 2) / $reloads;
sleep 1;
for my $i (1 .. $reloads) {
    $t->write_conf($conf . "; reload $i\n");
    kill 'HUP', $master;
    sleep $gap;
}
my $deadline = time + $seconds + 20;
while (time < $deadline) {
    last if waitpid($pid, POSIX::WNOHANG()) == $pid;
    sleep 0.2;
}
kill 'KILL', $pid if kill 0, $pid;

open my $fh, '<', $out or die "$out: $!";
my $report = do { local $/; <$fh> };
diag($report);

my ($requests) = $report =~ /(\d+) requests in/;
ok(defined $requests, 'wrk reported its requests') or diag($report);
cmp_ok($requests // 0, '>', 1000, 'wrk completed requests: ' . ($requests // 'none'));
my ($connect, $read, $write, $timeout) =
    $report =~ /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/;
is($connect // 0, 0, 'no connect errors');
is($read // 0, 0, 'no read errors (no connection reset or closed under a request)');
is($write // 0, 0, 'no write errors');
is($timeout // 0, 0, 'no timeouts');
my ($non2xx) = $report =~ /Non-2xx or 3xx responses: (\d+)/;
is($non2xx // 0, 0, 'no failed responses');
my $log = $t->error_log;
my $n = () = $log =~ /reconfiguring/g;
is($n, $reloads, "$reloads reloads happened");
diag(sprintf 'requests %s, reloads %d over %d s', $requests // '?', $reloads,
    $seconds);

done_testing();
