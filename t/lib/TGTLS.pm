package TGTLS;

# TLS helpers for t/90-tls.t, t/91-upstream-tls.t and bench/tls_handshake.sh.
# Perl core modules only: certificates are made with the openssl CLI, TLS
# clients are `openssl s_client` and `curl`, each run bounded in time.
#
#   my $pki = TGTLS::make_pki("$dir/pki");   # CA, a.test, b.test, localhost,
#                                             # another CA, broken files
#   my $r = TGTLS::s_client($port, servername => 'b.test', alpn => 'http/1.1');
#   $r->{ok} $r->{protocol} $r->{subject_cn} $r->{alpn} $r->{reused} $r->{out}
#   my $c = TGTLS::curl("https://a.test:$port/x", cacert => $pki->{ca},
#                       resolve => "a.test:$port:127.0.0.1");
#   $c->{code} $c->{body} $c->{headers} $c->{err} $c->{rc}

use strict;
use warnings;

use File::Path qw(make_path);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use TG;

our $OPENSSL = $ENV{TG_OPENSSL} || 'openssl';
our $CURL    = $ENV{TG_CURL}    || 'curl';

# Runs @cmd with stdin from $o{stdin} (a string, written to a file first),
# stdout and stderr to files, killed after $o{timeout} s (default 10).
# Returns (exit code or -1 on timeout, stdout, stderr).
my $RUNS = 0;
sub run {
    my ($o, @cmd) = @_;
    my $dir = $o->{dir} // "$TG::TMP/tls-run.$$";
    make_path($dir);
    $RUNS++;
    my ($in, $out, $err) = map { "$dir/run$RUNS.$_" } qw(in out err);
    TG::spew($in, $o->{stdin} // '');
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $TG::IS_CHILD = 1;
        open STDIN, '<', $in;
        open STDOUT, '>', $out;
        open STDERR, '>', $err;
        { exec @cmd }
        POSIX::_exit(127);
    }
    my $end = time + ($o->{timeout} // 10);
    my $rc;
    while (1) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) { $rc = $? & 127 ? -($? & 127) : $? >> 8; last }
        if (time > $end) {
            kill 'KILL', $pid;
            waitpid($pid, 0);
            $rc = -1;
            last;
        }
        sleep 0.01;
    }
    my @r = ($rc, TG::slurp($out) // '', TG::slurp($err) // '');
    unlink $in, $out, $err unless $o->{keep};
    return @r;
}

sub openssl {
    my ($dir, @args) = @_;
    my ($rc, $out, $err) = run({ dir => $dir, timeout => 30 }, $OPENSSL, @args);
    die "openssl @args failed ($rc): $err$out" if $rc != 0;
    return $out;
}

# A new EC (P-256) or RSA key and certificate signed by $ca (or
# self-signed when $ca is undef).  %o: cn, san (string for subjectAltName),
# ca => 1 (a CA certificate), days, rsa => BITS.
sub make_cert {
    my ($dir, $name, $ca, %o) = @_;
    my $key = "$dir/$name.key";
    my $crt = "$dir/$name.pem";
    my @newkey = $o{rsa} ? ('-newkey', "rsa:$o{rsa}")
                         : ('-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1');
    my $days = $o{days} // 30;
    my $ext = "$dir/$name.ext";
    if ($o{ca}) {
        TG::spew($ext, "basicConstraints=critical,CA:TRUE\n"
                     . "keyUsage=critical,keyCertSign,cRLSign\n"
                     . "subjectKeyIdentifier=hash\n");
    } else {
        TG::spew($ext, "basicConstraints=CA:FALSE\n"
                     . "keyUsage=critical,digitalSignature,keyEncipherment\n"
                     . "extendedKeyUsage=serverAuth,clientAuth\n"
                     . ($o{san} ? "subjectAltName=$o{san}\n" : ''));
    }
    openssl($dir, 'req', '-new', @newkey, '-nodes', '-keyout', $key,
            '-out', "$dir/$name.csr", '-subj', "/CN=$o{cn}");
    if ($ca) {
        openssl($dir, 'x509', '-req', '-in', "$dir/$name.csr", '-CA', $ca->{crt},
                '-CAkey', $ca->{key}, '-set_serial', sprintf('0x%x', int(rand(2**31)) + 1),
                '-days', $days, '-sha256', '-extfile', $ext, '-out', $crt);
    } else {
        openssl($dir, 'x509', '-req', '-in', "$dir/$name.csr", '-signkey', $key,
                '-days', $days, '-sha256', '-extfile', $ext, '-out', $crt);
    }
    return { crt => $crt, key => $key, cn => $o{cn} };
}

