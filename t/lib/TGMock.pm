package TGMock;

# The mock upstream: a forked HTTP/1.1 server (TG::Mock is its handle) and
# the echo it answers with by default (echo_text, parse_echo).  Perl core
# modules only.

use strict;
use warnings;

use Digest::MD5;
use Exporter qw(import);
use Fcntl qw(:DEFAULT);
use File::Path qw(make_path);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Socket qw(SOL_SOCKET SO_RCVBUF SO_SNDBUF SO_LINGER IPPROTO_TCP TCP_NODELAY);
use Errno qw(EINTR);
use Time::HiRes qw(time sleep);

use TGNet qw(untaken_socket);
use TGProc qw(%STARTED $IS_CHILD kill_proc);
use TGUtil qw($TMP slurp spew gen_stream);

our @EXPORT_OK = qw(mock_upstream mock_main append mock_fill mock_write
                    mock_conn mock_default echo_text mock_respond parse_echo);


# --------------------------------------------------------------------------
# mock upstream
#
# mock_upstream(name => 'a', handler => sub { my ($req) = @_; ... return {..} },
#               mode => 'normal'|'hang'|'blackhole'|'reset', port => N,
#               rcvbuf => N, sndbuf => N)
#
# A forked HTTP/1.1 server, one forked child per connection, keep-alive
# aware, reading Content-Length and chunked request bodies (streamed: MD5 and
# length, the body itself kept up to 1 MB).  The handler gets the request
# hash and returns a response spec (or undef for the default, query-driven
# behaviour):
#   status, reason, headers => [[n, v], ...], body => STR,
#   len => N (generated body, streamed), chunked => 1 (chunked framing),
#   chunks => [STR, ...] (explicit chunks), chunk_size => N, close => 1
#   (close-delimited: no length), delay => S (before the status line),
#   chunk_delay => S, hang => 1 (never answer), raw => BYTES (sent verbatim,
#   then close), rst => 1 (close with RST, nothing sent), no_cl => 1,
#   one_write => 1 (head and body => STR in one write, keep-alive).
# Default behaviour from the query string of the request target:
#   status=N len=N chunked=1 chunk_size=N close=1 delay=MS hang=1
#   partial=1 (close mid-headers) rst=1 garbage=1
#   otherwise 200 with the echo (see parse_echo) as body.
# State: $m->stats returns { conns => N, requests => N, bytes_out => N }.

sub mock_upstream {
    my (%o) = @_;
    my $name = $o{name} // 'mock';
    my $listen = sub {
        IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $_[0],
                              Proto => 'tcp', Listen => $o{backlog} // 128,
                              ReuseAddr => 1) };
    my $l = $o{port} ? $listen->($o{port})
                     : untaken_socket("mock_upstream($name): listen", $listen);
    $l or die "mock_upstream($name): listen: $!";
    setsockopt($l, SOL_SOCKET, SO_RCVBUF, $o{rcvbuf}) if $o{rcvbuf};
    my $port = $l->sockport;
    my $dir = "$TMP/mock.$$." . int(rand(1e6)) . ".$name.$port";
    make_path($dir);
    spew("$dir/conns", '');
    spew("$dir/requests", '');
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $IS_CHILD = 1;
        $SIG{PIPE} = 'IGNORE';
        eval { mock_main($l, $name, $port, $dir, \%o) };
        POSIX::_exit(0);
    }
    close $l;
    $STARTED{$pid} = { kind => 'mock', sig => 'TERM' };
    return bless { pid => $pid, port => $port, name => $name, dir => $dir }, 'TG::Mock';
}

