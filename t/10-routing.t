#!/usr/bin/perl
# Routing: prefixes at segment boundaries, longest prefix, strip_prefix,
# path normalisation, 404 page, /health, forwarded headers, hop-by-hop removal.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use TG;

my %up = map { $_ => TG::mock_upstream(name => $_, handler => \&handler) } qw(a a2 b c);

# /resp-hop: the upstream sends hop-by-hop response headers
sub handler {
    my ($req) = @_;
    return undef unless $req->{path} =~ m{/resp-hop$};
    return { headers => [['Connection', 'X-Upstream-Hop'], ['X-Upstream-Hop', 'secret'],
                         ['Keep-Alive', 'timeout=5, max=77'], ['X-End-To-End', 'kept'],
                         ['Proxy-Connection', 'keep-alive']],
             body => "resp-hop\n" };
}

my $t = TG->new('10-routing');
$t->write_conf($t->main_conf . <<"CONF");
[upstream service-a]
server = 127.0.0.1:$up{a}{port}

[upstream service-a-v2]
server = 127.0.0.1:$up{a2}{port}

[upstream service-b]
server = 127.0.0.1:$up{b}{port}

[upstream service-c]
server = 127.0.0.1:$up{c}{port}

[route /service-a]
upstream = service-a

[route /service-a/v2]
upstream = service-a-v2

[route /service-b]
upstream = service-b

[route /service-c]
upstream = service-c
strip_prefix = on
CONF
$t->start_ok;
my $port = $t->{port};

# path => [upstream, uri the upstream must see]
my @cases = (
    ['/service-a',                 'a',  '/service-a'],
    ['/service-a/',                'a',  '/service-a/'],
    ['/service-a/x/y',             'a',  '/service-a/x/y'],
    ['/service-a?x=1',             'a',  '/service-a?x=1'],
    ['/service-b/items/42',        'b',  '/service-b/items/42'],
    ['/service-c/z',               'c',  '/z'],
    ['/service-c',                 'c',  '/'],
    ['/service-c/',                'c',  '/'],
    ['/service-c?q=1',             'c',  '/?q=1'],
    ['/service-c/deep/er?q=1',     'c',  '/deep/er?q=1'],
    ['/service-a/v2',              'a2', '/service-a/v2'],
    ['/service-a/v2/thing',        'a2', '/service-a/v2/thing'],
    ['/service-a/v2x',             'a',  '/service-a/v2x'],
    ['/service-a/v',               'a',  '/service-a/v'],
    ['/service-a/../service-b/k',  'b',  '/service-b/k'],
    ['/service-a/./x',             'a',  '/service-a/x'],
    ['/service-a//x///y',          'a',  '/service-a/x/y'],
    ['/service-b/p/../q',          'b',  '/service-b/q'],
    ['/service-a/q?a=1&b=two%20three&c&d=%2F..%2F', 'a', '/service-a/q?a=1&b=two%20three&c&d=%2F..%2F'],
);
for my $c (@cases) {
    my ($path, $name, $uri) = @$c;
    my $r = TG::http_get($port, $path);
    my $e = TG::parse_echo($r && $r->{body});
    is($r && $r->{status}, 200, "$path answered")
        or diag("got: " . TG::summary($r));
    is($e && $e->{upstream}, $name, "$path is routed to upstream $name");
    is($e && $e->{uri}, $uri, "$path reaches the upstream as $uri");
}

# unmatched paths: 404 with the 404 page, no upstream touched
my %before = map { $_ => $up{$_}->stats->{requests} } keys %up;
my $page404 = $t->html('404.html');
for my $path ('/service-abc', '/service-abc/x', '/service-a-b', '/nothing-here', '/service', '/SERVICE-A/x') {
    my $r = TG::http_get($port, $path);
    is($r && $r->{status}, 404, "$path is 404") or diag(TG::summary($r));
    is($r && $r->{body}, $page404, "$path answers with html/404.html");
    is(TG::hdr($r, 'Server'), 'tracegate', "$path 404 carries Server: tracegate");
}
is_deeply({ map { $_ => $up{$_}->stats->{requests} } keys %up }, \%before,
          'no upstream saw the unmatched requests');

