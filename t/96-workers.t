#!/usr/bin/perl
# Workers: workers = 2 gives two worker processes sharing the port; a worker
# killed with SIGKILL is respawned and requests keep succeeding.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use TG;

my $up = TG::mock_upstream(name => 'a');
my $t = TG->new('96-workers');
$t->write_conf($t->main_conf("workers = 2") . <<"CONF");
[upstream a]
server = 127.0.0.1:$up->{port}

[route /a]
upstream = a
CONF
my $master = $t->start_ok;
my $port = $t->{port};

ok(TG::wait_for(3, sub { scalar($t->workers) == 2 }), 'workers = 2: two worker processes')
    or diag('workers: ' . join(' ', $t->workers));
my @w = $t->workers;
diag("master $master, workers @w");
for my $w (@w) {
    my ($rss, $hwm) = TG::rss($w);
    diag(sprintf('worker %d: VmRSS %.1f MB, threads %d', $w, ($rss // 0) / 1024, scalar TG::threads_of($w)));
}

sub burst {
    my ($n, $tag) = @_;
    my $ok = 0;
    my @f;
    for my $i (1 .. $n) {
        my $r = TG::http_get($port, "/a/$tag/$i", timeout => 5);
        if ($r && $r->{status} == 200) { $ok++ } else { push @f, TG::summary($r) }
    }
    diag("$tag failures: " . join("\n", @f[0 .. ($#f < 4 ? $#f : 4)])) if @f;
    return $ok;
}

is(burst(40, 'before'), 40, '40 requests succeed with two workers');

# SIGKILL one worker
my $victim = $w[0];
kill 'KILL', $victim;
my $t0 = time;
my $respawned = TG::wait_for(2, sub {
    my @n = $t->workers;
    @n == 2 && !grep { $_ == $victim } @n;
});
my $dt = time - $t0;
ok($respawned, sprintf('killed worker %d replaced by a new one within 2 s (%.2f s)', $victim, $dt))
    or diag('workers now: ' . join(' ', $t->workers));
ok(!TG::alive($victim), 'the killed worker is gone (reaped by the master)');
ok(TG::alive($master), 'master still running');
is(burst(40, 'after'), 40, '40 requests succeed after the respawn');

# kill both, one after the other
for my $v ($t->workers) { kill 'KILL', $v; sleep 0.2 }
ok(TG::wait_for(3, sub { scalar($t->workers) == 2 }), 'both workers killed: two new ones within 3 s');
is(burst(20, 'after-both'), 20, '20 requests succeed after both were respawned');

ok($t->stop(5), 'QUIT stops master and workers');

done_testing();