sub mock_main {
    my ($l, $name, $port, $dir, $o) = @_;
    my %kids;
    my $stop = 0;
    $SIG{TERM} = sub { $stop = 1 };
    $SIG{INT}  = sub { $stop = 1 };
    my $ppid  = getppid();
    my $end   = time + ($o->{lifetime} // 600);
    my $connid = 0;
    my $sel = IO::Select->new($l);
    while (!$stop && time < $end) {
        while ((my $k = waitpid(-1, WNOHANG)) > 0) { delete $kids{$k} }
        last if getppid() != $ppid;
        next unless $sel->can_read(0.2);
        my $c = $l->accept or next;
        $connid++;
        append("$dir/conns", "$connid\n");
        my $k = fork;
        if (!defined $k) { close $c; next }
        if ($k == 0) {
            $SIG{TERM} = 'DEFAULT';
            $SIG{INT}  = 'DEFAULT';
            close $l;
            alarm($o->{lifetime} // 600);
            setsockopt($c, SOL_SOCKET, SO_SNDBUF, $o->{sndbuf}) if $o->{sndbuf};
            setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
            eval { mock_conn($c, $connid, $name, $dir, $o) };
            POSIX::_exit(0);
        }
        $kids{$k} = 1;
        close $c;
    }
    kill 'KILL', keys %kids;
    while (waitpid(-1, WNOHANG) > 0) { }
}

sub append {
    my ($f, $line) = @_;
    sysopen(my $fh, $f, O_WRONLY | O_APPEND | O_CREAT) or return;
    syswrite $fh, $line;
    close $fh;
}

# reads more bytes into $$buf; returns bytes read, 0 on EOF/error/timeout
sub mock_fill {
    my ($c, $buf, $timeout) = @_;
    my $sel = IO::Select->new($c);
    return 0 unless $sel->can_read($timeout);
    my $n = sysread($c, $$buf, 262144, length $$buf);
    return $n ? $n : 0;
}

sub mock_write {
    my ($c, $data) = @_;
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($c, $data, length($data) - $off, $off);
        if (!defined $n) { next if $! == EINTR; die "write: $!\n" }
        $off += $n;
    }
    return 1;
}

sub mock_conn {
    my ($c, $connid, $name, $dir, $o) = @_;
    my $mode = $o->{mode} // 'normal';
    my $idle = $o->{idle} // 120;
    if ($mode eq 'blackhole') {            # accept, never read
        sleep 1 while 1;
    }
    if ($mode eq 'reset') {                # accept, close with RST
        setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
        close $c;
        return;
    }
    my $buf = '';
    for my $reqno (1 .. 100000) {
        # request head
        my $hend;
        while (($hend = index($buf, "\r\n\r\n")) < 0) {
            return if length($buf) > 1048576;
            return unless mock_fill($c, \$buf, $idle);
        }
        my $head = substr($buf, 0, $hend + 4, '');
        my ($rl, @hl) = split /\r\n/, substr($head, 0, -4);
        my ($method, $uri, $version) = split / /, $rl // '', 3;
        $version //= '';
        my @hdrs = map { /^([^:]*):[ \t]*(.*?)[ \t]*$/ ? [$1, $2] : [$_, ''] } @hl;
        my %h;
        push @{ $h{lc $_->[0]} }, $_->[1] for @hdrs;
        my $req = { method => $method, uri => $uri, version => $version,
                    headers => \@hdrs, h => \%h, conn => $connid, req => $reqno,
                    name => $name };
        my ($path, $query) = split /\?/, $uri, 2;
        $req->{path} = $path;
        my %q = map { /^([^=]*)=?(.*)$/ ? ($1, $2) : () } split /&/, $query // '';
        $req->{q} = \%q;
        append("$dir/requests", "$connid $reqno $method $uri\n");

        if ($mode eq 'hang' || exists $q{hang}) {
            sleep 1 while 1;
        }
        if (($h{expect}[0] // '') =~ /^100-continue$/i && !$o->{no_100}) {
            mock_write($c, "HTTP/1.1 100 Continue\r\n\r\n");
        }
        # request body
        my $md5 = Digest::MD5->new;
        my ($blen, $body, @chunks) = (0, '');
        my $keep = sub {
            $md5->add($_[0]);
            $blen += length $_[0];
            $body .= $_[0] if length($body) < 1048576;
        };
        my $te = join(',', @{ $h{'transfer-encoding'} || [] });
        if ($te =~ /chunked/i) {
            $req->{chunked_body} = 1;
            for (1 .. 10_000_000) {
                my $le;
                while (($le = index($buf, "\r\n")) < 0) {
                    return unless mock_fill($c, \$buf, $idle);
                }
                my $line = substr($buf, 0, $le + 2, '');
                my ($hex) = $line =~ /^([0-9a-fA-F]+)/;
                return unless defined $hex;
                my $size = hex $hex;
                push @chunks, $size;
                if ($size == 0) {           # trailers until empty line
                    for (1 .. 1000) {
                        while (($le = index($buf, "\r\n")) < 0) {
                            return unless mock_fill($c, \$buf, $idle);
                        }
                        my $t = substr($buf, 0, $le + 2, '');
                        last if $t eq "\r\n";
                    }
                    last;
                }
                my $left = $size;
                while ($left > 0) {
                    if (!length $buf) {
                        return unless mock_fill($c, \$buf, $idle);
                    }
                    my $n = length($buf) < $left ? length($buf) : $left;
                    $keep->(substr($buf, 0, $n, ''));
                    $left -= $n;
                }
                while (length($buf) < 2) {
                    return unless mock_fill($c, \$buf, $idle);
                }
                return unless substr($buf, 0, 2, '') eq "\r\n";
            }
        } elsif (defined $h{'content-length'}) {
            my $left = $h{'content-length'}[0] + 0;
            while ($left > 0) {
                if (!length $buf) {
                    return unless mock_fill($c, \$buf, $idle);
                }
                my $take = length($buf) < $left ? length($buf) : $left;
                $keep->(substr($buf, 0, $take, ''));
                $left -= $take;
            }
        }
        $req->{body} = $body;
        $req->{body_len} = $blen;
        $req->{body_md5} = $md5->hexdigest;
        $req->{chunks} = \@chunks;

        my $r = $o->{handler} ? $o->{handler}->($req) : undef;
        $r //= mock_default($req);
        my $close = mock_respond($c, $req, $r, $dir);
        my $cl = lc join(',', @{ $h{connection} || [] });
        $close = 1 if $cl =~ /\bclose\b/;
        $close = 1 if $version eq 'HTTP/1.0' && $cl !~ /keep-alive/;
        if ($close) {
            shutdown($c, 1);
            # linger a moment so that the peer reads everything
            my $junk = '';
            for (1 .. 20) { last unless mock_fill($c, \$junk, 0.1); $junk = '' }
            close $c;
            return;
        }
    }
}

sub mock_default {
    my ($req) = @_;
    my $q = $req->{q};
    my $r = {};
    $r->{status} = $q->{status} if $q->{status};
    $r->{delay} = $q->{delay} / 1000 if $q->{delay};
    $r->{close} = 1 if $q->{close};
    $r->{chunked} = 1 if $q->{chunked};
    $r->{chunk_size} = $q->{chunk_size} if $q->{chunk_size};
    $r->{chunk_delay} = $q->{chunk_delay} / 1000 if $q->{chunk_delay};
    $r->{rst} = 1 if exists $q->{rst};
    $r->{raw} = "HTTP/1.1 200 OK\r\nContent-Le" if exists $q->{partial};
    $r->{raw} = "this is not http\r\n\r\n" if exists $q->{garbage};
    if (defined $q->{len}) { $r->{len} = $q->{len} + 0 }
    else { $r->{body} = echo_text($req) }
    return $r;
}

sub echo_text {
    my ($req) = @_;
    my $t = "method $req->{method}\nuri $req->{uri}\nversion $req->{version}\n"
          . "upstream $req->{name}\nconn $req->{conn}\nreq $req->{req}\n"
          . "body_len $req->{body_len}\nbody_md5 $req->{body_md5}\n";
    $t .= "chunks " . join(',', @{ $req->{chunks} }) . "\n" if $req->{chunked_body};
    $t .= "body " . unpack('H*', $req->{body}) . "\n" if length($req->{body}) <= 4096;
    $t .= "h $_->[0]: $_->[1]\n" for @{ $req->{headers} };
    return $t;
}

# Sends the response described by $r; returns 1 when the connection must be
# closed afterwards.
sub mock_respond {
    my ($c, $req, $r, $dir) = @_;
    sleep $r->{delay} if $r->{delay};
    if ($r->{rst}) {
        setsockopt($c, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
        close $c;
        POSIX::_exit(0);
    }
    if (defined $r->{raw}) {
        mock_write($c, $r->{raw});
        return 1;
    }
    if ($r->{hang}) { sleep 1 while 1 }
    my $status = $r->{status} // 200;
    my %reasons = (200 => 'OK', 201 => 'Created', 204 => 'No Content',
                   304 => 'Not Modified', 404 => 'Not Found', 500 => 'Internal Server Error');
    my $reason = $r->{reason} // $reasons{$status} // 'Whatever';
    my $head = "HTTP/1.1 $status $reason\r\n"
             . "Server: tg-mock\r\n"
             . "X-Upstream: $req->{name}\r\n"
             . "X-Mock-Conn: $req->{conn}\r\n"
             . "X-Mock-Req: $req->{req}\r\n";
    $head .= "$_->[0]: $_->[1]\r\n" for @{ $r->{headers} || [] };
    my $nobody = $req->{method} eq 'HEAD' || $status == 204 || $status == 304
              || ($status >= 100 && $status < 200);
    my $len = defined $r->{len} ? $r->{len} : length($r->{body} // '');
    my $chunks = $r->{chunks};
    my $chunked = $r->{chunked} || $chunks;
    if ($status == 204 || $status == 304) {
        # no framing headers
    } elsif ($r->{close}) {
        $head .= "Connection: close\r\n";
    } elsif ($chunked) {
        $head .= "Transfer-Encoding: chunked\r\n";
    } elsif (!$r->{no_cl}) {
        $head .= "Content-Length: $len\r\n";
    }
    $head .= "Content-Type: " . ($r->{ctype} // 'text/plain') . "\r\n" unless $status == 204 || $status == 304;
    $head .= "\r\n";
    if ($r->{one_write} && !$chunked && !defined $r->{len}) {
        # head and body in one write, as servers do for small bodies
        mock_write($c, $head . ($nobody ? '' : $r->{body} // ''));
        spew("$dir/bytes_out", $nobody ? 0 : length($r->{body} // ''));
        return $r->{close} ? 1 : 0;
    }
    mock_write($c, $head);
    return ($r->{close} ? 1 : 0) if $nobody;
    my $bytes = 0;
    my $last = time;
    my $out = sub {
        my ($d) = @_;
        mock_write($c, $chunked ? sprintf("%x\r\n", length $d) . $d . "\r\n" : $d);
        $bytes += length $d;
        if (time - $last > 0.05) { spew("$dir/bytes_out", $bytes); $last = time }
        sleep $r->{chunk_delay} if $r->{chunk_delay};
        return 1;
    };
    if ($chunks) {
        $out->($_) for @$chunks;
    } elsif (defined $r->{len}) {
        gen_stream($r->{len}, $out, $r->{chunk_size});
    } elsif ($chunked && $r->{chunk_size}) {
        my $b = $r->{body} // '';
        $out->(substr($b, 0, $r->{chunk_size}, '')) while length $b;
    } elsif (length($r->{body} // '')) {
        $out->($r->{body});
    }
    mock_write($c, "0\r\n" . ($r->{trailers} // '') . "\r\n") if $chunked;
    spew("$dir/bytes_out", $bytes);
    return $r->{close} ? 1 : 0;
}

# Parses the echo body of the mock: { method, uri, version, upstream, conn,
# req, body_len, body_md5, chunks, body, headers => [[n, v]..],
# h => { lc name => [values] } }.
sub parse_echo {
    my ($text) = @_;
    return undef unless defined $text && $text =~ /^method /;
    my %e = (headers => [], h => {});
    for my $l (split /\n/, $text) {
        if ($l =~ /^h ([^:]*): (.*)$/) {
            push @{ $e{headers} }, [$1, $2];
            push @{ $e{h}{lc $1} }, $2;
        } elsif ($l =~ /^(\S+) ?(.*)$/) {
            $e{$1} = $2;
        }
    }
    $e{body} = pack('H*', $e{body}) if defined $e{body};
    return \%e;
}

package TG::Mock;

sub port { $_[0]{port} }

sub stats {
    my ($self) = @_;
    my $c = TGUtil::slurp("$self->{dir}/conns") // '';
    my $r = TGUtil::slurp("$self->{dir}/requests") // '';
    my $b = TGUtil::slurp("$self->{dir}/bytes_out") // 0;
    my @c = split /\n/, $c;
    my @r = split /\n/, $r;
    return { conns => scalar(@c), requests => scalar(@r), bytes_out => $b + 0,
             request_log => \@r };
}

sub reset_stats {
    my ($self) = @_;
    TGUtil::spew("$self->{dir}/conns", '');
    TGUtil::spew("$self->{dir}/requests", '');
    unlink "$self->{dir}/bytes_out";
}

sub stop {
    my ($self) = @_;
    TGProc::kill_proc($self->{pid}, 'TERM', 3) if $self->{pid};
    delete $self->{pid};
}
1;
