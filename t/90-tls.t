#!/usr/bin/perl
# TLS termination (issue 6 item 1, README "[ssl] and [ssl NAME]"): a test CA
# and certificates made here with the openssl CLI; HTTPS through
# `listen = ADDR ssl` reaches the upstream (curl --cacert, --resolve), large
# bodies both ways; SNI picks the certificate (two `certificate` lines, the
# first is the default); ALPN http/1.1; TLS 1.0/1.1 refused, 1.2/1.3
# accepted, `min_protocol = TLSv1.3` ([ssl NAME], `listen = ADDR ssl=NAME`)
# refuses 1.2; bad certificate or key fails -t with FILE:LINE and start-up;
# failed handshakes are logged with the peer and do not disturb a concurrent
# client; session resumption (1.2 and 1.3, two workers: ticket keys are
# shared); X-Forwarded-Proto https; spans with url.scheme and tls.*.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::MD5 qw(md5_hex);
use IO::Socket::INET;
use POSIX ();
use Test::More;
use Time::HiRes qw(time sleep);
use TG;
use TGTLS;
use TGTrace;
TG::need_modules(qw(otlp));

TGTrace::clean_env();

my $up = TG::mock_upstream(name => 'a');
my $t = TG->new('90-tls');
my $dir = $t->{dir};
my $scratch = "$dir/scratch";
my $pki = TGTLS::make_pki("$dir/conf/pki");
my ($a, $b) = ($pki->{a}, $pki->{b});
ok(-s $pki->{ca}, 'test CA made');
ok(-s $a->{crt}, 'a.test certificate made');
ok(-s $b->{crt}, 'b.test certificate made');

my $sport = TG::free_port();
my $sport13 = TG::free_port();

# ---------------------------------------------------------------------------
# configuration errors: -t and start-up

sub ssl_conf {
    my ($ssl, $listen) = @_;
    $listen //= "listen = 127.0.0.1:$sport ssl\n";
    return $t->main_conf($listen) . $ssl . <<"CONF";

[upstream a]
server = 127.0.0.1:$up->{port}

[route /service-a]
upstream = a
CONF
}

