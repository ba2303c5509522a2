#!/usr/bin/perl
# Paths that upstreams may resolve to another place than the route we chose
# ([main] reject_ambiguous_paths, default on): a Tomcat-style upstream takes
# "..;" for "..", a %2f-decoding one takes "..%2f" for "../", some take "\"
# for "/". With the setting on they are a 400 and reach no upstream; with it
# off they stay on the routed upstream, forwarded as received.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use TG;

my %up = map { $_ => TG::mock_upstream(name => $_) } qw(a b);

sub conf {
    my ($t, $main) = @_;
    return $t->main_conf($main) . <<"CONF";
[upstream service-a]
server = 127.0.0.1:$up{a}{port}

[upstream service-b]
server = 127.0.0.1:$up{b}{port}

[route /service-a]
upstream = service-a

[route /service-b]
upstream = service-b
CONF
}

sub raw_get {
    my ($port, $target) = @_;
    my $c = TG::Conn->new($port) or return;
    $c->write("GET $target HTTP/1.1\r\nHost: gw.test\r\nConnection: close\r\n\r\n");
    my $r = $c->read_response(timeout => 5);
    $c->close;
    return $r;
}

my @ambiguous = (
    '/service-a/..;/service-b/x',
    '/service-a/..;jsessionid=1/service-b/x',
    '/service-a/.;/x',
    '/service-a/%2e%2e;/service-b/x',
    '/service-a/..%2fservice-b/x',
    '/service-a/..%2Fservice-b/x',
    '/service-a/x%2fy',
    '/service-a/..%5cservice-b/x',
    '/service-a/..%5Cservice-b/x',
    '/service-a/..\\service-b/x',
    '/service-a/x\\y',
);
my @fine = (
    ['/service-a/x;v=1',          '/service-a/x;v=1'],
    ['/service-a/x;a/y;b=..',     '/service-a/x;a/y;b=..'],
    ['/service-a/..x;/y',         '/service-a/..x;/y'],
    ['/service-a/%2e%2e/service-b/x', '/service-b/x'],
    ['/service-a/x?next=..%2f..%5c', '/service-a/x?next=..%2f..%5c'],
    ['/service-a/%25%32%66',      '/service-a/%25%32%66'],
);

my $t = TG->new('12-ambiguous-paths');
$t->write_conf(conf($t));
$t->start_ok;
my %before = map { $_ => $up{$_}->stats->{requests} } keys %up;
for my $path (@ambiguous) {
    my $r = raw_get($t->{port}, $path);
    is($r && $r->{status}, 400, "default: $path is 400") or diag(TG::summary($r));
    like(TG::hdr($r, 'Connection') // '', qr/close/i, "default: $path closes the connection");
}
is_deeply({ map { $_ => $up{$_}->stats->{requests} } keys %up }, \%before,
          'default: no upstream saw an ambiguous path');
for my $c (@fine) {
    my ($path, $uri) = @$c;
    my $r = raw_get($t->{port}, $path);
    my $e = TG::parse_echo($r && $r->{body});
    is($r && $r->{status}, 200, "default: $path is served") or diag(TG::summary($r));
    is($e && $e->{uri}, $uri, "default: $path reaches the upstream as $uri");
}
like($t->error_log, qr/ambiguous path/, 'the error log says why');
$t->stop;

# off: forwarded as received, on the upstream the prefix routed to
my $t2 = TG->new('12-ambiguous-paths-off');
$t2->write_conf(conf($t2, "reject_ambiguous_paths = off"));
$t2->start_ok;
for my $path ('/service-a/..;/service-b/x', '/service-a/..%2fservice-b/x',
              '/service-a/..%5cservice-b/x', '/service-a/..\\service-b/x')
{
    my $r = raw_get($t2->{port}, $path);
    my $e = TG::parse_echo($r && $r->{body});
    is($r && $r->{status}, 200, "off: $path is served") or diag(TG::summary($r));
    is($e && $e->{upstream}, 'a', "off: $path stays on the routed upstream");
    is($e && $e->{uri}, $path, "off: $path is forwarded as received");
}
my ($rc, $out, $err) = $t2->cli('-T');
my ($effective) = $out =~ /# effective configuration:\n(.*)\z/s;
like($effective // '', qr/^reject_ambiguous_paths = off$/m,
     '-T prints the effective reject_ambiguous_paths');
$t2->stop;

done_testing();