# The test PKI in $dir:
#   ca          the test CA (ca.pem)
#   a, b        a.test and b.test (SAN DNS:a.test / DNS:b.test)
#   localhost   CN localhost, SAN DNS:localhost, IP:127.0.0.1
#   other_ca    an unrelated CA; other_localhost is a localhost cert it signed
#   garbage     a file that is not PEM; ca_bundle etc.
sub make_pki {
    my ($dir, %o) = @_;
    make_path($dir);
    my %p = (dir => $dir);
    my %k = $o{rsa} ? (rsa => $o{rsa}) : ();
    $p{ca_pair} = make_cert($dir, 'ca', undef, cn => 'tracegate test CA', ca => 1, %k);
    $p{ca} = $p{ca_pair}{crt};
    $p{a} = make_cert($dir, 'a.test', $p{ca_pair}, cn => 'a.test', san => 'DNS:a.test', %k);
    return \%p if $o{minimal};
    $p{b} = make_cert($dir, 'b.test', $p{ca_pair}, cn => 'b.test', san => 'DNS:b.test', %k);
    $p{localhost} = make_cert($dir, 'localhost', $p{ca_pair}, cn => 'localhost',
                              san => 'DNS:localhost,IP:127.0.0.1', %k);
    $p{other_ca_pair} = make_cert($dir, 'other-ca', undef, cn => 'another test CA', ca => 1, %k);
    $p{other_ca} = $p{other_ca_pair}{crt};
    $p{garbage} = "$dir/garbage.pem";
    TG::spew($p{garbage}, "-----BEGIN CERTIFICATE-----\nthis is not base64 at all !!!\n"
                        . "-----END CERTIFICATE-----\n");
    return \%p;
}

# Subject CN of a PEM certificate text.
sub cert_cn {
    my ($pem, $dir) = @_;
    my $f = "$dir/peer.$$." . int(rand(1e9)) . ".pem";
    TG::spew($f, $pem);
    my ($rc, $out) = run({ dir => $dir }, $OPENSSL, 'x509', '-in', $f, '-noout', '-subject');
    unlink $f;
    return $out =~ /CN\s*=\s*([^,\/\n]+)/ ? $1 : undef;
}