# /health
my $r = TG::http_get($port, '/health');
is($r && $r->{status}, 200, '/health is 200');
is($r && $r->{body}, "ok\n", '/health body');
is_deeply({ map { $_ => $up{$_}->stats->{requests} } keys %up }, \%before,
          '/health touches no upstream');

# escaping above the root
for my $path ('/..', '/../service-a/x', '/service-a/../../x', '/service-a/../..') {
    my $c = TG::Conn->new($port);
    $c->write("GET $path HTTP/1.1\r\nHost: tg.test\r\n\r\n");
    my $r = $c->read_response(timeout => 5);
    is($r && $r->{status}, 400, "$path (above the root) is 400") or diag(TG::summary($r));
}
is_deeply({ map { $_ => $up{$_}->stats->{requests} } keys %up }, \%before,
          'no upstream saw the escaping requests');

# forwarded headers and Host
$r = TG::http_get($port, '/service-a/fwd', host => 'shop.example:8443');
my $e = TG::parse_echo($r && $r->{body});
is_deeply($e && $e->{h}{host}, ['shop.example:8443'], 'Host is passed through unchanged');
is_deeply($e && $e->{h}{'x-forwarded-for'}, ['127.0.0.1'], 'X-Forwarded-For: 127.0.0.1 added');
is_deeply($e && $e->{h}{'x-forwarded-proto'}, ['http'], 'X-Forwarded-Proto: http');
is_deeply($e && $e->{h}{'x-forwarded-host'}, ['shop.example:8443'], 'X-Forwarded-Host is the client Host');
is($e && $e->{version}, 'HTTP/1.1', 'forwarded as HTTP/1.1');

$r = TG::http_get($port, '/service-a/fwd2', headers => [['X-Forwarded-For', '10.1.2.3, 10.4.5.6']]);
$e = TG::parse_echo($r && $r->{body});
is(join(', ', @{ ($e && $e->{h}{'x-forwarded-for'}) || [] }), '10.1.2.3, 10.4.5.6, 127.0.0.1',
   'client IP appended to an incoming X-Forwarded-For list');

$r = TG::http_get($port, '/service-a/v10', version => '1.0');
$e = TG::parse_echo($r && $r->{body});
is($r && $r->{status}, 200, 'HTTP/1.0 request proxied');
is($e && $e->{version}, 'HTTP/1.1', 'HTTP/1.0 request forwarded as HTTP/1.1');
ok(($e || {})->{h}{host}, 'HTTP/1.1 request upstream has a Host header');

# hop-by-hop request headers
$r = TG::http_get($port, '/service-a/hop', keepalive => 1, headers =>
    "Connection: keep-alive, X-Drop-Me\r\nX-Drop-Me: 1\r\nKeep-Alive: timeout=9\r\n"
  . "Proxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\nUpgrade: h2c-foo\r\n"
  . "X-Keep-Me: yes\r\n");
$e = TG::parse_echo($r && $r->{body});
ok($e, 'request with hop-by-hop headers proxied') or diag(TG::summary($r));
for my $h ('x-drop-me', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'upgrade') {
    is($e ? $e->{h}{$h} : 'no echo', undef, "upstream did not see $h")
        or diag("$h: @{ $e->{h}{$h} }");
}
unlike(join(',', @{ ($e && $e->{h}{connection}) || [] }), qr/x-drop-me/i,
       'Connection sent upstream does not name X-Drop-Me');
is_deeply($e && $e->{h}{'x-keep-me'}, ['yes'], 'end-to-end header X-Keep-Me passed');

# hop-by-hop response headers
$r = TG::http_get($port, '/service-a/resp-hop');
is($r && $r->{status}, 200, 'response with hop-by-hop headers relayed');
is($r ? TG::hdr($r, 'X-Upstream-Hop') : 'no response', undef,
   'header named in the upstream Connection is removed');
is($r ? scalar(grep { /max=77/ } @{ $r->{h}{'keep-alive'} || [] }) : 'no response', 0,
   "upstream's Keep-Alive not relayed");
is($r ? TG::hdr($r, 'Proxy-Connection') : 'no response', undef, 'Proxy-Connection not relayed');
is(TG::hdr($r, 'X-End-To-End'), 'kept', 'end-to-end response header relayed');
is(TG::hdr($r, 'X-Upstream'), 'a', 'upstream response headers relayed');
is($r && $r->{body}, "resp-hop\n", 'body relayed');

done_testing();
