#!/usr/bin/perl
# Status page: JSON and Prometheus counters summed over two workers match
# the requests sent (200 / 404 / 502, by route and status class, latency
# histograms, upstream failures, connections, sampling), survive a HUP
# reload; allow (403), a dedicated status listener, -T and bad settings.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use JSON::PP ();
use Time::HiRes qw(sleep);
use TG;
TG::need_modules(qw(status access_log));

my $up = TG::mock_upstream(name => 'a');
my ($dead, $dead_sock) = TG::refused_port();
my $t = TG->new('80-status');
my $port = $t->{port};

sub conf {
    my ($status) = @_;
    return $t->main_conf("workers = 2\naccess_log = off") . <<"CONF";
[upstream up-a]
server = 127.0.0.1:$up->{port}

[upstream dead]
server = 127.0.0.1:$dead

[route /svc-a]
upstream = up-a

[route /dead]
upstream = dead

$status
CONF
}

my $status_requests = 0;

# GET on the status page. On a loopback listener it answers only requests
# whose Host is a loopback name (DNS rebinding; t/82 tests that), so not
# the tg.test that TG::http_get sends by default.
sub sget {
    my ($p, $path, %o) = @_;
    return TG::http_get($p, $path, host => "localhost:$p", %o);
}

sub status_json {
    my ($p) = @_;
    my $r = sget($p // $port, '/_status');
    $status_requests++;
    return undef unless $r && $r->{status} == 200;
    my $d = eval { JSON::PP::decode_json($r->{body}) };
    diag("bad JSON: $@") unless $d;
    return $d;
}

# name{labels} value -> { 'name{labels}' => value }, plus the raw lines
sub status_prom {
    my ($p, $path) = @_;
    my $r = sget($p // $port, $path // '/_status/metrics');
    $status_requests++;
    return (undef, $r) unless $r && $r->{status} == 200;
    my %m;
    for my $l (split /\n/, $r->{body}) {
        next if $l =~ /^#/ || $l eq '';
        $l =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/
            or do { diag("bad exposition line: $l"); next };
        $m{$1} = $2;
    }
    return (\%m, $r);
}

sub route_of {
    my ($d, $name) = @_;
    my ($x) = grep { $_->{route} eq $name } @{ $d->{routes} };
    return $x;
}

$t->write_conf(conf("[status]\nlocation = /_status\n"));

# -T shows the effective [status]
{
    my ($rc, $out) = $t->cli('-T');
    is($rc, 0, '-T exits 0');
    like($out, qr/^\[status\]\nlocation = \/_status\nallow = 127\.0\.0\.1\/32\nallow = ::1\/128\n/m,
         '-T prints [status] with the default allow list');
}

my $master = $t->start_ok;

# known traffic: 7 x 200 and 2 x 404 from upstream a, 4 x 404 without a
# route, 3 x 502 from a refused upstream
my %sent = (a200 => 7, a404 => 2, none404 => 4, dead502 => 3);
my $bad = 0;
for (1 .. $sent{a200}) {
    my $r = TG::http_get($port, "/svc-a/ok$_");
    $bad++ unless $r && $r->{status} == 200;
}
for (1 .. $sent{a404}) {
    my $r = TG::http_get($port, "/svc-a/missing?status=404");
    $bad++ unless $r && $r->{status} == 404;
}
for (1 .. $sent{none404}) {
    my $r = TG::http_get($port, "/nowhere/$_");
    $bad++ unless $r && $r->{status} == 404;
}
for (1 .. $sent{dead502}) {
    my $r = TG::http_get($port, "/dead/$_");
    $bad++ unless $r && $r->{status} == 502;
}
is($bad, 0, 'the traffic got the expected answers');
my $total = 0;
$total += $_ for values %sent;

# other workers copy connection counts once a second
sleep 1.3;

my $r = sget($port, '/_status');
$status_requests++;
is($r && $r->{status}, 200, 'GET /_status: 200');
is(TG::hdr($r, 'Content-Type'), 'application/json', 'JSON Content-Type');
is(TG::hdr($r, 'Cache-Control'), 'no-store', 'Cache-Control: no-store');
ok(TG::hdr($r, 'X-Trace-ID'), 'X-Trace-ID on the status response');
is(TG::hdr($r, 'Content-Length'), length($r->{body}), 'Content-Length matches the body');
my $d = eval { JSON::PP::decode_json($r->{body}) };
ok($d, 'the body is JSON') or diag($@);
$d //= { routes => [], upstreams => [] };

is($d->{workers}, 2, 'two workers count into the zone');
my $a = route_of($d, '/svc-a') // {};
my $dr = route_of($d, '/dead') // {};
my $none = route_of($d, '(none)') // {};
is($a->{status}{'2xx'}, $sent{a200}, 'route /svc-a: 2xx');
is($a->{status}{'4xx'}, $sent{a404}, 'route /svc-a: 4xx');
is($a->{requests}, $sent{a200} + $sent{a404}, 'route /svc-a: requests');
is($dr->{status}{'5xx'}, $sent{dead502}, 'route /dead: 5xx');
is($none->{status}{'4xx'}, $sent{none404}, 'no route: 4xx');
is($none->{status}{'2xx'}, $status_requests - 1,
   'no route: 2xx are the earlier status requests');
is($d->{requests}{total}, $total + $status_requests - 1,
   'requests total = traffic + earlier status requests');
is($d->{requests}{'5xx'}, $sent{dead502}, 'requests 5xx');

my ($dead_srv) = grep { $_->{upstream} eq 'dead' } @{ $d->{upstreams} };
is($dead_srv && $dead_srv->{failures}, $sent{dead502}, 'upstream dead: one failure per 502');
my ($a_srv) = grep { $_->{upstream} eq 'up-a' } @{ $d->{upstreams} };
is($a_srv && $a_srv->{failures}, 0, 'upstream up-a: no failure');

my $c = $d->{connections} // {};
cmp_ok($c->{accepted} // 0, '>=', $total + $status_requests,
       'connections accepted >= one per request');
is(($c->{closed} // 0) + ($c->{active} // 0), $c->{accepted},
   'accepted = closed + active');
cmp_ok($c->{active} // 0, '>=', 1, 'at least the status connection is active');

is(($d->{trace}{sampled} // 0) + ($d->{trace}{unsampled} // 0),
   $d->{requests}{total}, 'sampled + unsampled = requests');
my $have_otlp = grep { $_ eq 'otlp' } TG::modules();
SKIP: {
    skip 'built without the otlp module: no exporter counters', 6 unless $have_otlp;
    for my $k (qw(queued exported retried rejected)) {
        ok(defined $d->{exporter}{$k}, "exporter.$k present");
    }
    ok(defined $d->{exporter}{dropped}{queue_full}, 'exporter.dropped by reason: queue_full');
    ok(defined $d->{exporter}{dropped}{export_failed}, 'exporter.dropped by reason: export_failed');
}

# histogram: cumulative, +Inf = count = requests of the route
{
    my $h = $a->{latency_ms} // { buckets => [] };
    my @c = map { $_->{count} } @{ $h->{buckets} };
    my $mono = 1;
    for (1 .. $#c) { $mono = 0 if $c[$_] < $c[$_ - 1] }
    ok($mono, 'JSON buckets are cumulative');
    is(scalar(@c), 14, 'JSON buckets: 14 of them');
    is($c[-1], $a->{requests}, 'JSON +Inf bucket = requests');
    is($h->{count}, $a->{requests}, 'JSON count = requests');
}

# Prometheus text
my ($m, $pr) = status_prom();
ok($m, 'GET /_status/metrics: 200') or diag(TG::summary($pr));
$m //= {};
like(TG::hdr($pr, 'Content-Type') // '', qr{^text/plain; version=0\.0\.4}, 'Prometheus Content-Type');
like($pr->{body}, qr/^# TYPE tracegate_requests_total counter$/m, 'TYPE line for requests');
like($pr->{body}, qr/^# HELP tracegate_request_duration_seconds /m, 'HELP line for the histogram');
is($m->{'tracegate_requests_total{route="/svc-a",code="2xx"}'}, $sent{a200}, 'prom: /svc-a 2xx');
is($m->{'tracegate_requests_total{route="/svc-a",code="4xx"}'}, $sent{a404}, 'prom: /svc-a 4xx');
is($m->{'tracegate_requests_total{route="/dead",code="5xx"}'}, $sent{dead502}, 'prom: /dead 5xx');
is($m->{'tracegate_requests_total{route="(none)",code="4xx"}'}, $sent{none404}, 'prom: no route 4xx');
is($m->{'tracegate_upstream_failures_total{upstream="dead",server="127.0.0.1:' . $dead . '"}'},
   $sent{dead502}, 'prom: upstream failures');
SKIP: {
    skip 'built without the otlp module', 1 unless $have_otlp;
    ok(defined $m->{'tracegate_exporter_spans_dropped_total{reason="queue_full"}'},
       'prom: exporter drops by reason');
}
cmp_ok($m->{tracegate_connections_accepted_total} // 0, '>=', $total, 'prom: connections accepted');
for my $route ('/svc-a', '/dead', '(none)') {
    my @b;
    for my $le (qw(0.001 0.002 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf)) {
        push @b, $m->{"tracegate_request_duration_seconds_bucket{route=\"$route\",le=\"$le\"}"};
    }
    my $mono = !grep { !defined } @b;
    for (1 .. $#b) { $mono = 0 if $mono && $b[$_] < $b[$_ - 1] }
    ok($mono, "prom: $route buckets present and cumulative");
    my $count = $m->{"tracegate_request_duration_seconds_count{route=\"$route\"}"};
    is($b[-1], $count, "prom: $route +Inf bucket = _count");
    my $req = 0;
    for my $cl (qw(1xx 2xx 3xx 4xx 5xx)) {
        $req += $m->{"tracegate_requests_total{route=\"$route\",code=\"$cl\"}"} // 0;
    }
    is($count, $req, "prom: $route _count = requests_total");
    like($m->{"tracegate_request_duration_seconds_sum{route=\"$route\"}"} // '',
         qr/^\d+\.\d{6}$/, "prom: $route _sum in seconds");
}

# other answers of the location
is(sget($port, '/_status/json')->{status}, 200, '/_status/json: 200');
$status_requests++;
is(sget($port, '/_status/nothing')->{status}, 404, 'unknown status subpath: 404');
my $post = sget($port, '/_status', method => 'POST', body => 'x');
is($post->{status}, 405, 'POST: 405');
is(TG::hdr($post, 'Allow'), 'GET, HEAD', '405 says Allow: GET, HEAD');
my $head = sget($port, '/_status/metrics', method => 'HEAD');
is($head->{status}, 200, 'HEAD /_status/metrics: 200');
is($head->{body_len} // 0, 0, 'HEAD: no body');
my $r2 = TG::http_get($port, '/_statusx');
is($r2->{status}, 404, '/_statusx is not the status page');
is($r2->{body}, $t->html('404.html'), '/_statusx falls through to the 404 page');

# keep-alive: two status requests on one connection
{
    my $kc = TG::Conn->new($port);
    my $k1 = TG::request_on($kc, '/_status', keepalive => 1, host => "localhost:$port");
    my $k2 = TG::request_on($kc, '/_status/metrics', keepalive => 1, host => "localhost:$port");
    is($k1 && $k1->{status}, 200, 'two status requests on one keep-alive connection: the first');
    is($k2 && $k2->{status}, 200, 'two status requests on one keep-alive connection: the second');
    $kc->close;
}

# counters survive a HUP reload
{
    my $before = status_json();
    my $b_a = route_of($before, '/svc-a') // {};
    my @w0 = $t->workers;
    kill 'HUP', $master;
    my $replaced = TG::wait_for(5, sub {
        my @w = $t->workers;
        @w == 2 && !grep { my $x = $_; grep { $_ == $x } @w0 } @w;
    }, 0.1);
    ok($replaced, 'HUP: both workers replaced');
    for (1 .. 2) { TG::http_get($port, "/svc-a/after$_") }
    my $after = status_json();
    my $a2 = route_of($after, '/svc-a') // {};
    is($a2->{status}{'2xx'}, ($b_a->{status}{'2xx'} // 0) + 2,
       'HUP: /svc-a 2xx kept and counts on');
    my ($ds) = grep { $_->{upstream} eq 'dead' } @{ $after->{upstreams} // [] };
    is($ds && $ds->{failures}, $sent{dead502}, 'HUP: upstream failures kept');
    cmp_ok($after->{connections}{accepted} // 0, '>=', $before->{connections}{accepted} // 0,
           'HUP: connections accepted kept');
    is($after->{workers}, 2, 'HUP: two live workers after the old ones left');
}
$t->stop;

# allow: 127.0.0.1 is not in the list -> 403
{
    $t->write_conf(conf("[status]\nallow = 10.0.0.0/8\nallow = ::1\n"));
    $t->start_ok;
    my $f = TG::http_get($port, '/_status');
    is($f && $f->{status}, 403, 'client outside allow: 403');
    is(TG::http_get($port, '/_status/metrics')->{status}, 403, 'metrics outside allow: 403');
    is(TG::http_get($port, '/svc-a/x')->{status}, 200, 'routes still served');
    $t->stop;
}

# a status listener of its own: the page is served only there
{
    my $sp = TG::free_port();
    $t->write_conf(conf("[status]\nlocation = /\nlisten = 127.0.0.1:$sp\nallow = all\n"));
    $t->start_ok;
    ok(TG::wait_for(3, sub { TG::port_accepts($sp, 0.2) }), 'status listener accepts');
    my ($sm, $sr) = status_prom($sp, '/metrics');
    ok(exists(($sm || {})->{tracegate_connections_accepted_total}), 'GET :status/metrics: Prometheus text')
        or diag(TG::summary($sr));
    my $sj = sget($sp, '/');
    is($sj && $sj->{status}, 200, 'GET :status/: 200');
    ok(eval { JSON::PP::decode_json(($sj || {})->{body}) }, 'GET :status/: JSON');
    is(sget($sp, '/svc-a/x')->{status}, 404, 'routes are not served on the status listener');
    my $mr = TG::http_get($port, '/metrics');
    is($mr->{status}, 404, 'the page is not served on the main listener');
    is($mr->{body}, $t->html('404.html'), 'main listener: the usual 404 page');
    is(TG::http_get($port, '/svc-a/x')->{status}, 200, 'main listener still routes');
    $t->stop;
}

# off when the section is absent
{
    $t->write_conf(conf(''));
    $t->start_ok;
    my $o = TG::http_get($port, '/_status');
    is($o->{status}, 404, 'no [status] section: /_status is 404');
    my ($rc, $out) = $t->cli('-T');
    like($out, qr/^\[status\]\nlocation = off$/m, '-T: location = off');
    $t->stop;
}

# configuration errors name the file and line, or the setting
{
    my $text = conf("[status]\nallow = nonsense\n");
    $t->write_conf($text);
    my $line = TG::line_of($text, qr/^allow = nonsense/);
    my ($rc, $out, $err) = $t->cli('-t');
    isnt($rc, 0, 'bad allow: -t fails');
    like($err, qr/\Q$t->{conf}\E:$line: .*allow/, 'bad allow: FILE:LINE in the error');

    $t->write_conf(conf("[status]\nlisten = 127.0.0.1:$port\n"));
    ($rc, $out, $err) = $t->cli('-t');
    isnt($rc, 0, 'status listen = a [main] listen: -t fails');
    like($err, qr/needs one of its own/, 'status listen clash explained');

    $t->write_conf(conf("[status]\nlocation = /\n"));
    ($rc, $out, $err) = $t->cli('-t');
    isnt($rc, 0, 'location = / without a status listener: -t fails');
}

done_testing();
