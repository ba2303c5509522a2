#!/usr/bin/perl
# Smoke: -v/-V, start in the foreground, /health, a proxied request, stop.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use TG;

ok(-x $TG::BIN, "$TG::BIN exists and is executable")
    or do { diag('run ./configure && make first'); done_testing(); exit 1 };

my $t = TG->new('00-smoke');

my ($rc, $out, $err) = $t->run_cli('-v');
is($rc, 0, '-v exits 0');
like($out . $err, qr/^tracegate version \S+/m, '-v prints "tracegate version X"')
    or diag("stdout: $out\nstderr: $err");

($rc, $out, $err) = $t->run_cli('-V');
is($rc, 0, '-V exits 0');
like($out . $err, qr/^tracegate version \S+/m, '-V prints the version');
like($out . $err, qr/configure arguments/i, '-V prints the configure arguments')
    or diag("stdout: $out\nstderr: $err");

my $up = TG::mock_upstream(name => 'a');
$t->write_conf($t->main_conf . <<"CONF");
[upstream service-a]
server = 127.0.0.1:$up->{port}

[route /service-a]
upstream = service-a
CONF

($rc, $out, $err) = $t->cli('-t');
is($rc, 0, '-t on the smoke config exits 0') or diag($err);

my $pid = $t->start_ok;
ok(TG::alive($pid), "master $pid is running");
my @w = $t->workers;
is(scalar @w, 1, 'workers = 1 gives one worker process') or diag("children: @w");

my $r = TG::http_get($t->{port}, '/health');
is($r && $r->{status}, 200, 'GET /health is 200') or diag(TG::summary($r));
is($r && $r->{body}, "ok\n", '/health body is "ok\n"');
is($up->stats->{requests}, 0, '/health does not touch the upstream');

$r = TG::http_get($t->{port}, '/service-a/hello');
is($r && $r->{status}, 200, 'GET /service-a/hello is proxied (200)') or diag(TG::summary($r));
my $e = TG::parse_echo($r && $r->{body});
is($e && $e->{uri}, '/service-a/hello', 'upstream saw /service-a/hello');

my $pidf = $t->master_pid_from_file;
is($pidf, $pid, 'pid file logs/tracegate.pid holds the master pid');

ok($t->stop(5), 'QUIT stops the master within 5 s');
ok(!TG::alive($_), "worker $_ is gone after stop") for @w;
ok(!TG::port_accepts($t->{port}, 0.5), 'port no longer accepts after stop');

done_testing();
