#!/usr/bin/perl
# TLS to upstreams (issue 6 item 2, README "[ssl] and [ssl NAME]"):
# `server = https://127.0.0.1:PORT` where PORT is a second tracegate that
# terminates TLS with the test CA's certificates (first: localhost with IP SAN
# 127.0.0.1, second: b.test). Verification against ssl_trusted_certificate
# succeeds (by IP and by ssl_server_name), SNI is sent (ssl_server_name =
# b.test verifies only if the inner chose the b.test certificate), another
# CA / the system store / a wrong name give 502 with error.type
# tls_certificate_invalid on the CLIENT span, ssl_verify = off accepts,
# TLS to a plain-HTTP server is a handshake failure; keep-alive and large
# bodies through a TLS upstream; read_timeout to a TLS upstream is the gap
# between reads (pieces with short gaps pass, a stall is cut, also on a
# reused connection); bad CA or client-certificate files fail -t.
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

my $up = TG::mock_upstream(name => 'inner-up');
my $outer = TG->new('91-upstream-tls');
my $inner = TG->new('91-upstream-tls-inner');
my $pki = TGTLS::make_pki("$outer->{dir}/conf/pki");
my ($lh, $b) = ($pki->{localhost}, $pki->{b});
my $isport = TG::free_port();

my @names = qw(ip name sni-b otherca wrongname noverify noverify-wrongname sysstore clientcert
               tls-to-plain handshake-timeout);

# a plain-HTTP server that answers at once, without waiting for a request
my $plain = plain_server("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
# a server that accepts and never answers (the TLS handshake cannot complete)
my $bh = TG::mock_upstream(name => 'blackhole', mode => 'blackhole');

sub plain_server {
    my ($answer) = @_;
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
                                  Listen => 16, ReuseAddr => 1) or die "listen: $!";
    my $pid = fork // die;
    if ($pid == 0) {
        $TG::IS_CHILD = 1;
        my $end = time + 300;
        while (time < $end) {
            my $c = $l->accept or next;
            syswrite $c, $answer;
            sleep 0.2;
            close $c;
        }
        POSIX::_exit(0);
    }
    $TG::STARTED{$pid} = { kind => 'mock', sig => 'KILL' };
    return { port => $l->sockport, pid => $pid };
}

# --- the inner tracegate: TLS in front of the mock --------------------------
my $iconf = $inner->main_conf("listen = 127.0.0.1:$isport ssl\nclient_max_body_size = 0\n")
          . "[ssl]\ncertificate = $lh->{crt} $lh->{key}\ncertificate = $b->{crt} $b->{key}\n\n"
          . "[upstream up]\nserver = 127.0.0.1:$up->{port}\n\n"
          . join('', map { "[route /$_]\nupstream = up\n\n" } @names, 'slow')
          . "[trace]\n\n[otlp]\nexporter = file\nschedule_delay = 100ms\n";
$inner->write_conf($iconf);
$inner->start_ok;
ok(TG::wait_for(5, sub { TG::port_accepts($isport, 0.2) }), 'inner tracegate listens with TLS');

