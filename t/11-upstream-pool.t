#!/usr/bin/perl
# Upstream pools: weighted round robin, a refused server is skipped and marked
# down for fail_timeout, backup servers, all servers down -> 502 + 50x page.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use TG;

my $w1 = TG::mock_upstream(name => 'w1');
my $w2 = TG::mock_upstream(name => 'w2');
my $a  = TG::mock_upstream(name => 'a');
my ($dead_port, $dead_sock) = TG::refused_port();       # refuses until we listen on it
my $p  = TG::mock_upstream(name => 'primary');
my $k  = TG::mock_upstream(name => 'backup');
my ($x1, $xs1) = TG::refused_port();
my ($x2, $xs2) = TG::refused_port();
my ($x3, $xs3) = TG::refused_port();

my $t = TG->new('11-upstream-pool');
$t->write_conf($t->main_conf . <<"CONF");
[upstream weighted]
server = 127.0.0.1:$w1->{port} weight=2
server = 127.0.0.1:$w2->{port} weight=1

[upstream flaky]
server = 127.0.0.1:$a->{port} max_fails=1 fail_timeout=1s
server = 127.0.0.1:$dead_port max_fails=1 fail_timeout=1s

[upstream withbackup]
server = 127.0.0.1:$p->{port} max_fails=1 fail_timeout=10s
server = 127.0.0.1:$k->{port} backup

[upstream alldown]
server = 127.0.0.1:$x1 max_fails=1 fail_timeout=10s
server = 127.0.0.1:$x2 max_fails=1 fail_timeout=10s
server = 127.0.0.1:$x3 backup

[route /weighted]
upstream = weighted

[route /flaky]
upstream = flaky

[route /backup]
upstream = withbackup

[route /down]
upstream = alldown
CONF
$t->start_ok;
my $port = $t->{port};

sub get_n {
    my ($path, $n) = @_;
    my (%by, @fail);
    for my $i (1 .. $n) {
        my $r = TG::http_get($port, "$path/$i");
        if ($r && $r->{status} == 200) { $by{ TG::hdr($r, 'X-Upstream') // '?' }++ }
        else { push @fail, "$path/$i: " . TG::summary($r) }
    }
    return (\%by, \@fail);
}

# weights 2:1
my ($by, $fail) = get_n('/weighted', 30);
is(scalar @$fail, 0, '30 requests to a weight 2:1 pool all succeed') or diag(join("\n", @$fail));
diag("weighted pool: w1=" . ($by->{w1} // 0) . " w2=" . ($by->{w2} // 0));
is($by->{w1} // 0, 20, 'weight=2 server got 20 of 30 requests');
is($by->{w2} // 0, 10, 'weight=1 server got 10 of 30 requests');

# a refused server is skipped (request retried on the next server) ...
($by, $fail) = get_n('/flaky', 6);
is(scalar @$fail, 0, 'with one server refusing, all 6 requests still get 200') or diag(join("\n", @$fail));
is($by->{a} // 0, 6, 'all 6 were answered by the live server');
my $t_fail = time;
like($t->error_log, qr/\Q127.0.0.1:$dead_port\E/, 'error log names the refused server');

# ... and marked down for fail_timeout (1 s): bring it to life and check
# that it gets no traffic until fail_timeout has passed
close $dead_sock;
my $revived = TG::mock_upstream(name => 'revived', port => $dead_port);
($by, $fail) = get_n('/flaky', 6);
my $elapsed = time - $t_fail;
is(scalar @$fail, 0, 'requests succeed while the server is marked down');
if ($elapsed < 0.8) {
    is($revived->stats->{conns}, 0,
       sprintf('server marked down after max_fails=1 gets no connection (%.2f s < fail_timeout)', $elapsed));
} else {
    diag(sprintf('too slow (%.2f s) to check the down period; skipped', $elapsed));
}
sleep(2.2 - (time - $t_fail)) if time - $t_fail < 2.2;   # whole seconds in some implementations
($by, $fail) = get_n('/flaky', 8);
is(scalar @$fail, 0, 'requests succeed after fail_timeout');
ok(($by->{revived} // 0) >= 1, 'after fail_timeout the server is tried again and serves')
    or diag("distribution: " . join(', ', map { "$_=$by->{$_}" } sort keys %$by));

# backup only when the primaries are down
($by, $fail) = get_n('/backup', 6);
is(scalar @$fail, 0, 'backup pool: 6 requests succeed');
is($by->{primary} // 0, 6, 'primary serves everything while it is up');
is($k->stats->{conns}, 0, 'backup server gets no connection while the primary is up');
$p->stop;
($by, $fail) = get_n('/backup', 4);
is(scalar @$fail, 0, 'primary down: requests still succeed') or diag(join("\n", @$fail));
is($by->{backup} // 0, 4, 'primary down: the backup serves them');

# everything down
my $page = $t->html('50x.html');
for my $i (1 .. 2) {
    my $t0 = time;
    my $r = TG::http_get($port, "/down/$i");
    is($r && $r->{status}, 502, "all servers down: 502 (#$i)") or diag(TG::summary($r));
    is($r && $r->{body}, $page, 'all servers down: html/50x.html body');
    is(TG::hdr($r, 'Server'), 'tracegate', '502 carries Server: tracegate');
    ok(time - $t0 < 3, 'the 502 is fast (refused connects)');
}

done_testing();
