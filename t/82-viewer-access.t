#!/usr/bin/perl
# Access to the admin pages: the trace viewer and its JSON API ([traces])
# and the status page ([status]). allow (default loopback; 403 otherwise,
# X-Forwarded-For never consulted, not even from a trusted_proxy), a
# [traces] listen of its own, the DNS-rebinding check (a Host that is not a
# loopback name gets 421 on a loopback listener), the -t warning about a
# page reachable from other hosts, -T and configuration errors.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use TG;
TG::need_modules(qw(traces status access_log));

my $up = TG::mock_upstream(name => 'a');
my $t = TG->new('82-viewer-access');
my $port = $t->{port};
my $root = "$TG::ROOT/html/traces";

# the viewer's paths: the page, its script, the API (list, one trace, stats)
my @VIEWER = ('/_traces/', '/_traces/traces.js', '/_traces/api/traces',
              '/_traces/api/traces?q=abc', '/_traces/api/stats',
              '/_traces/api/traces/' . ('0' x 31) . '1');

sub conf {
    my (%o) = @_;
    my $main = $o{main} // '';
    return $t->main_conf("access_log = off\n$main") . $t->service_a_conf($up)
         . "\n[traces]\nlocation = /_traces\nroot = $root\n"
         . ($o{traces} // '') . "\n"
         . (defined $o{status} ? "[status]\n$o{status}\n" : '');
}

# status of GET $path on $p with Host $host (default the address itself)
sub get {
    my ($p, $path, %o) = @_;
    my $r = TG::http_get($p, $path, host => $o{host} // "127.0.0.1:$p", %o);
    return $r ? $r->{status} : 'no answer';
}

# the status of each viewer path, "path=status" joined, for one is()
sub viewer_statuses {
    my ($p, %o) = @_;
    return join ' ', map { "$_=" . get($p, $_, %o) } @VIEWER;
}

sub expect_all {
    my ($want) = @_;
    # a trace id that is not stored is a 404 of the API itself
    return join ' ', map { my $s = m{/api/traces/0} && $want == 200 ? 404 : $want; "$_=$s" } @VIEWER;
}

# --- default allow: loopback clients see the viewer --------------------
$t->write_conf(conf(status => ''));
{
    my ($rc, $out) = $t->cli('-T');
    is($rc, 0, '-T exits 0');
    like($out, qr/^\[traces\]\nlocation = \/_traces\nallow = 127\.0\.0\.1\/32\nallow = ::1\/128\n; listen: served on the \[main\] listeners\n/m,
         '-T prints [traces] with the default allow list and no listen');
}
$t->start_ok;
is(get($port, '/service-a/x'), 200, 'a route answers');
is(viewer_statuses($port), expect_all(200), 'default allow: 127.0.0.1 sees the viewer and its API');
{
    my $r = TG::http_get($port, '/_traces/api/traces', host => "127.0.0.1:$port");
    my $j = $r && eval { JSON::PP::decode_json($r->{body}) };
    is(ref(($j || {})->{traces}), 'ARRAY', 'the API answers JSON');
}
is(get($port, '/_status'), 200, 'default allow: 127.0.0.1 sees the status page');
$t->stop;

# --- allow without 127.0.0.1: 403, X-Forwarded-For changes nothing -----
$t->write_conf(conf(traces => "allow = 10.0.0.0/8\nallow = ::1\n",
                    main => "trusted_proxy = 127.0.0.1\n"));
$t->start_ok;
is(viewer_statuses($port), expect_all(403), 'allow without 127.0.0.1: 403 on the page and the API');
is(viewer_statuses($port, headers => [[ 'X-Forwarded-For', '127.0.0.1' ]]), expect_all(403),
   'X-Forwarded-For: 127.0.0.1 is not consulted');
is(viewer_statuses($port, headers => [[ 'X-Forwarded-For', '10.1.2.3' ]]), expect_all(403),
   'X-Forwarded-For: 10.1.2.3 from a trusted proxy is not consulted either');
{
    my $r = TG::http_get($port, '/_traces/api/traces', host => "127.0.0.1:$port");
    unlike($r && $r->{body} // '', qr/"traces"/, '403: no trace data in the body');
    is(TG::hdr($r, 'Content-Type'), 'application/json', '403: a JSON error');
}
is(get($port, '/_traces'), 403, 'the redirect of the bare location is refused too');
is(get($port, '/_traces/', method => 'POST', body => 'x'), 403, 'a POST is refused before its 405');
is(get($port, '/service-a/x'), 200, 'routes are still served');
like($t->error_log, qr/traces: client 127\.0\.0\.1 is not allowed/, 'the refusal is logged');
$t->stop;

# --- allow = all ---------------------------------------------------------
$t->write_conf(conf(traces => "allow = 10.0.0.0/8\nallow = all\n"));
$t->start_ok;
is(viewer_statuses($port), expect_all(200), 'allow = all: served');
$t->stop;

# --- Host check on a loopback listener (DNS rebinding) -----------------
$t->write_conf(conf(status => "allow = all\n", traces => "allow = all\n"));
$t->start_ok;
for my $h ('evil.example', "evil.example:$port", 'localhost.evil.example',
           "127.0.0.1.evil.example:$port", 'localhostx', 'xlocalhost', '127.0.0.1:x',
           '[::2]', "[::1]x", '0.0.0.0', "10.0.0.1:$port", 'tg.test') {
    is(get($port, '/_traces/api/traces', host => $h), 421, "viewer API, Host: $h: 421");
    is(get($port, '/_status', host => $h), 421, "status, Host: $h: 421");
}
is(viewer_statuses($port, host => 'evil.example'), expect_all(421),
   'Host: evil.example: 421 on every viewer path');
for my $h ("localhost:$port", 'localhost', "LocalHost:$port", "127.0.0.1:$port",
           '127.0.0.1', "127.9.8.7:$port", "[::1]:$port", '[::1]',
           '[0:0:0:0:0:0:0:1]', "[::ffff:127.0.0.1]:$port",
           "viewer.localhost:$port", 'a.b.localhost') {
    is(get($port, '/_traces/api/traces', host => $h), 200, "viewer API, Host: $h: 200");
    is(get($port, '/_status', host => $h), 200, "status, Host: $h: 200");
}
is(viewer_statuses($port, host => "localhost:$port"), expect_all(200),
   'Host: localhost:PORT: 200 on every viewer path');
{
    # RFC 9112 3.2.2: the absolute-form authority is the host that counts
    my ($raw) = TG::raw_exchange($port,
        "GET http://evil.example:$port/_traces/api/traces HTTP/1.1\r\n"
      . "Host: localhost:$port\r\nConnection: close\r\n\r\n");
    like($raw, qr{^HTTP/1\.1 421 }, 'absolute-form http://evil.example/...: 421');
    ($raw) = TG::raw_exchange($port,
        "GET http://localhost:$port/_status HTTP/1.1\r\n"
      . "Host: evil.example\r\nConnection: close\r\n\r\n");
    like($raw, qr{^HTTP/1\.1 200 }, 'absolute-form http://localhost/...: 200');
    ($raw) = TG::raw_exchange($port, "GET /_traces/api/stats HTTP/1.0\r\n\r\n");
    like($raw, qr{^HTTP/1\.1 200 }, 'HTTP/1.0 without Host: 200 (browsers always send one)');
}
is(get($port, '/service-a/x', host => 'evil.example'), 200, 'routes ignore the Host check');
like($t->error_log, qr/traces: Host "evil\.example" from 127\.0\.0\.1 is not a loopback name/,
     'the refused Host is logged');
$t->stop;

# --- [traces] listen: the viewer is served there only ------------------
{
    my $vp = TG::free_port();
    $t->write_conf(conf(traces => "listen = 127.0.0.1:$vp\n", status => ''));
    my ($rc, $out) = $t->cli('-T');
    like($out, qr/^\[traces\]\nlocation = \/_traces\nallow = 127\.0\.0\.1\/32\nallow = ::1\/128\nlisten = 127\.0\.0\.1:$vp\n/m,
         '-T prints the traces listen');
    my ($main) = $out =~ /^\[main\]\n(.*?)\n\n/ms;
    unlike($main // '', qr/:$vp\b/, '-T: the viewer listener is not a [main] listen');
    $t->start_ok;
    ok(TG::wait_for(3, sub { TG::port_accepts($vp, 0.2) }), 'the viewer listener accepts');
    is(viewer_statuses($vp), expect_all(200), 'the viewer is served on its listener');
    my $r = TG::http_get($vp, '/service-a/x', host => "127.0.0.1:$vp");
    is($r && $r->{status}, 404, 'routes are not served on the viewer listener');
    is(get($vp, '/_status'), 404, 'nor the status page (it has no listener of its own)');
    is(get($vp, '/health'), 404, 'nor the health check');
    is(get($vp, '/elsewhere/82'), 404, 'nor anything else');
    is(viewer_statuses($vp, host => 'evil.example'), expect_all(421),
       'its Host check: 421 for evil.example');
    $r = TG::http_get($port, '/_traces/', host => "127.0.0.1:$port");
    is($r && $r->{status}, 404, '/_traces/ on the main listener: 404');
    is($r && $r->{body}, $t->html('404.html'), 'main listener: the usual 404 page (a route miss)');
    is(get($port, '/_traces/api/traces'), 404, 'the API is not on the main listener either');
    is(get($port, '/_status'), 200, 'the status page stays on the main listener');
    is(get($port, '/service-a/x'), 200, 'the main listener still routes');
    # the viewer's own requests are not stored as traces
    my $j = eval { JSON::PP::decode_json(TG::http_get($vp, '/_traces/api/traces?limit=1000',
                                                      host => "127.0.0.1:$vp")->{body}) };
    my @paths = map { $_->{root_path} } @{ $j->{traces} // [] };
    ok(scalar(grep { $_ eq '/service-a/x' } @paths), 'requests on the main listener are stored as traces')
        or diag("stored: @paths");
    ok(!grep({ $_ eq '/elsewhere/82' } @paths), 'requests on the viewer listener are not stored as traces')
        or diag("stored: @paths");
    $t->stop;

    # both pages with listeners of their own
    my $sp = TG::free_port();
    $t->write_conf(conf(traces => "listen = 127.0.0.1:$vp\n",
                        status => "listen = 127.0.0.1:$sp\n"));
    $t->start_ok;
    ok(TG::wait_for(3, sub { TG::port_accepts($sp, 0.2) }), 'the status listener accepts');
    is(get($vp, '/_traces/api/stats'), 200, 'viewer on its listener');
    is(get($sp, '/_status'), 200, 'status on its listener');
    is(get($sp, '/_traces/api/stats'), 404, 'no viewer on the status listener');
    is(get($vp, '/_status'), 404, 'no status on the viewer listener');
    is(get($port, '/_status'), 404, 'no status on the main listener');
    is(get($port, '/_traces/api/stats'), 404, 'no viewer on the main listener');
    $t->stop;

    # configuration errors
    $t->write_conf(conf(traces => "listen = 127.0.0.1:$port\n"));
    ($rc, $out, my $err) = $t->cli('-t');
    isnt($rc, 0, 'traces listen = a [main] listen: -t fails');
    like($err, qr/\[traces\] listen 127\.0\.0\.1:$port is also a \[main\] listen address/,
         'the clash is explained');
    $t->write_conf(conf(traces => "listen = 127.0.0.1:$vp\n", status => "listen = 127.0.0.1:$vp\n"));
    ($rc, $out, $err) = $t->cli('-t');
    isnt($rc, 0, 'traces listen = the status listen: -t fails');
    like($err, qr/\[traces\] listen 127\.0\.0\.1:$vp is also the \[status\] listen address/,
         'that clash is explained');
    $t->write_conf(conf(traces => "listen = 127.0.0.1:$vp extra\n"));
    ($rc, $out, $err) = $t->cli('-t');
    isnt($rc, 0, 'listen with an option: -t fails');
    like($err, qr/plain HTTP/, 'listen options: explained');
    my $text = conf(traces => "allow = nonsense\n");
    $t->write_conf($text);
    my $line = TG::line_of($text, qr/^allow = nonsense/);
    ($rc, $out, $err) = $t->cli('-t');
    isnt($rc, 0, 'bad allow: -t fails');
    like($err, qr/\Q$t->{conf}\E:$line: .*allow/, 'bad allow: FILE:LINE in the error');
    $t->write_conf($t->main_conf . "[traces]\nlisten = 127.0.0.1:$vp\n");
    ($rc, $out, $err) = $t->cli('-t');
    isnt($rc, 0, 'traces listen without a location: -t fails');
    like($err, qr/listen needs a location/, 'listen without location: explained');
}

# --- the -t warning: reachable from other hosts ------------------------
{
    my $any = "[main]\ndaemon = off\nlisten = 0.0.0.0:$port\n";
    my $lo = "[main]\ndaemon = off\nlisten = 127.0.0.1:$port\n";
    my $tr = "[traces]\nlocation = /_traces\nroot = $root\n";
    my $vp = TG::free_port();
    my @cases = (
        [ 'viewer on 0.0.0.0, allow = all', "$any$tr" . "allow = all\n", qr/\[traces\] the trace viewer can be reached from other hosts: listen 0\.0\.0\.0:$port /, 1 ],
        [ 'viewer on 0.0.0.0, default allow', "$any$tr", undef, 0 ],
        [ 'viewer on 0.0.0.0, allow = 127.0.0.0/8', "$any$tr" . "allow = 127.0.0.0/8\nallow = ::1\n", undef, 0 ],
        [ 'viewer on 127.0.0.1, allow = all', "$lo$tr" . "allow = all\n", undef, 0 ],
        [ 'viewer listen 0.0.0.0, allow = 10.0.0.0/8', "$lo$tr" . "allow = 10.0.0.0/8\nlisten = 0.0.0.0:$vp\n", qr/\[traces\] the trace viewer can be reached from other hosts: listen 0\.0\.0\.0:$vp /, 1 ],
        [ 'viewer listen 127.0.0.1 beside [main] 0.0.0.0, allow = all', "$any$tr" . "allow = all\nlisten = 127.0.0.1:$vp\n", undef, 0 ],
        [ 'status on 0.0.0.0, allow = all', "$any\[status]\nallow = all\n", qr/\[status\] the status page can be reached from other hosts: listen 0\.0\.0\.0:$port /, 1 ],
        [ 'status on 0.0.0.0, default allow', "$any\[status]\n", undef, 0 ],
        [ 'status on [::], allow = ::/0', "[main]\ndaemon = off\nlisten = [::]:$port\n[status]\nallow = ::/0\n", qr/\[status\] the status page can be reached/, 1 ],
    );
    for my $c (@cases) {
        my ($name, $text, $re, $warns) = @$c;
        $t->write_conf($text);
        my ($rc, $out, $err) = $t->cli('-t');
        is($rc, 0, "$name: -t succeeds");
        if ($warns) {
            like($err, qr/\[warn\] .*$re/, "$name: -t warns");
        } else {
            unlike($err, qr/can be reached from other hosts/, "$name: no warning");
        }
    }
}

done_testing();
