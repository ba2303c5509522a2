#!/usr/bin/perl
# Signals: HUP reload under load (no failed request, new routes take
# effect), HUP with an invalid configuration (logged, old one keeps
# serving), USR1 reopens the error log, QUIT drains an in-flight request,
# -s reload / -s quit through the pid file.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use TG;

my %up = map { $_ => TG::mock_upstream(name => $_) } qw(a b c);
my $t = TG->new('95-signals');

sub conf_for {
    my ($target) = @_;
    return $t->main_conf . <<"CONF";
[upstream up-a]
server = 127.0.0.1:$up{a}{port}

[upstream up-b]
server = 127.0.0.1:$up{b}{port}

[upstream up-c]
server = 127.0.0.1:$up{c}{port}

[route /svc]
upstream = up-$target

[route /slow]
upstream = up-a
CONF
}

$t->write_conf(conf_for('a'));
my $master = $t->start_ok;
my $port = $t->{port};
my @w0 = $t->workers;

# HUP reload while a client sends 300 requests over ~3 s
my (@fail, %seen, @order);
my $reloads = 0;
for my $i (1 .. 300) {
    if ($i == 100 || $i == 200) {
        $t->write_conf(conf_for($i == 100 ? 'b' : 'c'));
        kill 'HUP', $master;
        $reloads++;
    }
    my $r = TG::http_get($port, "/svc/$i", timeout => 5);
    if ($r && $r->{status} == 200) {
        my $u = TG::hdr($r, 'X-Upstream') // '?';
        $seen{$u}++;
        push @order, $u;
    } else {
        push @fail, "request $i: " . TG::summary($r);
        push @order, 'FAIL';
    }
    sleep 0.01;
}
is(scalar @fail, 0, '300 requests across 2 reloads: no failed request')
    or diag(join("\n", @fail[0 .. ($#fail < 9 ? $#fail : 9)]));
diag('served by: ' . join(', ', map { "$_=$seen{$_}" } sort keys %seen));
ok(($seen{b} // 0) > 0, 'after the first reload /svc reaches upstream b');
is_deeply([@order[-50 .. -1]], [('c') x 50], 'after the second reload /svc reaches upstream c (last 50 requests)');
is_deeply([@order[0 .. 98]], [('a') x 99], 'before any reload /svc reaches upstream a');
ok(TG::alive($master), 'master survived the reloads');
my @w1 = $t->workers;
is(scalar @w1, 1, 'one worker after the reloads (old ones exited)') or diag("workers: @w1");
ok(!grep({ my $x = $_; grep { $_ == $x } @w0 } @w1), 'the worker was replaced by the reload');

# HUP with an invalid configuration: logged, old configuration keeps serving
my $log_before = length $t->error_log;
$t->write_conf(conf_for('c') . "\nbogus_key_here = 1\n");
my $badline = TG::line_of(conf_for('c') . "\nbogus_key_here = 1\n", qr/^bogus_key_here/);
kill 'HUP', $master;
my $logged = TG::wait_for(3, sub { substr($t->error_log, $log_before) =~ /bogus_key_here|\Q$t->{conf}\E:$badline/ });
ok($logged, 'invalid configuration on HUP: the error is logged')
    or diag('log: ' . TG::tail(substr($t->error_log, $log_before), 10));
like(substr($t->error_log, $log_before), qr/\[(emerg|alert|crit|error)\]/, 'logged with an error level');
ok(TG::alive($master), 'master still running after a bad reload');
my $ok = 0;
for my $i (1 .. 10) {
    my $r = TG::http_get($port, "/svc/after-bad-$i");
    $ok++ if $r && $r->{status} == 200 && (TG::hdr($r, 'X-Upstream') // '') eq 'c';
}
is($ok, 10, 'old configuration keeps serving after the failed reload (10/10 from upstream c)');
$t->write_conf(conf_for('c'));

# USR1 reopens the error log
my $log = "$t->{dir}/logs/error.log";
ok(-e $log, 'error.log exists');
rename $log, "$log.1" or die "rename: $!";
kill 'USR1', $master;
ok(TG::wait_for(3, sub { -e $log }), 'USR1: a new logs/error.log is created');
# something must now go to the new file: a failing upstream connection is
# logged at error level
my ($dead, $dead_sock) = TG::refused_port();
$t->write_conf(conf_for('c') . "\n[upstream dead]\nserver = 127.0.0.1:$dead\n\n[route /dead]\nupstream = dead\n");
kill 'HUP', $master;
TG::wait_for(3, sub { my $r = TG::http_get($port, '/dead/x'); $r && $r->{status} == 502 });
ok(TG::wait_for(3, sub { length(TG::slurp($log) // '') > 0 }), 'USR1: new messages go to the new error.log');
my $old_len = length(TG::slurp("$log.1") // '');
TG::http_get($port, '/dead/again');
sleep 0.3;
is(length(TG::slurp("$log.1") // ''), $old_len, 'USR1: the renamed log no longer grows');

# -s reload through the pid file
{
    $t->write_conf(conf_for('a'));
    my ($rc, $out, $err) = $t->cli('-s', 'reload');
    is($rc, 0, '-s reload exits 0') or diag($err);
    ok(TG::wait_for(5, sub {
        my $r = TG::http_get($port, '/svc/after-s-reload');
        $r && (TG::hdr($r, 'X-Upstream') // '') eq 'a';
    }, 0.1), '-s reload: the new configuration takes effect');
}

# QUIT lets an in-flight slow request finish
{
    my $c = TG::Conn->new($port);
    $c->write("GET /slow/x?delay=1500&len=100000 HTTP/1.1\r\nHost: tg.test\r\n\r\n");
    sleep 0.4;
    my $t0 = time;
    kill 'QUIT', $master;
    my $r = $c->read_response(timeout => 10);
    is($r && $r->{status}, 200, 'QUIT: the in-flight slow request completes with 200')
        or diag(TG::summary($r) . ' ' . ($c->{error} // ''));
    is($r && $r->{body_md5}, TG::gen_md5(100000), 'QUIT: its body is complete');
    like(TG::hdr($r, 'Connection') // '', qr/close/i, 'QUIT: the drained response says Connection: close');
    ok($c->wait_closed(1), 'QUIT: the connection is closed right after the drained response');
    ok(TG::wait_for(5, sub { TG::reap($master) }), 'QUIT: the master exits after the drain');
    diag(sprintf('master exited %.2f s after QUIT', time - $t0));
    ok(!TG::port_accepts($port, 0.3), 'QUIT: port closed');
    delete $t->{pid};
    delete $TG::STARTED{$master};
}

# -s quit through the pid file
{
    my $t2 = TG->new('95-signals-s');
    $t2->write_conf($t2->main_conf . "[upstream a]\nserver = 127.0.0.1:$up{a}{port}\n\n[route /a]\nupstream = a\n");
    my $m2 = $t2->start_ok;
    my ($rc, $out, $err) = $t2->cli('-s', 'quit');
    is($rc, 0, '-s quit exits 0') or diag($err);
    ok(TG::wait_for(5, sub { TG::reap($m2) }), '-s quit: the master exits');
    delete $t2->{pid};
    delete $TG::STARTED{$m2};
    ($rc, $out, $err) = $t2->cli('-s', 'stop');
    isnt($rc, 0, '-s stop without a running master fails');
}

done_testing();