my $conf = $t->{conf};
my @bad = (
    ['key that does not match its certificate',
     "[ssl]\ncertificate = $a->{crt} $a->{key}\ncertificate = $b->{crt} $a->{key}\n",
     qr/^certificate = \Q$b->{crt}\E/, qr/\Q$a->{key}\E.*(does not match|mismatch)/i],
    ['missing certificate file',
     "[ssl]\ncertificate = $dir/conf/pki/nope.pem $a->{key}\n",
     qr/^certificate = /, qr/cannot load certificate.*nope\.pem/i],
    ['certificate file that is not PEM',
     "[ssl]\ncertificate = $pki->{garbage} $a->{key}\n",
     qr/^certificate = /, qr/cannot load certificate.*garbage\.pem/i],
    ['key file that is not PEM',
     "[ssl]\ncertificate = $a->{crt} $pki->{garbage}\n",
     qr/^certificate = /, qr/cannot load key.*garbage\.pem/i],
    ['missing key file',
     "[ssl]\ncertificate = $a->{crt} $dir/conf/pki/nope.key\n",
     qr/^certificate = /, qr/cannot load key.*nope\.key/i],
    ['certificate line with one file',
     "[ssl]\ncertificate = $a->{crt}\n",
     qr/^certificate = /, qr/CERTIFICATE-FILE KEY-FILE/],
    ['min_protocol TLSv1.1',
     "[ssl]\ncertificate = $a->{crt} $a->{key}\nmin_protocol = TLSv1.1\n",
     qr/^min_protocol/, qr/min_protocol/],
    ['[ssl] without certificate',
     "[ssl]\nsession_timeout = 5m\n",
     qr/^\[ssl\]/, qr/no "?certificate/i],
    ['listen ssl without an [ssl] section',
     "[ssl other]\ncertificate = $a->{crt} $a->{key}\n",
     qr/^listen = .* ssl$/, qr/no \[ssl\] section/],
);
for my $case (@bad) {
    my ($what, $ssl, $line_re, $msg_re) = @$case;
    my $text = ssl_conf($ssl);
    $t->write_conf($text);
    my $line = TG::line_of($text, $line_re);
    my ($rc, $out, $err) = $t->cli('-t');
    isnt($rc, 0, "-t fails: $what");
    like($err, qr/\Q$conf\E:\d+: /, "-t names FILE:LINE: $what") or diag("stderr: $err");
    like($err, qr/\Q$conf\E:$line: /, "-t names $conf:$line, the offending line: $what")
        or diag("stderr: $err");
    like($err, $msg_re, "-t says why: $what") or diag("stderr: $err");
    unlike($err, qr/test is successful/, "-t does not call it successful: $what");
}

# start-up (not -t) with the mismatching key and with garbage: exits non-zero
# at once, saying why, and never listens
for my $case (@bad[0, 2]) {
    my ($what, $ssl, $line_re, $msg_re) = @$case;
    $t->write_conf(ssl_conf($ssl));
    my ($rc, $out, $err) = $t->run_cli('-p', $dir, '-c', $conf);
    ok($rc > 0, "start-up fails (exit $rc): $what");
    like($err . $t->error_log, $msg_re, "start-up says why: $what") or diag("stderr: $err");
    ok(!TG::port_accepts($sport, 0.2), "nothing listens on the TLS port: $what");
}

# ---------------------------------------------------------------------------
# a working configuration: two workers, [ssl] with two certificates (the
# first by a prefix-relative path), [ssl modern] with TLS 1.3 only

my $good = $t->main_conf(<<"MAIN") . <<"CONF";
workers = 2
listen = 127.0.0.1:$sport ssl
listen = 127.0.0.1:$sport13 ssl=modern
client_max_body_size = 16m
MAIN
[ssl]
certificate = conf/pki/a.test.pem conf/pki/a.test.key
certificate = $b->{crt} $b->{key}

[ssl modern]
certificate = $a->{crt} $a->{key}
min_protocol = TLSv1.3

[upstream a]
server = 127.0.0.1:$up->{port}

[route /service-a]
upstream = a

[trace]

[otlp]
exporter = file
schedule_delay = 100ms
CONF
$t->write_conf($good);
{
    my ($rc, $out, $err) = $t->cli('-t');
    is($rc, 0, '-t accepts the TLS configuration') or diag("stderr: $err");
}
$t->start_ok;
{
    my $end = time + 5;
    ok(TG::wait_for(5, sub { TG::port_accepts($sport, 0.2) }), 'TLS listener accepts');
    ok(TG::wait_for($end - time, sub { TG::port_accepts($sport13, 0.2) }), 'TLS 1.3 listener accepts');
}
my @workers0 = $t->workers;
is(scalar(@workers0), 2, 'two workers');

my %cc = (cacert => $pki->{ca}, dir => $scratch);
sub url { my ($host, $path, $port) = @_; $port //= $sport; return "https://$host:$port$path" }
sub res { my ($host, $port) = @_; $port //= $sport; return "$host:$port:127.0.0.1" }

# --- HTTPS reaches the upstream ---------------------------------------------
my $c = TGTLS::curl(url('a.test', '/service-a/hello?x=1'), %cc, resolve => res('a.test'),
                    headers => [['User-Agent', 'tg-90-tls']]);
is($c->{code}, 200, 'HTTPS GET through the ssl listener: 200') or diag(TGTLS::curl_summary($c));
my $e = TG::parse_echo($c->{body});
is($e && $e->{upstream}, 'a', 'the request reached upstream a');
is($e && $e->{uri}, '/service-a/hello?x=1', 'the upstream saw the request target');
is_deeply($e && $e->{h}{'x-forwarded-proto'}, ['https'], 'X-Forwarded-Proto: https');
is_deeply($e && $e->{h}{host}, ["a.test:$sport"], 'Host is the client\'s');
like($c->{verbose}, qr/SSL connection using TLSv1\.3/, 'curl negotiated TLS 1.3 by default');
like($c->{verbose}, qr/ALPN: server accepted http\/1\.1|ALPN, server accepted to use http\/1\.1/,
     'curl (offering h2 and http/1.1) got ALPN http/1.1');
like($c->{verbose}, qr/subject: CN=a\.test/, 'a.test got the a.test certificate');
is(TG::hdr({ h => $c->{h} }, 'Server'), 'tg-mock', 'the upstream\'s response headers come back');

# plain listener: X-Forwarded-Proto http, still
my ($pr, $pe) = TGTrace::via($t, '/service-a/plain-1');
is_deeply($pe && $pe->{h}{'x-forwarded-proto'}, ['http'], 'plain listener: X-Forwarded-Proto http');

# large bodies both ways over TLS (5 MB down, 3 MB up), keep-alive: 3 requests, 1 connection
{
    my $n = 5_000_000;
    my $up_file = "$scratch/upload.bin";
    my $up_body = TG::gen_body(3_000_000);
    TG::spew($up_file, $up_body);
    my $down = "$scratch/down.bin";
    my $k = TGTLS::curl([url('a.test', "/service-a/big?len=$n"), '-o', $down,
                         url('a.test', '/service-a/up'), '-o', "$scratch/up.out",
                         url('a.test', '/service-a/third')],
                        %cc, resolve => res('a.test'), timeout => 30,
                        extra => ['--data-binary', "\@$up_file"]);
    # --data-binary applies to every URL of the command: all three are POSTs
    is(md5_hex(TG::slurp($down) // ''), TG::gen_md5($n), '5 MB response over TLS arrives intact')
        or diag(TGTLS::curl_summary($k));
    my $ue = TG::parse_echo(TG::slurp("$scratch/up.out"));
    is($ue && $ue->{body_len}, 3_000_000, '3 MB request body over TLS reaches the upstream');
    is($ue && $ue->{body_md5}, md5_hex($up_body), '... intact');
    my $conns = () = $k->{verbose} =~ /^\* Connected to /mg;
    is($conns, 1, 'three requests on one TLS connection (keep-alive)') or diag(TGTLS::curl_summary($k));
}

# --- SNI ------------------------------------------------------------------
$c = TGTLS::curl(url('b.test', '/service-a/sni-b'), %cc, resolve => res('b.test'));
is($c->{code}, 200, 'curl verifies b.test (SNI b.test chose the b.test certificate)')
    or diag(TGTLS::curl_summary($c));
like($c->{verbose}, qr/subject: CN=b\.test/, 'b.test got the b.test certificate');
$c = TGTLS::curl(url('c.test', '/service-a/sni-c'), %cc, resolve => res('c.test'));
isnt($c->{code}, 200, 'c.test (no certificate for it) fails verification in curl');
like($c->{verbose}, qr/subject: CN=a\.test/, 'an unknown name gets the first (default) certificate');

for my $case (['b.test', 'b.test'], ['a.test', 'a.test'], ['B.TEST', 'b.test'],
              ['c.test', 'a.test'], [undef, 'a.test']) {
    my ($sni, $want) = @$case;
    my $s = TGTLS::s_client($sport, servername => $sni, cafile => $pki->{ca}, dir => $scratch);
    my $what = defined $sni ? "SNI $sni" : 'no SNI';
    ok($s->{ok}, "$what: handshake") or diag($s->{out} . $s->{err});
    is($s->{subject_cn}, $want, "$what: the server presents $want");
    is($s->{verify}, '0', "$what: the chain verifies against the test CA");
}

# --- ALPN -----------------------------------------------------------------
{
    my $s = TGTLS::s_client($sport, servername => 'a.test', alpn => 'http/1.1', dir => $scratch);
    is($s->{alpn}, 'http/1.1', 'ALPN http/1.1 offered: http/1.1 negotiated') or diag($s->{out});
    $s = TGTLS::s_client($sport, servername => 'a.test', alpn => 'h2,http/1.1', dir => $scratch);
    is($s->{alpn}, 'http/1.1', 'ALPN h2,http/1.1 offered: http/1.1 chosen');
    $s = TGTLS::s_client($sport, servername => 'a.test', alpn => 'h2', dir => $scratch);
    ok($s->{ok}, 'ALPN h2 only: the handshake still succeeds');
    is($s->{alpn}, undef, 'ALPN h2 only: no protocol selected');
    like($s->{out}, qr/No ALPN negotiated/, '... "No ALPN negotiated"');
}

# --- protocol versions ------------------------------------------------------
my $log0 = length $t->error_log;
for my $case (['tls1', 0], ['tls1_1', 0], ['tls1_2', 1, 'TLSv1.2'], ['tls1_3', 1, 'TLSv1.3']) {
    my ($p, $accept, $ver) = @$case;
    my $s = TGTLS::s_client($sport, servername => 'a.test', proto => $p, dir => $scratch);
    if ($accept) {
        ok($s->{ok}, "-$p accepted") or diag($s->{out} . $s->{err});
        is($s->{protocol}, $ver, "-$p negotiates $ver");
    } else {
        ok(!$s->{ok}, "-$p refused") or diag($s->{out});
        like($s->{err} . $s->{out}, qr/protocol version|unsupported protocol|no protocols available/i,
             "-$p: refused for its protocol version");
    }
}
for my $case (['tls1_2', 0], ['tls1_3', 1, 'TLSv1.3']) {
    my ($p, $accept, $ver) = @$case;
    my $s = TGTLS::s_client($sport13, servername => 'a.test', proto => $p, dir => $scratch);
    if ($accept) {
        ok($s->{ok}, "min_protocol = TLSv1.3 ([ssl modern]): -$p accepted") or diag($s->{out} . $s->{err});
        is($s->{protocol}, $ver, "min_protocol = TLSv1.3: -$p negotiates $ver");
    } else {
        ok(!$s->{ok}, "min_protocol = TLSv1.3 ([ssl modern]): -$p refused") or diag($s->{out});
    }
}
$c = TGTLS::curl(url('a.test', '/service-a/modern', $sport13), %cc, resolve => res('a.test', $sport13));
is($c->{code}, 200, 'HTTPS through the ssl=modern listener: 200') or diag(TGTLS::curl_summary($c));
$c = TGTLS::curl(url('a.test', '/service-a/modern12', $sport13), %cc, resolve => res('a.test', $sport13),
                 extra => ['--tls-max', '1.2']);
isnt($c->{code}, 200, 'curl --tls-max 1.2 to the ssl=modern listener fails');
ok(TG::wait_for(3, sub { substr($t->error_log, $log0) =~ /unsupported protocol/ }),
   'the refused old-protocol handshakes are logged (the server saw and refused them)')
    or diag(substr($t->error_log, $log0));

# --- failed handshakes: logged with the peer, a concurrent client undisturbed ---
{
    my $base = "$scratch/bg";
    my $bg = fork // die;
    if ($bg == 0) {
        $TG::IS_CHILD = 1;
        open STDOUT, '>', "$base.out";
        open STDERR, '>', "$base.err";
        { exec $TGTLS::CURL, '-sS', '-v', '--max-time', '15', '--cacert', $pki->{ca},
             '--resolve', res('a.test'), '-w', '%{http_code}\n',
             url('a.test', '/service-a/slow?delay=1500'), '-o', "$base.1",
             url('a.test', '/service-a/after-slow'), '-o', "$base.2" }
        POSIX::_exit(127);
    }
    $TG::STARTED{$bg} = { kind => 'mock', sig => 'KILL' };
    TG::wait_for(3, sub { (TG::slurp("$base.err") // '') =~ /GET \/service-a\/slow/ });
    my $log1 = length $t->error_log;
    my @peers;
    # plain HTTP on the TLS port
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $sport, Proto => 'tcp');
    push @peers, $s->sockport;
    syswrite $s, "GET /service-a/x HTTP/1.1\r\nHost: a.test\r\n\r\n";
    my $cl = TG::wait_for(3, sub { my $buf; my $n = sysread($s, $buf, 4096); defined $n && $n == 0 }, 0.05);
    ok($cl, 'plain HTTP on the TLS port: the connection is closed');
    close $s;
    # random bytes
    $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $sport, Proto => 'tcp');
    push @peers, $s->sockport;
    syswrite $s, join('', map { chr(int(rand(256))) } 1 .. 3000);
    $cl = TG::wait_for(3, sub { my $buf; my $n = sysread($s, $buf, 4096); !defined $n || $n == 0 }, 0.05);
    ok($cl, 'garbage bytes on the TLS port: the connection is closed');
    close $s;
    # a TLS 1.0-only client
    my $old = TGTLS::s_client($sport, servername => 'a.test', proto => 'tls1', dir => $scratch);
    ok(!$old->{ok}, 'a TLS 1.0-only client is refused');
    # and one that connects and leaves
    $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $sport, Proto => 'tcp');
    close $s;

    my $t0 = time;
    my $rc;
    TG::wait_for(15, sub { my $r = waitpid($bg, POSIX::WNOHANG()); $rc = $? if $r == $bg; $r == $bg });
    delete $TG::STARTED{$bg};
    my $codes = TG::slurp("$base.out") // '';
    is($codes, "200\n200\n", 'the concurrent client (slow request, then another on the same connection) got 200, 200')
        or diag(TG::tail(TG::slurp("$base.err") // '', 15));
    my $conns = () = (TG::slurp("$base.err") // '') =~ /^\* Connected to /mg;
    is($conns, 1, '... on one connection');
    like(TG::slurp("$base.2") // '', qr/^uri \/service-a\/after-slow$/m, '... the second answer is the right one');

    my $log = '';
    TG::wait_for(3, sub { $log = substr($t->error_log, $log1); my $l = $log;
                          !grep { $l !~ /127\.0\.0\.1:$_\b/ } @peers });
    for my $i (0 .. $#peers) {
        like($log, qr/\[info\].*TLS.*127\.0\.0\.1:$peers[$i]\b.*handshake|\[info\].*handshake.*127\.0\.0\.1:$peers[$i]\b/,
             ('plain HTTP', 'garbage')[$i] . " handshake failure logged (info) with the peer 127.0.0.1:$peers[$i]");
    }
    like($log, qr/\[info\].*TLS.*127\.0\.0\.1:\d+.*(unsupported protocol|protocol version)/,
         'the TLS 1.0 handshake failure is logged with the peer and the reason');
    unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert/crit in the error log');
    is_deeply([$t->workers], \@workers0, 'the workers are the same processes (none crashed)');
}

# --- session resumption (two workers: the ticket keys are shared) --------------
my %resumed_paths;
for my $p (['tls1_3', 'TLSv1.3', '13'], ['tls1_2', 'TLSv1.2', '12']) {
    my ($proto, $ver, $tag) = @$p;
    my $sess = "$scratch/sess-$tag.pem";
    my $req = sub { "GET /service-a/sess-$tag-$_[0] HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n" };
    my $s = TGTLS::s_client($sport, servername => 'a.test', proto => $proto, sess_out => $sess,
                            request => $req->(0), dir => $scratch);
    ok($s->{ok}, "$ver: first connection handshakes") or diag($s->{out} . $s->{err});
    ok(!$s->{reused}, "$ver: first connection is a full handshake") or diag($s->{out} . $s->{err});
    like($s->{response} // '', qr/^HTTP\/1\.1 200/, "$ver: request over s_client answered 200");
    ok(-s $sess, "$ver: session saved");
    my $reused = 0;
    for my $i (1 .. 6) {
        my $r = TGTLS::s_client($sport, servername => 'a.test', proto => $proto, sess_in => $sess,
                                request => $req->($i), dir => $scratch);
        $reused++ if $r->{ok} && $r->{reused} && ($r->{response} // '') =~ /^HTTP\/1\.1 200/;
        diag("$ver resumption $i: " . TG::tail($r->{out}, 30)) unless $r->{reused};
    }
    is($reused, 6, "$ver: six connections with -sess_in are \"Reused\" and answered 200 (both workers)");
    $resumed_paths{"/service-a/sess-$tag-1"} = $ver;
    $resumed_paths{"/service-a/sess-$tag-0"} = $ver;
}

# --- spans ----------------------------------------------------------------
my $file = "$dir/logs/spans.jsonl";
my %want = ('/service-a/hello' => 1, '/service-a/plain-1' => 1, '/service-a/sess-13-0' => 1,
            '/service-a/sess-13-1' => 1, '/service-a/sess-12-0' => 1, '/service-a/sess-12-1' => 1,
            '/service-a/modern' => 1);
my %srv;
TG::wait_for(8, sub {
    %srv = map { ($_->{attributes}{'url.path'} // '') => $_ }
           grep { $_->{kind} == 2 } TGTrace::file_spans($file);
    !grep { !$srv{$_} } keys %want;
});
for my $p (sort keys %want) {
    ok($srv{$p}, "SERVER span for $p exported") or next;
}
my $h = $srv{'/service-a/hello'}{attributes} || {};
is($h->{'url.scheme'}, 'https', 'HTTPS request: url.scheme = https');
is($h->{'tls.protocol.version'}, '1.3', 'HTTPS request: tls.protocol.version = 1.3');
is($h->{'tls.protocol.name'}, 'tls', 'HTTPS request: tls.protocol.name = tls');
ok($h->{'tls.cipher'}, 'HTTPS request: tls.cipher set (' . ($h->{'tls.cipher'} // '') . ')');
is($h->{'server.port'}, $sport, 'HTTPS request: server.port is the TLS port');
my $pl = $srv{'/service-a/plain-1'}{attributes} || {};
is($pl->{'url.scheme'}, 'http', 'plain request: url.scheme = http');
ok(!exists $pl->{'tls.protocol.version'}, 'plain request: no tls.* attributes');
is(($srv{'/service-a/sess-12-0'}{attributes} || {})->{'tls.protocol.version'}, '1.2',
   'TLS 1.2 request: tls.protocol.version = 1.2');
is(($srv{'/service-a/modern'}{attributes} || {})->{'url.scheme'}, 'https', 'ssl=NAME listener: url.scheme = https');
for my $tag ('13', '12') {
    my $full = $srv{"/service-a/sess-$tag-0"}{attributes} || {};
    my $res = $srv{"/service-a/sess-$tag-1"}{attributes} || {};
    ok(!$full->{'tls.resumed'} || $full->{'tls.resumed'} eq 'false',
       "TLS 1.$tag full handshake: tls.resumed false");
    ok($res->{'tls.resumed'}, "TLS 1.$tag resumed: tls.resumed set");
    isnt($res->{'tls.resumed'}, 'false', "TLS 1.$tag resumed: tls.resumed true");
}

ok($t->stop, 'tracegate stops on QUIT');
done_testing();