# --- the outer tracegate: plain HTTP in, TLS out ----------------------------
my $ca = $pki->{ca};
my %ups = (
    'ip'           => "ssl_trusted_certificate = $ca\n",
    'name'         => "ssl_trusted_certificate = $ca\nssl_server_name = localhost\n",
    'sni-b'        => "ssl_trusted_certificate = $ca\nssl_server_name = b.test\n",
    'otherca'      => "ssl_trusted_certificate = $pki->{other_ca}\n",
    'wrongname'    => "ssl_trusted_certificate = $ca\nssl_server_name = wrong.test\n",
    'noverify'     => "ssl_verify = off\nssl_trusted_certificate = $pki->{other_ca}\n",
    'noverify-wrongname' => "ssl_verify = off\nssl_server_name = wrong.test\n",
    'sysstore'     => "",
    'clientcert'   => "ssl_trusted_certificate = $ca\nssl_certificate = $pki->{a}{crt}\n"
                    . "ssl_certificate_key = $pki->{a}{key}\n",
);
sub outer_conf {
    my (%extra) = @_;
    my $c = $outer->main_conf("client_max_body_size = 0\n");
    for my $n (@names) {
        my $srv = $n eq 'tls-to-plain' ? "server = https://127.0.0.1:$plain->{port}\n"
                : $n eq 'handshake-timeout' ? "server = https://127.0.0.1:$bh->{port}\n"
                . "connect_timeout = 1s\nread_timeout = 2s\nssl_verify = off\n"
                : "server = https://127.0.0.1:$isport\n";
        $c .= "[upstream $n]\n$srv" . ($ups{$n} // '') . ($extra{$n} // '') . "\n";
        $c .= "[route /$n]\nupstream = $n\n\n";
    }
    $c .= "[upstream slow]\nserver = https://127.0.0.1:$isport\nssl_trusted_certificate = $ca\n"
        . "read_timeout = 1s\nkeepalive_timeout = 30s\n\n[route /slow]\nupstream = slow\n\n";
    return $c . "[trace]\n\n[otlp]\nexporter = file\nschedule_delay = 100ms\n";
}

# configuration errors first
for my $case (['ip', "ssl_trusted_certificate = $ca\n", "ssl_trusted_certificate = $outer->{dir}/nope.pem\n",
               qr/cannot load CA file.*nope\.pem/, 'missing CA file'],
              ['clientcert', "ssl_certificate_key = $pki->{a}{key}\n",
               "ssl_certificate_key = $pki->{b}{key}\n", qr/client certificate/, 'client key not matching']) {
    my ($n, $from, $to, $re, $what) = @$case;
    my $text = outer_conf();
    $text =~ s/(\[upstream \Q$n\E\]\n(?:.*\n)*?)\Q$from\E/$1$to/ or die "no $from in [upstream $n]";
    $outer->write_conf($text);
    my ($rc, $out, $err) = $outer->cli('-t');
    isnt($rc, 0, "-t fails: $what");
    like($err, qr/\Q$outer->{conf}\E:\d+: /, "-t names FILE:LINE: $what") or diag($err);
    like($err, $re, "-t says why: $what") or diag($err);
}

$outer->write_conf(outer_conf());
{
    my ($rc, $out, $err) = $outer->cli('-t');
    is($rc, 0, '-t accepts https upstreams') or diag($err);
}
$outer->start_ok;
my $port = $outer->{port};

# path => [expected status, expected CLIENT error.type or undef]
my %expect = (
    'ip'                 => [200],
    'name'               => [200],
    'sni-b'              => [200],
    'noverify'           => [200],
    'noverify-wrongname' => [200],
    'clientcert'         => [200],
    'otherca'            => [502, 'tls_certificate_invalid'],
    'wrongname'          => [502, 'tls_certificate_invalid'],
    'sysstore'           => [502, 'tls_certificate_invalid'],
    'tls-to-plain'       => [502, 'tls_handshake_failed'],
    'handshake-timeout'  => [504, 'timeout'],
);
my $log0 = length $outer->error_log;
for my $n (@names) {
    my ($st, $et) = @{ $expect{$n} };
    my $t0 = time;
    my ($r, $e) = TGTrace::via($outer, "/$n/x", timeout => 12);
    my $took = time - $t0;
    is($r && $r->{status}, $st, "/$n: $st") or diag(TG::summary($r) . "\n" . TG::tail($outer->error_log, 5));
    if ($n eq 'handshake-timeout') {
        # nginx counts the upstream handshake in proxy_connect_timeout
        ok($took < 4, sprintf("/$n: a TLS handshake that never completes ends within connect_timeout "
                              . "(1s) + slack, not never (took %.1f s)", $took));
        next;
    }
    if ($st == 200) {
        is($e && $e->{upstream}, 'inner-up', "/$n: reached the mock behind the inner TLS listener");
        is($e && $e->{uri}, "/$n/x", "/$n: the request target is unchanged");
    } else {
        is($r && $r->{body}, $outer->html('50x.html'), "/$n: the 50x page");
    }
}
my $log = substr($outer->error_log, $log0);
like($log, qr/TLS to upstream 127\.0\.0\.1:$isport failed:.*hostname mismatch/,
     'wrong ssl_server_name: the error log says hostname mismatch') or diag($log);
like($log, qr/TLS to upstream 127\.0\.0\.1:$isport failed:.*(unable to get local issuer|self.signed|unable to verify)/,
     'unknown CA: the error log names the verification error');
like($log, qr/TLS to upstream 127\.0\.0\.1:$plain->{port} failed/,
     'TLS to a plain-HTTP server: logged as a TLS failure');

# SNI: with ssl_server_name = b.test only the b.test certificate verifies; the
# inner's default certificate (localhost) would fail as "wrongname" does.
# Make sure of it: with SNI localhost, b.test is not what was presented.
{
    my $s = TGTLS::s_client($isport, servername => 'b.test', dir => "$outer->{dir}/scratch");
    is($s->{subject_cn}, 'b.test', 'the inner presents b.test for SNI b.test');
    $s = TGTLS::s_client($isport, dir => "$outer->{dir}/scratch");
    is($s->{subject_cn}, 'localhost', 'the inner presents localhost without SNI (so /ip verified by IP SAN)');
}

# keep-alive to the TLS upstream and large bodies both ways
my @ports;
for my $i (1 .. 3) {
    my ($r, $e) = TGTrace::via($outer, "/ip/ka-$i");
    is($r && $r->{status}, 200, "/ip/ka-$i: 200");
}
{
    my $n = 4_000_000;
    my $r = TG::http_get($port, "/ip/big?len=$n", timeout => 30, sink => 1);
    is($r && $r->{body_len}, $n, '4 MB response through a TLS upstream: length');
    is($r && $r->{body_md5}, TG::gen_md5($n), '4 MB response through a TLS upstream: intact');
    my $body = TG::gen_body(2_500_000);
    my ($r2, $e2) = TGTrace::via($outer, '/ip/upload', method => 'POST', body => $body, timeout => 30);
    is($r2 && $r2->{status}, 200, '2.5 MB upload through a TLS upstream: 200');
    is($e2 && $e2->{body_md5}, md5_hex($body), '2.5 MB upload through a TLS upstream: intact');
}

# read_timeout = 1s to a TLS upstream (the inner relays the mock's pieces)
{
    my $t0 = time;
    my $r = TG::http_get($port, '/slow/gaps?len=600&chunk_size=100&chunk_delay=350', timeout => 10);
    my $dt = time - $t0;
    is($r && $r->{status}, 200, 'TLS upstream, pieces 350 ms apart, read_timeout = 1s: 200')
        or diag(TG::summary($r));
    is($r && $r->{body_md5}, TG::gen_md5(600), 'TLS upstream, pieces: the whole body, intact');
    ok($dt > 1.5, sprintf('TLS upstream, pieces: took %.2f s, longer than read_timeout', $dt));

    my $c = TG::Conn->new($port);
    $c->write("GET /slow/stall?len=500&chunk_size=100&chunk_delay=5000 HTTP/1.1\r\n"
              . "Host: tg.test\r\nConnection: close\r\n\r\n");
    my ($end, $hend) = (time + 5, -1);
    until ((($hend = index($c->{buf}, "\r\n\r\n")) >= 0 && length($c->{buf}) >= $hend + 4 + 100)
           || $c->{eof} || time >= $end)
    {
        $c->fill($end - time);
    }
    $t0 = time;
    ok($c->wait_closed(5), 'TLS upstream stalls after the head: connection closed');
    $dt = time - $t0;
    like($c->{extra} // '', qr{^HTTP/1\.1 200 }, 'TLS upstream stalls: the response had started');
    cmp_ok($dt, '>=', 0.9, sprintf('TLS upstream stalls: cut %.2f s after the last bytes (read_timeout = 1s)', $dt));
    cmp_ok($dt, '<', 1.6, sprintf('TLS upstream stalls: cut %.2f s after the last bytes (read_timeout = 1s)', $dt));

    # a fast request, then a stall on the same pooled TLS connection
    my $r1 = TG::http_get($port, '/slow/fast');
    is($r1 && $r1->{status}, 200, 'TLS upstream: a fast request');
    $t0 = time;
    my $r2 = TG::http_get($port, '/slow/hang?hang=1', timeout => 10);
    $dt = time - $t0;
    is($r2 && $r2->{status}, 504, 'TLS upstream: the next request stalls: 504') or diag(TG::summary($r2));
    cmp_ok($dt, '>=', 0.9, sprintf('TLS upstream: 504 after %.2f s (read_timeout = 1s)', $dt));
    cmp_ok($dt, '<', 1.6, sprintf('TLS upstream: 504 after %.2f s (read_timeout = 1s)', $dt));
    my $ifile = "$inner->{dir}/logs/spans.jsonl";
    my %ip;
    TG::wait_for(5, sub {
        %ip = map { (($_->{attributes}{'url.path'} // '') => $_->{attributes}) }
              grep { $_->{kind} == 2 } TGTrace::file_spans($ifile);
        $ip{'/slow/fast'} && $ip{'/slow/hang'};
    });
    my @pp = map { $ip{$_} && $ip{$_}{'network.peer.port'} } '/slow/fast', '/slow/hang';
    ok(defined $pp[0], 'TLS upstream: the inner saw the fast request')
        or diag("inner peer ports: @{[ map { $_ // 'none' } @pp ]}");
    is($pp[1], $pp[0], 'TLS upstream: the stalled request reused the pooled connection')
        or diag("inner peer ports: @{[ map { $_ // 'none' } @pp ]}");
}

# --- spans ----------------------------------------------------------------
my $file = "$outer->{dir}/logs/spans.jsonl";
my (%srv, %cli);
TG::wait_for(8, sub {
    my @s = TGTrace::file_spans($file);
    %srv = map { (($_->{attributes}{'url.path'} // '') => $_) } grep { $_->{kind} == 2 } @s;
    %cli = ();
    for my $c (grep { $_->{kind} == 3 } @s) { push @{ $cli{$c->{parent_span_id}} }, $c }
    !grep { !$srv{"/$_/x"} } @names;
});
for my $n (@names) {
    my ($st, $et) = @{ $expect{$n} };
    my $s = $srv{"/$n/x"};
    ok($s, "/$n: SERVER span exported") or next;
    my @c = @{ $cli{$s->{span_id}} || [] };
    is(scalar(@c), 1, "/$n: one CLIENT span under it") or next;
    my $ca = $c[0]{attributes};
    like($ca->{'url.full'} // '', qr{^https://127\.0\.0\.1:\d+}, "/$n: CLIENT url.full is https://127.0.0.1:PORT...");
    like($ca->{'url.full'} // '', qr{^https://127\.0\.0\.1:\d+/\Q$n\E/x$}, "/$n: CLIENT url.full has the path");
    if ($et) {
        is($ca->{'error.type'}, $et, "/$n: CLIENT span error.type = $et");
        is($c[0]{status}, 2, "/$n: CLIENT span status ERROR");
        is($s->{attributes}{'http.response.status_code'}, $st, "/$n: SERVER span status code $st");
    } else {
        is($ca->{'http.response.status_code'}, 200, "/$n: CLIENT span status code 200");
        ok(!defined $ca->{'error.type'}, "/$n: CLIENT span has no error.type");
    }
}

# the inner saw the three keep-alive requests on one TLS connection
{
    my $ifile = "$inner->{dir}/logs/spans.jsonl";
    my %ip;
    TG::wait_for(5, sub {
        %ip = map { (($_->{attributes}{'url.path'} // '') => $_->{attributes}) }
              grep { $_->{kind} == 2 } TGTrace::file_spans($ifile);
        3 == grep { $ip{"/ip/ka-$_"} } 1 .. 3;
    });
    my @pp = map { $ip{"/ip/ka-$_"} && $ip{"/ip/ka-$_"}{'network.peer.port'} } 1 .. 3;
    ok(defined $pp[0], 'the inner saw the first request')
        or diag("inner peer ports: @{[ map { $_ // 'none' } @pp ]}");
    is_deeply([@pp[1 .. $#pp]], [($pp[0]) x $#pp],
              'the three requests reached the inner on one TLS connection (keep-alive to a TLS upstream)')
        or diag("inner peer ports: @{[ map { $_ // 'none' } @pp ]}");
    is($ip{'/ip/ka-1'} && $ip{'/ip/ka-1'}{'url.scheme'}, 'https', 'the inner span says url.scheme https');
}

ok($outer->stop, 'outer stops');
ok($inner->stop, 'inner stops');
done_testing();
