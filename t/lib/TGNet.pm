package TGNet;

# Sockets of the tests: ports (free, refused, black-holed), the raw client
# connection TG::Conn (write, read a response with any framing) and the
# request helpers built on it (request/http_get, request_on, raw_exchange,
# parse_responses, hdr, summary).  Perl core modules only.

use strict;
use warnings;

use Digest::MD5;
use Exporter qw(import);
use IO::Socket::INET;
use Socket ();
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw($last_error untaken_socket free_port refused_port
                    blackhole_port port_accepts request http_get
                    build_request request_on raw_exchange parse_responses
                    hdr summary);

# why the last request() or request_on() gave no response
our $last_error;

$SIG{PIPE} = 'IGNORE';

# --------------------------------------------------------------------------
# ports

# Ports this test has handed out: a port given to a tracegate that has not
# bound it yet is free again as far as the kernel knows, and the next bind
# to port 0 (another free_port, a mock upstream) may get the same one.
my %TAKEN;

# Binds 127.0.0.1 with $make->($port) for port 0 until the kernel gives a
# port not handed out before in this test; the sockets it passed over stay
# bound until then, so each try gets another port.
sub untaken_socket {
    my ($what, $make) = @_;
    my @passed;
    for (1 .. 64) {
        my $s = $make->(0) or die "$what: $!";
        unless ($TAKEN{ $s->sockport }) {
            $TAKEN{ $s->sockport } = 1;
            return $s;
        }
        push @passed, $s;
    }
    die "$what: no port left that was not handed out already";
}

# A port that was free a moment ago on 127.0.0.1 (bind port 0, read it back),
# and not handed out before in this test.
sub free_port {
    my $s = untaken_socket('free_port', sub {
        IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $_[0],
                              Proto => 'tcp', ReuseAddr => 1) });
    my $p = $s->sockport;
    close $s;
    return $p;
}

# A port that refuses connections for as long as the returned socket lives:
# bound, never listening.  Returns ($port, $sock).
sub refused_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', ReuseAddr => 1)
        or die "refused_port: $!";
    return ($s->sockport, $s);
}

# A listener whose accept queue is full: connects to it hang in SYN-SENT
# (the kernel drops SYNs), which gives a connect timeout on loopback.
# Returns ($port, [$listener, @fillers]); keep the array alive.
sub blackhole_port {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 0, ReuseAddr => 1)
        or die "blackhole_port: $!";
    my $port = $l->sockport;
    my @keep = ($l);
    for (1 .. 8) {
        my $c = IO::Socket::INET->new(Proto => 'tcp', Blocking => 0) or last;
        $c->connect(Socket::pack_sockaddr_in($port, Socket::inet_aton('127.0.0.1')));
        push @keep, $c;
        sleep 0.05;
    }
    sleep 0.1;
    return ($port, \@keep);
}

# Can we connect to 127.0.0.1:$port within $timeout seconds?
sub port_accepts {
    my ($port, $timeout) = @_;
    $timeout //= 0.5;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => $timeout);
    return 0 unless $s;
    close $s;
    return 1;
}

