#!/usr/bin/perl
# Configuration: -t on a good file (exact messages, exit 0), -T prints the
# configuration, and bad files each rejected with FILE:LINE and exit 1.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use TG;

my $t = TG->new('15-config');
my $port = $t->{port};
my $conf = $t->{conf};

my $good = <<"CONF";
; tracegate test configuration
[main]
daemon = off
listen = 127.0.0.1:$port
listen = [::1]:$port
workers = 1
pid = logs/tracegate.pid
error_log = logs/error.log info
client_header_timeout = 60s
keepalive_timeout = 75s
client_max_body_size = 1m
health = /health
include = conf.d/*.conf

[upstream service-a]
server = 127.0.0.1:9001 weight=2 max_fails=1 fail_timeout=10s
server = 127.0.0.1:9011 backup   ; inline comment
keepalive = 64
connect_timeout = 5s

[route /service-a]
upstream = service-a
strip_prefix = off
CONF
my $included = <<"CONF";
[upstream service-inc]
server = 127.0.0.1:9021

[route /service-inc]
upstream = service-inc
strip_prefix = on
CONF

$t->write_conf($good);
$t->write_conf($included, 'conf.d/inc.conf');
my ($rc, $out, $err) = $t->cli('-t');
is($rc, 0, '-t on a good configuration exits 0') or diag("stderr: $err");
like($err, qr/^tracegate: the configuration file \Q$conf\E syntax is ok$/m, '-t: "syntax is ok" message')
    or diag("stderr: $err");
like($err, qr/^tracegate: configuration file \Q$conf\E test is successful$/m, '-t: "test is successful" message');
unlike($err, qr/\[emerg\]/, '-t: no [emerg] on a good configuration');
ok(!-e "$t->{dir}/logs/tracegate.pid", '-t does not write the pid file');

($rc, $out, $err) = $t->cli('-T');
is($rc, 0, '-T exits 0') or diag("stderr: $err");
like($err, qr/test is successful/, '-T: test is successful');
like($out, qr/\[upstream service-a\]/, '-T prints the upstream section');
like($out, qr/server\s*=\s*127\.0\.0\.1:9001/, '-T prints the server line');
like($out, qr/\[route \/service-a\]/, '-T prints the route');
like($out, qr/listen\s*=\s*127\.0\.0\.1:\Q$port\E/, '-T prints the listen line');
like($out, qr/\[upstream service-inc\]/, '-T prints what the include brought in');

# a missing file
($rc, $out, $err) = $t->run_cli('-p', $t->{dir}, '-c', "$t->{dir}/conf/nonexistent.conf", '-t');
is($rc, 1, 'missing configuration file: exit 1');
like($err, qr/nonexistent\.conf/, 'missing configuration file: named in the message');
like($err, qr/^tracegate: configuration file \S*nonexistent\.conf test failed$/m, 'missing file: test failed');

# bad configurations: [name, text, line regexp (or [line regexps]), extra files]
my $main = "[main]\ndaemon = off\nlisten = 127.0.0.1:$port\n";
my $ups  = "[upstream service-a]\nserver = 127.0.0.1:9001\n";
my @bad = (
    ['unknown key', $main . "bogus_key = 1\n" . $ups, qr/^bogus_key/],
    ['unknown key in an upstream', $main . $ups . "colour = blue\n", qr/^colour/],
    ['unknown section', $main . $ups . "\n[bogus]\nx = 1\n", qr/^\[bogus\]/],
    ['key before any section', "workers = 1\n" . $main . $ups, qr/^workers/],
    ['repeated single-valued key', $main . "workers = 1\nworkers = 2\n" . $ups, qr/^workers = 2/],
    ['route to an unknown upstream', $main . $ups . "\n[route /x]\nupstream = nosuch\n",
        [qr/^upstream = nosuch/, qr/^\[route \/x\]/]],
    ['upstream without server', $main . $ups . "\n[upstream empty]\nkeepalive = 4\n",
        [qr/^\[upstream empty\]/, qr/^keepalive = 4/]],
    ['bad listen', $main . "listen = 127.0.0.1:notaport\n" . $ups, qr/^listen = 127\.0\.0\.1:notaport/],
    ['listen port out of range', $main . "listen = 127.0.0.1:70000\n" . $ups, qr/^listen = 127\.0\.0\.1:70000/],
    ['bad time value', $main . "client_header_timeout = 10parsecs\n" . $ups, qr/^client_header_timeout/],
    ['bad size value', $main . "client_max_body_size = lots\n" . $ups, qr/^client_max_body_size/],
    ['bad server address', $main . "[upstream service-a]\nserver = 127.0.0.1:99999\n", qr/^server = 127\.0\.0\.1:99999/],
    ['bad server parameter', $main . "[upstream service-a]\nserver = 127.0.0.1:9001 wieght=2\n", qr/^server = .*wieght/],
    ['line too long (200 chars)', $main . "error_log = logs/" . ('e' x 174) . ".log info\n" . $ups, qr/^error_log = logs\/eee/],
    ['line of 198 chars', $main . "error_log = logs/" . ('e' x 172) . ".log info\n" . $ups, qr/^error_log = logs\/eee/],
    ['indented line', $main . "  workers = 2\n" . $ups, qr/^\s+workers/],
    ['bad workers value', $main . "workers = many\n" . $ups, qr/^workers = many/],
    ['bad strip_prefix', $main . $ups . "[route /service-a]\nupstream = service-a\nstrip_prefix = maybe\n", qr/^strip_prefix/],
    ['route without upstream', $main . $ups . "[route /x]\nstrip_prefix = on\n",
        [qr/^\[route \/x\]/, qr/^strip_prefix = on/]],
    ['duplicate route', $main . $ups . "[route /x]\nupstream = service-a\n[route /x]\nupstream = service-a\n",
        [qr/^\[route \/x\]/], 2],
);
is(length("error_log = logs/" . ('e' x 174) . ".log info"), 200, 'self-check: long line is 200 chars');
is(length("error_log = logs/" . ('e' x 172) . ".log info"), 198, 'self-check: 198-char line');

# a line of 197 characters is still fine
{
    my $bt = TG->new('15-config-197');
    my $l = "error_log = logs/" . ('e' x 171) . ".log info";
    is(length $l, 197, 'self-check: 197-char line');
    $bt->write_conf($main . "$l\n" . $ups);
    my ($rc, $out, $err) = $bt->cli('-t');
    is($rc, 0, 'a 197-character line is accepted') or diag("stderr: $err");
}

for my $b (@bad) {
    my ($name, $text, $re, $nth) = @$b;
    my $bt = TG->new('15-config-bad');
    $bt->write_conf($text);
    my @lines;
    for my $r (ref $re eq 'ARRAY' ? @$re : ($re)) {
        my $n = 0;
        my $seen = 0;
        for my $l (split /\n/, $text, -1) {
            $n++;
            next unless $l =~ $r;
            $seen++;
            next if $nth && $seen < $nth;
            push @lines, $n;
            last;
        }
    }
    die "test bug: no line for $name" unless @lines;
    my ($rc, $out, $err) = $bt->cli('-t');
    my $f = $bt->{conf};
    is($rc, 1, "$name: -t exits 1");
    my $lre = join('|', @lines);
    like($err, qr/^tracegate: \[emerg\] \Q$f\E:(?:$lre): \S.*$/m,
         "$name: [emerg] $f:" . join(' or ', @lines) . ': message')
        or diag("stderr: $err");
    like($err, qr/^tracegate: configuration file \Q$f\E test failed$/m, "$name: test failed message");
}

# an error in an included file names that file and its line
{
    my $bt = TG->new('15-config-inc');
    $bt->write_conf($main . "include = conf.d/*.conf\n" . $ups);
    my $inc = "[upstream b]\nserver = 127.0.0.1:9002\nbogus_inc = 1\n";
    $bt->write_conf("[upstream z]\nserver = 127.0.0.1:9009\n", 'conf.d/a-good.conf');
    $bt->write_conf($inc, 'conf.d/bad.conf');
    my ($rc, $out, $err) = $bt->cli('-t');
    is($rc, 1, 'error in an included file: exit 1');
    like($err, qr/^tracegate: \[emerg\] \S*conf\.d\/bad\.conf:3: \S/m,
         'error in an included file: [emerg] .../conf.d/bad.conf:3:')
        or diag("stderr: $err");
    like($err, qr/^tracegate: configuration file \Q$bt->{conf}\E test failed$/m, 'include error: test failed message');
}

# starting with a bad configuration fails fast
{
    my $bt = TG->new('15-config-start');
    $bt->write_conf($main . "bogus_key = 1\n" . $ups);
    ok(!$bt->start(timeout => 5), 'tracegate does not start with a bad configuration');
    like($bt->stderr_log, qr/\[emerg\].*bogus_key|bogus_key.*\[emerg\]|\[emerg\] \S+:4:/,
         'start-up error names the problem');
}

done_testing();
