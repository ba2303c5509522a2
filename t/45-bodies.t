#!/usr/bin/perl
# 100 MB up and down, streamed by both ends, checksums compared; the worker's
# memory (VmRSS/VmHWM) is sampled during the transfers and must stay bounded.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use Time::HiRes qw(time sleep);
use TG;

my $SIZE   = 100 * 1024 * 1024;
my $HWM_MB = 64;

my $up = TG::mock_upstream(name => 'a');
my $t = TG->new('45-bodies');
$t->write_conf($t->main_conf("client_max_body_size = 200m") . $t->service_a_conf($up));
$t->start_ok;
my $port = $t->{port};
my ($worker) = $t->workers;
ok($worker, "worker pid found ($t->{pid} -> " . ($worker // 'none') . ')');
my ($rss0, $hwm0) = TG::rss($worker // 0);
diag(sprintf('worker %s at start: VmRSS %.1f MB, VmHWM %.1f MB', $worker // '?', ($rss0 // 0) / 1024, ($hwm0 // 0) / 1024));

my ($max_rss, $max_hwm) = (0, 0);
my $last_sample = 0;
sub sample {
    return if time - $last_sample < 0.1 || !$worker;
    $last_sample = time;
    my ($rss, $hwm) = TG::rss($worker);
    return unless defined $rss;
    $max_rss = $rss if $rss > $max_rss;
    $max_hwm = $hwm if $hwm > $max_hwm;
}

# 100 MB upload with Content-Length, streamed
my $c = TG::Conn->new($port);
my $t0 = time;
$c->write("POST /service-a/upload HTTP/1.1\r\nHost: tg.test\r\nContent-Length: $SIZE\r\n"
        . "Content-Type: application/octet-stream\r\n\r\n");
my $sent = 0;
TG::gen_stream($SIZE, sub {
    my $n = $c->write($_[0], 20);
    $sent += $n;
    sample();
    return $n == length $_[0] ? 1 : undef;
}, 256 * 1024);
is($sent, $SIZE, 'client sent all 100 MB') or diag("sent $sent; write error: " . ($c->{write_error} // 'timeout'));
my $r = $c->read_response(timeout => 60, progress => \&sample);
my $dt = time - $t0;
my $e = TG::parse_echo($r && $r->{body});
is($r && $r->{status}, 200, '100 MB upload answered 200') or diag(TG::summary($r));
is($e && $e->{body_len}, $SIZE, 'upstream received 100 MB');
is($e && $e->{body_md5}, TG::gen_md5($SIZE), 'upstream checksum of the upload matches');
sample();
diag(sprintf('upload: %.1f s (%.0f MB/s); worker max VmRSS %.1f MB, VmHWM %.1f MB',
             $dt, 100 / ($dt || 1), $max_rss / 1024, $max_hwm / 1024));
ok($max_hwm, 'worker VmHWM measured during the upload');
cmp_ok($max_hwm, '<', $HWM_MB * 1024, "worker VmHWM stays under $HWM_MB MB during the upload")
    or diag("VmHWM $max_hwm kB");

# 100 MB download, streamed by the upstream, checksum at the client
$t0 = time;
$r = TG::http_get($port, "/service-a/download?len=$SIZE", sink => 1, timeout => 60, progress => \&sample);
$dt = time - $t0;
is($r && $r->{status}, 200, '100 MB download answered 200') or diag(TG::summary($r) . ' ' . ($TG::last_error // ''));
is($r && $r->{body_len}, $SIZE, 'client received 100 MB');
is($r && $r->{body_md5}, TG::gen_md5($SIZE), 'checksum of the download matches');
sample();
diag(sprintf('download: %.1f s (%.0f MB/s); worker max VmRSS %.1f MB, VmHWM %.1f MB',
             $dt, 100 / ($dt || 1), $max_rss / 1024, $max_hwm / 1024));
ok($max_hwm, 'worker VmHWM measured during the download');
cmp_ok($max_hwm, '<', $HWM_MB * 1024, "worker VmHWM stays under $HWM_MB MB during the download");

# 20 MB chunked download
my $n = 20 * 1024 * 1024;
$r = TG::http_get($port, "/service-a/chunked?len=$n&chunked=1", sink => 1, timeout => 30, progress => \&sample);
is($r && $r->{body_md5}, TG::gen_md5($n), '20 MB chunked download checksum');

# 20 MB chunked upload
$c = TG::Conn->new($port);
$c->write("PUT /service-a/chunked-up HTTP/1.1\r\nHost: tg.test\r\nTransfer-Encoding: chunked\r\n\r\n");
$sent = 0;
TG::gen_stream($n, sub {
    my $d = sprintf("%x\r\n", length $_[0]) . $_[0] . "\r\n";
    my $w = $c->write($d, 20);
    sample();
    return $w == length $d ? 1 : undef;
}, 100000);
$c->write("0\r\n\r\n");
$r = $c->read_response(timeout => 30, progress => \&sample);
$e = TG::parse_echo($r && $r->{body});
is($e && $e->{body_md5}, TG::gen_md5($n), '20 MB chunked upload checksum at the upstream');

# The smallest proxy_buffer_size: one read of the client can fill the
# upstream's output to the bound in a single round. The body must still go
# through (the bound stops reading only while the upstream really lags).
{
    my $t4 = TG->new('45-bodies-4k');
    $t4->write_conf($t4->main_conf("client_max_body_size = 200m\nproxy_buffer_size = 4k") . <<"CONF");
[upstream service-a]
server = 127.0.0.1:$up->{port}

[route /service-a]
upstream = service-a
CONF
    $t4->start_ok;
    my $m = 8 * 1024 * 1024;
    my $c4 = TG::Conn->new($t4->{port});
    $c4->write("POST /service-a/upload HTTP/1.1\r\nHost: tg.test\r\nContent-Length: $m\r\n\r\n");
    my $s4 = 0;
    TG::gen_stream($m, sub {
        my $w = $c4->write($_[0], 10);
        $s4 += $w;
        return $w == length $_[0] ? 1 : undef;
    }, 256 * 1024);
    is($s4, $m, 'proxy_buffer_size = 4k: client sent all 8 MB');
    my $r4 = $c4->read_response(timeout => 15);
    my $e4 = TG::parse_echo($r4 && $r4->{body});
    is($e4 && $e4->{body_md5}, TG::gen_md5($m), 'proxy_buffer_size = 4k: 8 MB upload checksum at the upstream')
        or diag(TG::summary($r4));
    $r4 = TG::http_get($t4->{port}, "/service-a/download?len=$m", sink => 1, timeout => 15);
    is($r4 && $r4->{body_md5}, TG::gen_md5($m), 'proxy_buffer_size = 4k: 8 MB download checksum');
    $t4->stop;
}

my ($rss1, $hwm1) = TG::rss($worker // 0);
diag(sprintf('worker at end: VmRSS %.1f MB, VmHWM %.1f MB (samples: max VmRSS %.1f MB)',
             ($rss1 // 0) / 1024, ($hwm1 // 0) / 1024, $max_rss / 1024));
ok(($hwm1 // 0) < $HWM_MB * 1024, "worker VmHWM at the end under $HWM_MB MB");

done_testing();
