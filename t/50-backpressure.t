#!/usr/bin/perl
# Backpressure: a client reading a 50 MB response slowly must throttle the
# upstream (its bytes written stay far below the total) and the proxy must
# not buffer the response (worker RSS bounded); the rest then arrives intact.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use TG;

my $SIZE = 50 * 1024 * 1024;

# small socket buffers on the outer ends keep the kernel's share small, so
# what is left is what the proxy itself holds
my $up = TG::mock_upstream(name => 'a', sndbuf => 65536);
my $t = TG->new('50-backpressure');
$t->write_conf($t->main_conf("proxy_buffer_size = 64k") . <<"CONF");
[upstream service-a]
server = 127.0.0.1:$up->{port}

[route /service-a]
upstream = service-a
CONF
$t->start_ok;
my ($worker) = $t->workers;
ok($worker, 'worker found');
my ($rss0) = TG::rss($worker // 0);
$rss0 //= 0;

my $c = TG::Conn->new($t->{port}, rcvbuf => 65536);
$c->write("GET /service-a/big?len=$SIZE HTTP/1.1\r\nHost: tg.test\r\nConnection: close\r\n\r\n");

# slow phase: 64 KB every 50 ms for 3 s
my ($got, $max_rss) = (0, 0);
my $md5 = Digest::MD5->new;
my $head;
my $end = time + 3;
while (time < $end) {
    $c->fill(0.05) if length($c->{buf}) < 65536;
    if (!defined $head) {
        my $i = index($c->{buf}, "\r\n\r\n");
        $head = substr($c->{buf}, 0, $i + 4, '') if $i >= 0;
    }
    if (defined $head && length $c->{buf}) {
        my $n = length($c->{buf}) < 65536 ? length($c->{buf}) : 65536;
        my $p = substr($c->{buf}, 0, $n, '');
        $md5->add($p);
        $got += $n;
    }
    my ($rss) = TG::rss($worker // 0);
    $max_rss = $rss if ($rss // 0) > $max_rss;
    sleep 0.05;
    last if $c->{eof};
}
my $written = $up->stats->{bytes_out};
my $buffered = length $c->{buf};
like($head // '', qr{^HTTP/1\.1 200}, 'response headers arrived');
diag(sprintf('slow phase: client read %.1f MB (+%.1f MB in its buffer), upstream wrote %.1f MB of %d MB; '
           . 'worker VmRSS %.1f MB at start, max %.1f MB',
             $got / 1048576, $buffered / 1048576, $written / 1048576, $SIZE / 1048576,
             $rss0 / 1024, $max_rss / 1024));
ok($written > 0, 'upstream started writing');
ok($written < $SIZE / 2, 'upstream is throttled: wrote less than half of 50 MB while the client reads slowly')
    or diag("upstream wrote $written bytes");
ok($written - $got < 40 * 1048576, 'less than 40 MB in flight between upstream and client');
ok($max_rss - $rss0 < 16 * 1024, 'worker VmRSS grew by less than 16 MB during the slow read')
    or diag(sprintf('VmRSS grew by %.1f MB', ($max_rss - $rss0) / 1024));

# fast phase: read the rest
$end = time + 60;
while (time < $end) {
    if (!defined $head) {
        my $i = index($c->{buf}, "\r\n\r\n");
        $head = substr($c->{buf}, 0, $i + 4, '') if $i >= 0;
    }
    if (defined $head && length $c->{buf}) {
        $got += length $c->{buf};
        $md5->add(substr($c->{buf}, 0, length $c->{buf}, ''));
    }
    last if $c->{eof} || $got >= $SIZE;
    $c->fill(0.5);
}
is($got, $SIZE, 'client got all 50 MB');
is($md5->hexdigest, TG::gen_md5($SIZE), 'checksum matches');
my ($rss1, $hwm1) = TG::rss($worker // 0);
diag(sprintf('worker at end: VmRSS %.1f MB, VmHWM %.1f MB', ($rss1 // 0) / 1024, ($hwm1 // 0) / 1024));
ok(($hwm1 // 0) < 64 * 1024, 'worker VmHWM under 64 MB');

done_testing();