# One request on a new connection; returns the response hash (see
# TG::Conn::read_response) or undef (diag says why).
#   http_get($port, $path, headers => [..] | "raw lines", method => 'GET',
#            body => STR, host => 'h', keepalive => 1, timeout => S, version => '1.1')
sub request {
    my ($port, $path, %o) = @_;
    my $c = TG::Conn->new($port) or do { $@ =~ s/\n//; $last_error = $@; return undef };
    my $r = request_on($c, $path, %o);
    $c->close unless $o{keep_conn};
    return $r;
}
sub http_get { return request(@_) }

sub build_request {
    my ($path, %o) = @_;
    my $m = $o{method} // 'GET';
    my $v = $o{version} // '1.1';
    my $req = "$m $path HTTP/$v\r\n";
    $req .= "Host: " . ($o{host} // 'tg.test') . "\r\n" unless $o{no_host};
    my $hs = $o{headers} // [];
    if (ref $hs) { $req .= "$_->[0]: $_->[1]\r\n" for @$hs }
    else { $req .= $hs; $req .= "\r\n" if length $hs && $hs !~ /\r\n\z/ }
    $req .= "Connection: close\r\n" unless $o{keepalive} || $v eq '1.0'
                                        || (!ref $hs && $hs =~ /^connection:/mi);
    if (defined $o{body} && !$o{no_cl}) {
        $req .= "Content-Length: " . length($o{body}) . "\r\n";
    }
    $req .= "\r\n";
    $req .= $o{body} if defined $o{body};
    return $req;
}

sub request_on {
    my ($c, $path, %o) = @_;
    my $req = build_request($path, %o);
    $c->write($req, $o{timeout} // 10);
    my $r = $c->read_response(timeout => $o{timeout} // 10,
                              head => ($o{method} // '') eq 'HEAD', %o);
    $last_error = $c->{error} unless $r;
    return $r;
}

# Sends $bytes on a new connection, reads until close or $timeout, and
# returns (raw, [parsed responses]).  heads => [0,1,..] says which responses
# answer HEAD requests.
sub raw_exchange {
    my ($port, $bytes, %o) = @_;
    my $c = TG::Conn->new($port) or return ('', []);
    $c->write($bytes, $o{timeout} // 10);
    my $raw = $c->read_all($o{timeout} // 10);
    $c->close;
    return ($raw, parse_responses($raw, %o));
}

sub parse_responses {
    my ($raw, %o) = @_;
    my $p = TG::Conn->from_bytes($raw);
    my @r;
    my @heads = @{ $o{heads} || [] };
    for my $i (0 .. 99) {
        last unless length $p->{buf};
        my $r = $p->read_response(timeout => 0, head => $heads[$i]) or last;
        push @r, $r;
    }
    return \@r;
}

# Header value (values joined with ", "), or undef.
sub hdr {
    my ($r, $name) = @_;
    return undef unless $r && $r->{h}{lc $name};
    return join(', ', @{ $r->{h}{lc $name} });
}

sub summary {
    my ($r) = @_;
    return 'no response (' . ($last_error // '?') . ')' unless $r;
    my $b = defined $r->{body} ? substr($r->{body}, 0, 200) : '';
    $b =~ s/\n/\\n/g;
    return "$r->{status} $r->{reason}; " . join('; ', map { "$_->[0]: $_->[1]" } @{ $r->{headers} })
         . "; body: $b";
}

# --------------------------------------------------------------------------
# raw HTTP client

package TG::Conn;

use Errno qw(EAGAIN EWOULDBLOCK EINTR ECONNRESET EPIPE);
use IO::Select;
use Socket qw(SOL_SOCKET SO_RCVBUF);
use Time::HiRes qw(time sleep);

# TG::Conn->new($port, rcvbuf => N, timeout => S) or undef ($@ says why)
sub new {
    my ($class, $port, %o) = @_;
    my $s = IO::Socket::INET->new(Proto => 'tcp', Blocking => 1);
    unless ($s) { $@ = "socket: $!"; return undef }
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, $o{rcvbuf}) if $o{rcvbuf};
    my $t = $o{timeout} // 3;
    my $ok = eval {
            local $SIG{ALRM} = sub { die "timeout\n" };
            Time::HiRes::alarm($t);
            my $r = connect($s, Socket::pack_sockaddr_in($port, Socket::inet_aton('127.0.0.1')));
            Time::HiRes::alarm(0);
            $r;
        };
    Time::HiRes::alarm(0);
    unless ($ok) { $@ = "connect 127.0.0.1:$port: " . ($@ || $!); return undef }
    $s->blocking(0);
    return bless { s => $s, buf => '', eof => 0, port => $port }, $class;
}

# A parser over fixed bytes (no socket): for parse_responses().
sub from_bytes {
    my ($class, $bytes) = @_;
    return bless { s => undef, buf => $bytes, eof => 1 }, $class;
}

sub sock { $_[0]{s} }

# Writes all of $data within $timeout (default 10 s); while waiting for
# writability it keeps reading into the buffer (so a proxy that answers early
# is seen).  Returns bytes written.
sub write {
    my ($self, $data, $timeout) = @_;
    my $s = $self->{s} or return 0;
    my $end = time + ($timeout // 10);
    my $off = 0;
    while ($off < length $data) {
        my $n = syswrite($s, $data, length($data) - $off, $off);
        if (defined $n) { $off += $n; next }
        if ($! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR) {
            my $left = $end - time;
            last if $left <= 0;
            my ($r, $w) = IO::Select::select(IO::Select->new($s), IO::Select->new($s), undef,
                                             $left < 0.2 ? $left : 0.2);
            $self->fill(0) if $r && @$r && !$self->{eof};
            next;
        }
        $self->{write_error} = "$!";
        last;
    }
    return $off;
}

# Reads what is available within $timeout into buf.  Returns bytes read;
# 0 on timeout; sets eof on EOF or reset.
sub fill {
    my ($self, $timeout) = @_;
    return 0 if $self->{eof};
    my $s = $self->{s} or do { $self->{eof} = 1; return 0 };
    my $sel = IO::Select->new($s);
    return 0 unless $sel->can_read($timeout);
    my $n = sysread($s, $self->{buf}, 262144, length $self->{buf});
    if (!defined $n) {
        return 0 if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
        $self->{eof} = 1;
        $self->{reset} = 1 if $! == ECONNRESET;
        return 0;
    }
    if ($n == 0) { $self->{eof} = 1; return 0 }
    return $n;
}

# Reads until EOF or $timeout; returns everything buffered (and clears it).
sub read_all {
    my ($self, $timeout) = @_;
    my $end = time + ($timeout // 5);
    while (!$self->{eof} && time < $end) { $self->fill($end - time) }
    return substr($self->{buf}, 0, length $self->{buf}, '');
}

# True when the peer closes the connection within $timeout seconds (bytes
# that arrive meanwhile are kept in $self->{extra}).
sub wait_closed {
    my ($self, $timeout) = @_;
    my $end = time + ($timeout // 3);
    while (!$self->{eof} && time < $end) {
        $self->fill($end - time);
        $self->{extra} .= substr($self->{buf}, 0, length $self->{buf}, '');
    }
    return $self->{eof} ? 1 : 0;
}

sub close {
    my ($self) = @_;
    close $self->{s} if $self->{s};
    $self->{s} = undef;
}

sub need {
    my ($self, $n, $end) = @_;
    while (length($self->{buf}) < $n) {
        return 0 if $self->{eof} || time >= $end;
        $self->fill($end - time);
    }
    return 1;
}

sub line {
    my ($self, $end) = @_;
    my $i;
    while (($i = index($self->{buf}, "\r\n")) < 0) {
        return undef if $self->{eof} || time >= $end;
        $self->fill($end - time);
    }
    return substr($self->{buf}, 0, $i + 2, '');
}

# Reads one response.  Options: timeout (10 s), head => 1 (request was HEAD),
# interim => 1 (return a 1xx instead of skipping it), sink => 1 (do not keep
# the body, only length and MD5), on_body => sub { $piece } (called for each
# piece), progress => sub { } (called at least every 0.2 s while reading).
# Returns a hash: status reason version headers [[n,v]] h {lc => [v]}
# body body_len body_md5 chunked chunks [sizes] close_delimited interim [..]
# raw_head; or undef with $self->{error} set ('timeout', 'eof', 'bad').
sub read_response {
    my ($self, %o) = @_;
    my $end = time + ($o{timeout} // 10);
    my @interim;
    for (1 .. 20) {
        my $i;
        while (($i = index($self->{buf}, "\r\n\r\n")) < 0) {
            if ($self->{eof}) {
                $self->{error} = length($self->{buf}) ? 'eof in headers' : 'eof';
                return undef;
            }
            if (time >= $end) { $self->{error} = 'timeout'; return undef }
            $self->fill($end - time > 0.2 ? 0.2 : $end - time);
            $o{progress}->() if $o{progress};
        }
        my $head = substr($self->{buf}, 0, $i + 4, '');
        my ($sl, @hl) = split /\r\n/, substr($head, 0, -4);
        my ($ver, $st, $reason) = $sl =~ m{^(HTTP/\d\.\d) (\d{3})(?: (.*))?$};
        unless ($ver) { $self->{error} = "bad status line: $sl"; return undef }
        my @hdrs = map { /^([^:]*):[ \t]*(.*?)[ \t]*$/ ? [$1, $2] : [$_, ''] } @hl;
        my %h;
        push @{ $h{lc $_->[0]} }, $_->[1] for @hdrs;
        my $r = { version => $ver, status => $st + 0, reason => $reason // '',
                  headers => \@hdrs, h => \%h, raw_head => $head, interim => \@interim };
        if ($st >= 100 && $st < 200) {
            return $r if $o{interim};
            push @interim, $r;
            next;
        }
        $self->read_body($r, $end, %o) or return undef;
        return $r;
    }
    $self->{error} = 'too many interim responses';
    return undef;
}

sub read_body {
    my ($self, $r, $end, %o) = @_;
    my $md5 = Digest::MD5->new;
    my $len = 0;
    my $body = '';
    my $last = time;
    my $take = sub {
        my ($p) = @_;
        $md5->add($p);
        $len += length $p;
        $body .= $p unless $o{sink};
        $o{on_body}->($p) if $o{on_body};
        if ($o{progress} && time - $last >= 0.2) { $o{progress}->(); $last = time }
    };
    my $h = $r->{h};
    my $st = $r->{status};
    my $te = lc join(',', @{ $h->{'transfer-encoding'} || [] });
    my @chunks;
    if ($o{head} || $st == 204 || $st == 304) {
        # no body
    } elsif ($te =~ /chunked/) {
        $r->{chunked} = 1;
        for (1 .. 100_000_000) {
            my $l = $self->line($end);
            unless (defined $l) { $self->{error} = 'eof/timeout in chunk size'; return 0 }
            my ($hex) = $l =~ /^([0-9a-fA-F]+)/;
            unless (defined $hex) { $self->{error} = "bad chunk line: $l"; return 0 }
            my $size = hex $hex;
            push @chunks, $size;
            if ($size == 0) {
                my $tr = '';
                for (1 .. 1000) {
                    my $t = $self->line($end);
                    unless (defined $t) { $self->{error} = 'eof/timeout in trailers'; return 0 }
                    last if $t eq "\r\n";
                    $tr .= $t;
                }
                $r->{trailers} = $tr;
                last;
            }
            my $left = $size;
            while ($left > 0) {
                unless (length $self->{buf}) {
                    if ($self->{eof} || time >= $end) {
                        $self->{error} = 'eof/timeout in chunk data'; return 0;
                    }
                    $self->fill($end - time > 0.2 ? 0.2 : $end - time);
                    $o{progress}->() if $o{progress};
                    next;
                }
                my $n = length($self->{buf}) < $left ? length($self->{buf}) : $left;
                $take->(substr($self->{buf}, 0, $n, ''));
                $left -= $n;
            }
            unless ($self->need(2, $end) && substr($self->{buf}, 0, 2, '') eq "\r\n") {
                $self->{error} = 'missing CRLF after chunk'; return 0;
            }
        }
    } elsif (defined $h->{'content-length'}) {
        my $left = $h->{'content-length'}[0] + 0;
        while ($left > 0) {
            unless (length $self->{buf}) {
                if ($self->{eof} || time >= $end) {
                    $r->{body_len} = $len; $r->{body} = $body;
                    $self->{error} = ($self->{eof} ? 'eof' : 'timeout') . " in body after $len bytes";
                    $self->{partial} = $r;
                    return 0;
                }
                $self->fill($end - time > 0.2 ? 0.2 : $end - time);
                $o{progress}->() if $o{progress};
                next;
            }
            my $n = length($self->{buf}) < $left ? length($self->{buf}) : $left;
            $take->(substr($self->{buf}, 0, $n, ''));
            $left -= $n;
        }
    } else {
        $r->{close_delimited} = 1;
        while (1) {
            $take->(substr($self->{buf}, 0, length $self->{buf}, '')) if length $self->{buf};
            last if $self->{eof};
            if (time >= $end) { $self->{error} = 'timeout in close-delimited body'; return 0 }
            $self->fill($end - time > 0.2 ? 0.2 : $end - time);
            $o{progress}->() if $o{progress};
        }
    }
    $r->{body} = $body unless $o{sink};
    $r->{body_len} = $len;
    $r->{body_md5} = $md5->hexdigest;
    $r->{chunks} = \@chunks;
    return 1;
}

1;