# One `openssl s_client` connection to 127.0.0.1:$port.  Options:
#   servername => NAME (default: none, -noservername), alpn => LIST,
#   proto => 'tls1' | 'tls1_1' | 'tls1_2' | 'tls1_3' (only that version;
#   tls1/tls1_1 lower the client's security level so that it really offers
#   them), request => BYTES (sent after the handshake; the client then
#   waits for the server to close: use Connection: close), sess_out => F,
#   sess_in => F, cafile => F, timeout => S (default 10), dir => scratch.
# Returns { rc, out, err, ok (handshake done), protocol ('TLSv1.3'),
#   cipher, subject_cn, alpn (undef if none), reused (0/1), verify (code),
#   response (what the server sent after the handshake, best effort) }.
sub s_client {
    my ($port, %o) = @_;
    my @a = ('s_client', '-connect', "127.0.0.1:$port");
    if (defined $o{servername}) { push @a, '-servername', $o{servername} }
    else { push @a, '-noservername' }
    push @a, '-alpn', $o{alpn} if defined $o{alpn};
    if ($o{proto}) {
        push @a, "-$o{proto}";
        push @a, '-cipher', 'DEFAULT@SECLEVEL=0' if $o{proto} =~ /^tls1(_1)?$/;
    }
    push @a, '-sess_out', $o{sess_out} if $o{sess_out};
    push @a, '-sess_in', $o{sess_in} if $o{sess_in};
    push @a, '-CAfile', $o{cafile} if $o{cafile};
    push @a, '-ign_eof' if defined $o{request};
    push @a, @{ $o{args} || [] };
    my ($rc, $out, $err) = run({ dir => $o{dir}, timeout => $o{timeout} // 10,
                                 stdin => $o{request} // '' }, $OPENSSL, @a);
    my %r = (rc => $rc, out => $out, err => $err);
    # "New, TLSv1.3, Cipher is X" or "Reused, TLSv1.2, Cipher is X"
    if ($out =~ /^(New|Reused), (TLSv[\d.]+|SSLv3), Cipher is (\S+)/m && $3 ne '(NONE)') {
        $r{ok} = 1;
        $r{reused} = $1 eq 'Reused' ? 1 : 0;
        $r{protocol} = $2;
        $r{cipher} = $3;
    } else {
        $r{ok} = 0;
    }
    $r{subject_cn} = $1 if $out =~ /^subject=.*?CN\s*=\s*([^,\/\n]+)/m;
    $r{alpn} = $1 if $out =~ /^ALPN protocol: (\S+)/m;
    $r{verify} = $1 if $out =~ /Verify return code: (\d+)/;
    $r{response} = $1 if $out =~ /(HTTP\/1\.[01] \d{3}.*)\z/s;
    return \%r;
}

# curl over TLS.  Options: cacert, resolve (HOST:PORT:ADDR), headers
# [[n, v]], method, data, timeout (10), extra [args], dir.
# Returns { rc, code, headers (raw), h { lc => [v] }, body, err, verbose }.
sub curl {
    my ($url, %o) = @_;
    my $dir = $o{dir} // "$TG::TMP/tls-run.$$";
    make_path($dir);
    my $n = int(rand(1e9));
    my ($hf, $bf) = ("$dir/curl$n.h", "$dir/curl$n.b");
    my @a = ($CURL, '-sS', '-v', '--max-time', $o{timeout} // 10, '-D', $hf,
             '-w', '%{http_code}');
    push @a, '--cacert', $o{cacert} if $o{cacert};
    push @a, '--resolve', $o{resolve} if $o{resolve};
    push @a, '-X', $o{method} if $o{method};
    push @a, '--data-binary', $o{data} if defined $o{data};
    push @a, '-H', "$_->[0]: $_->[1]" for @{ $o{headers} || [] };
    push @a, @{ $o{extra} || [] };
    # several URLs: the caller gives -o for all but the last one (curl pairs
    # the Nth -o with the Nth URL), the body of the last is returned
    push @a, ref $url ? @$url : $url;
    push @a, '-o', $bf;
    my ($rc, $out, $err) = run({ dir => $dir, timeout => ($o{timeout} // 10) + 5 }, @a);
    my %r = (rc => $rc, code => ($out =~ /(\d{3})\s*\z/ ? $1 + 0 : 0),
             headers => TG::slurp($hf) // '', body => TG::slurp($bf) // '',
             err => $err, verbose => $err);
    my %h;
    for my $l (split /\r?\n/, $r{headers}) {
        push @{ $h{lc $1} }, $2 if $l =~ /^([^:\s]+):\s*(.*?)\s*$/;
    }
    $r{h} = \%h;
    unlink $hf, $bf;
    return \%r;
}

sub curl_summary {
    my ($c) = @_;
    my $e = $c->{err};
    $e = join("\n", grep { /^(\*|curl:)/ } split /\n/, $e);
    return "curl rc $c->{rc}, HTTP $c->{code}; " . substr($c->{body}, 0, 300) . "\n" . TG::tail($e, 12);
}

1;
