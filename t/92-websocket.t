#!/usr/bin/perl
# WebSocket and other Upgrade tunnels (issue 6 item 3, README "Upgrade
# tunnels (WebSocket)"): an RFC 6455 echo server written here (handshake with
# Sec-WebSocket-Accept via Digest::SHA, masked client frames parsed and echoed
# unmasked, streamed so that backpressure reaches the client) behind a route.
# A client upgrades through the proxy (101, Upgrade, Connection, the accept
# key), sends a frame together with the upgrade request, exchanges frames of
# many sizes (one of 200 KB, over 64 KiB), a ping, and a close that comes
# back, then the connection ends. Also: bytes the upstream sends with its 101,
# the upstream closing first, the client vanishing (the upstream sees EOF),
# nobody reading (memory stays bounded, nothing lost), tunnel_timeout = 1s
# closing an idle tunnel and not an active one, an upstream that refuses the
# upgrade (200 reaches the client, then the connection closes), and the
# SERVER and CLIENT spans: they end when the tunnel closes and carry status
# 101 and the bytes each way (http.request.body.size / http.response.body.size).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::MD5 qw(md5_hex);
use Digest::SHA qw(sha1);
use MIME::Base64 qw(encode_base64);
use IO::Select;
use IO::Socket::INET;
use JSON::PP ();
use POSIX ();
use Errno qw(EAGAIN EWOULDBLOCK EINTR);
use Test::More;
use Time::HiRes qw(time sleep);
use TG;
use TGTrace;
TG::need_modules(qw(otlp));

TGTrace::clean_env();

my $GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
sub accept_key { return encode_base64(sha1($_[0] . $GUID), '') }

# ---------------------------------------------------------------------------
# frames

# A frame as a client sends it (masked) or a server (unmasked).
sub frame {
    my ($op, $payload, %o) = @_;
    my $fin = exists $o{fin} ? $o{fin} : 1;
    my $mask = $o{masked};
    my $len = length $payload;
    my $h = chr(($fin ? 0x80 : 0) | $op);
    my $m = $mask ? 0x80 : 0;
    if ($len < 126) { $h .= chr($m | $len) }
    elsif ($len < 65536) { $h .= chr($m | 126) . pack('n', $len) }
    else { $h .= chr($m | 127) . pack('Q>', $len) }
    return $h . $payload unless $mask;
    my $key = pack('N', int(rand(2**32)));
    return $h . $key . xor_mask($payload, $key, 0);
}

sub xor_mask {
    my ($data, $key, $off) = @_;
    my $k = substr($key x 2, $off % 4, 4);
    my $l = length $data;
    return $data ^ substr($k x (int($l / 4) + 1), 0, $l);
}

# Parses one frame from the front of $$buf: (fin, op, payload, masked) or ()
# when incomplete.  Removes it from $$buf.
sub parse_frame {
    my ($buf) = @_;
    return () if length($$buf) < 2;
    my ($b0, $b1) = unpack('CC', $$buf);
    my $len = $b1 & 0x7f;
    my $masked = $b1 & 0x80;
    my $off = 2;
    if ($len == 126) { return () if length($$buf) < 4; $len = unpack('n', substr($$buf, 2, 2)); $off = 4 }
    elsif ($len == 127) { return () if length($$buf) < 10; $len = unpack('Q>', substr($$buf, 2, 8)); $off = 10 }
    my $key = '';
    if ($masked) { return () if length($$buf) < $off + 4; $key = substr($$buf, $off, 4); $off += 4 }
    return () if length($$buf) < $off + $len;
    my $p = substr($$buf, $off, $len);
    substr($$buf, 0, $off + $len, '');
    $p = xor_mask($p, $key, 0) if $masked;
    return ($b0 & 0x80 ? 1 : 0, $b0 & 0x0f, $p, $masked ? 1 : 0);
}

# ---------------------------------------------------------------------------
# the echo server (forked; one child per connection)
#
# GET /ws/echo...    101, then echoes every data frame (streamed: the echo
#                    header goes out when the client's header is in, payload
#                    bytes as they arrive), ping -> pong, close -> close back,
#                    then closes.
# GET /ws/hello...   101 and a text frame "hello from upstream" in the same write.
# GET /ws/bye...     101, one text frame "bye", a close frame 1001, closes.
# GET /ws/refuse...  200 with a body, no upgrade.
# Per connection N it writes DIR/req-N (the request head) and DIR/end-N
# ("in BYTES out BYTES why REASON": frame bytes read after the head, bytes
# written after the 101 head, and how it ended).

my $wsdir = "$TG::TMP/92-ws.$$." . int(rand(1e6));
File::Path::make_path($wsdir);

sub ws_server {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Proto => 'tcp',
                                  Listen => 64, ReuseAddr => 1) or die "listen: $!";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $TG::IS_CHILD = 1;
        $SIG{PIPE} = 'IGNORE';
        my $n = 0;
        my $end = time + 300;
        my $ppid = getppid();
        my $sel = IO::Select->new($l);
        while (time < $end && getppid() == $ppid) {
            1 while waitpid(-1, POSIX::WNOHANG()) > 0;
            next unless $sel->can_read(0.2);
            my $c = $l->accept or next;
            $n++;
            my $k = fork;
            if (defined $k && $k == 0) {
                close $l;
                alarm 120;
                eval { ws_conn($c, $n) };
                TG::spew("$wsdir/error-$n", $@) if $@;
                POSIX::_exit(0);
            }
            close $c;
        }
        POSIX::_exit(0);
    }
    $TG::STARTED{$pid} = { kind => 'mock', sig => 'TERM' };
    return { port => $l->sockport, pid => $pid };
}

sub ws_conn {
    my ($c, $n) = @_;
    my ($in, $out) = (0, 0);
    my $buf = '';
    my $fill = sub {
        my $got = sysread($c, $buf, 262144, length $buf);
        return $got if $got;
        return 0;
    };
    my $put = sub {
        my ($d) = @_;
        my $off = 0;
        while ($off < length $d) {
            my $w = syswrite($c, $d, length($d) - $off, $off);
            if (!defined $w) { next if $! == EINTR; die "write: $!\n" }
            $off += $w;
        }
        $out += length $d;
    };
    my $finish = sub {
        my ($why) = @_;
        TG::spew("$wsdir/end-$n", "in $in out $out why $why\n");
    };
    my $i;
    while (($i = index($buf, "\r\n\r\n")) < 0) {
        $fill->() or return $finish->('eof in head');
    }
    my $head = substr($buf, 0, $i + 4, '');
    $in = length $buf;
    TG::spew("$wsdir/req-$n", $head);
    my ($path) = $head =~ m{^GET (\S+) HTTP/1\.1\r\n};
    my ($key) = $head =~ /^Sec-WebSocket-Key:\s*(\S+)\r$/mi;
    if (!defined $path || $path =~ m{^/ws/refuse}) {
        my $body = "no upgrade here\n";
        syswrite $c, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                   . "Content-Length: " . length($body) . "\r\n\r\n$body";
        sleep 3;   # keep the connection: the proxy must close the client's
        return $finish->('refused');
    }
    unless ($key && $head =~ /^Upgrade:\s*websocket\r$/mi && $head =~ /^Connection:.*\bupgrade\b/mi) {
        syswrite $c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        return $finish->('not an upgrade');
    }
    my $proto = $path =~ m{^/ws/other} ? "Upgrade: h2c\r\n"
              : $path =~ m{^/ws/none} ? '' : "Upgrade: websocket\r\n";
    my $resp = "HTTP/1.1 101 Switching Protocols\r\n${proto}Connection: Upgrade\r\n"
             . "Sec-WebSocket-Accept: " . accept_key($key) . "\r\n\r\n";
    if ($path =~ m{^/ws/hello}) {
        syswrite $c, $resp . frame(1, 'hello from upstream');
        $out += length(frame(1, 'hello from upstream'));
    } elsif ($path =~ m{^/ws/bye}) {
        syswrite $c, $resp;
        $put->(frame(1, 'bye') . frame(8, pack('n', 1001) . 'going away'));
        shutdown($c, 1);
        my $junk = '';
        for (1 .. 30) { last unless sysread($c, $junk, 65536) }   # until the proxy closes
        return $finish->('server closed');
    } else {
        syswrite $c, $resp;
    }
    # the frame loop, streaming payloads
    while (1) {
        # header
        my ($b0, $b1, $len, $hl);
        while (1) {
            if (length($buf) >= 2) {
                ($b0, $b1) = unpack('CC', $buf);
                $len = $b1 & 0x7f;
                $hl = 2 + ($len == 126 ? 2 : $len == 127 ? 8 : 0) + ($b1 & 0x80 ? 4 : 0);
                last if length($buf) >= $hl;
            }
            my $got = $fill->();
            unless ($got) { return $finish->('eof') }
            $in += $got;
        }
        if ($len == 126) { $len = unpack('n', substr($buf, 2, 2)) }
        elsif ($len == 127) { $len = unpack('Q>', substr($buf, 2, 8)) }
        die "unmasked client frame\n" unless $b1 & 0x80;
        my $mkey = substr($buf, $hl - 4, 4);
        substr($buf, 0, $hl, '');
        my $op = $b0 & 0x0f;
        if ($op >= 8) {       # control frames: whole
            while (length($buf) < $len) {
                my $got = $fill->() or return $finish->('eof');
                $in += $got;
            }
            my $p = xor_mask(substr($buf, 0, $len, ''), $mkey, 0);
            if ($op == 9) { $put->(frame(10, $p)); next }
            if ($op == 10) { next }
            if ($op == 8) {
                $put->(frame(8, $p));
                shutdown($c, 1);
                my $junk = '';
                for (1 .. 30) { last unless sysread($c, $junk, 65536) }
                return $finish->('close');
            }
            next;
        }
        # data frame: echo header now, payload as it arrives
        my $eh = frame($op, '', fin => $b0 & 0x80);
        $eh = substr($eh, 0, 1) . ($len < 126 ? chr($len) : $len < 65536 ? chr(126) . pack('n', $len)
                                                          : chr(127) . pack('Q>', $len));
        $put->($eh);
        my $done = 0;
        while ($done < $len) {
            unless (length $buf) {
                my $got = $fill->() or return $finish->('eof in payload');
                $in += $got;
            }
            my $take = length($buf) < $len - $done ? length($buf) : $len - $done;
            $put->(xor_mask(substr($buf, 0, $take, ''), $mkey, $done));
            $done += $take;
        }
    }
}

# ---------------------------------------------------------------------------
# the client side

sub ws_key { return encode_base64(join('', map { chr(int(rand(256))) } 1 .. 16), '') }

sub upgrade_request {
    my ($path, $key, %o) = @_;
    return "GET $path HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         . "Sec-WebSocket-Key: $key\r\nSec-WebSocket-Version: 13\r\n"
         . "Origin: http://ws.test\r\nUser-Agent: tg-92-websocket\r\n\r\n";
}

# Reads the response head on $c (a TG::Conn); returns the parsed response
# (no body) or undef.
sub read_head {
    my ($c, $timeout) = @_;
    my $end = time + ($timeout // 5);
    my $i;
    while (($i = index($c->{buf}, "\r\n\r\n")) < 0) {
        return undef if $c->{eof} || time >= $end;
        $c->fill($end - time);
    }
    my $head = substr($c->{buf}, 0, $i + 4, '');
    my ($sl, @hl) = split /\r\n/, substr($head, 0, -4);
    my ($st) = $sl =~ m{^HTTP/1\.1 (\d{3})} or return undef;
    my %h;
    push @{ $h{lc $1} }, $2 for map { /^([^:]*):\s*(.*?)\s*$/ ? [$1, $2] : () } @hl;
    my %hh;
    for (@hl) { push @{ $hh{lc $1} }, $2 if /^([^:]*):\s*(.*?)\s*$/ }
    return { status => $st + 0, h => \%hh, raw_head => $head };
}

# Next frame from the server within $timeout: (fin, op, payload) or ().
sub read_frame {
    my ($c, $timeout, $stats) = @_;
    my $end = time + ($timeout // 5);
    while (1) {
        my $before = length $c->{buf};
        my @f = parse_frame(\$c->{buf});
        if (@f) {
            $stats->{rx} += $before - length($c->{buf}) if $stats;
            return @f;
        }
        return () if $c->{eof} || time >= $end;
        $c->fill($end - time > 0.2 ? 0.2 : $end - time);
    }
}

# Opens a tunnel through $port to $path, sending $first (frames) together
# with the request.  Returns ($conn, $response head, $key, $stats).
sub open_ws {
    my ($port, $path, $first) = @_;
    my $c = TG::Conn->new($port) or return;
    my $key = ws_key();
    my $req = upgrade_request($path, $key);
    my $stats = { tx => length($first // ''), rx => 0 };
    $c->write($req . ($first // ''));
    my $r = read_head($c, 5);
    return ($c, $r, $key, $stats);
}

sub send_frames {
    my ($c, $stats, @frames) = @_;
    my $d = join '', @frames;
    my $n = $c->write($d, 30);
    $stats->{tx} += $n;
    return $n == length $d;
}

# ---------------------------------------------------------------------------

my $ws = ws_server();
my $t = TG->new('92-websocket');
my $conf = $t->main_conf("client_max_body_size = 0\n") . <<"CONF";
[upstream ws]
server = 127.0.0.1:$ws->{port}

[route /ws]
upstream = ws

[trace]

[otlp]
exporter = file
schedule_delay = 100ms
CONF
$t->write_conf($conf);
$t->start_ok;
my $port = $t->{port};
my $spans = "$t->{dir}/logs/spans.jsonl";

# end-N only: the mock writes end-N.tmpPID first and renames it
sub ends { my @e = glob("$wsdir/end-*"); return { map { /end-(\d+)$/ ? ($1 => TG::slurp($_)) : () } @e } }
sub latest_conn { my @r = map { /req-(\d+)$/ ? $1 : () } glob("$wsdir/req-*"); my @s = sort { $a <=> $b } @r; return $s[-1] }

# --- a client that waits for the 101 before sending anything (as browsers do) ---
{
    my $t0 = time;
    my ($wc, $wr, $wk, $wst) = open_ws($port, '/ws/echo-wait', undef);
    my $took = time - $t0;
    is($wr && $wr->{status}, 101, 'a 101 with nothing after it reaches a client that sent nothing yet');
    if ($wr) {
        cmp_ok($took, '<', 1, sprintf('... at once (%.2f s)', $took));
        send_frames($wc, $wst, frame(1, 'after waiting', masked => 1));
        my @g = read_frame($wc, 3, $wst);
        is($g[2], 'after waiting', '... and the tunnel then echoes');
    } else {
        fail(sprintf('... at once (%.2f s)', $took));
        fail('... and the tunnel then echoes');
    }
    $wc->close if $wc;
}

# --- the echo exchange --------------------------------------------------------
my $first = frame(1, 'sent together with the upgrade request', masked => 1);
my ($c, $r, $key, $st) = open_ws($port, '/ws/echo?n=1', $first);
my $t_open = time;
ok($r, 'upgrade: a response head arrives') or BAIL_OUT('no 101: ' . ($c ? $c->{buf} : 'no connection'));
is($r->{status}, 101, 'upgrade: 101 Switching Protocols');
is(lc join(',', @{ $r->{h}{upgrade} || [] }), 'websocket', 'upgrade: Upgrade: websocket');
like(join(',', @{ $r->{h}{connection} || [] }), qr/^upgrade$/i, 'upgrade: Connection: upgrade');
is_deeply($r->{h}{'sec-websocket-accept'}, [accept_key($key)], 'upgrade: the Sec-WebSocket-Accept key matches ours');
is(TG::hdr($r, 'Content-Length'), undef, 'upgrade: no Content-Length added to the 101');
is(TG::hdr($r, 'Transfer-Encoding'), undef, 'upgrade: no Transfer-Encoding added to the 101');
my $conn_id = latest_conn();
my $uphead = TG::slurp("$wsdir/req-$conn_id") // '';
like($uphead, qr/^Upgrade: websocket\r$/mi, 'the upstream got Upgrade: websocket');
like($uphead, qr/^Connection: upgrade\r$/mi, 'the upstream got Connection: upgrade');
like($uphead, qr/^Sec-WebSocket-Key: \Q$key\E\r$/mi, 'the upstream got our Sec-WebSocket-Key');
like($uphead, qr/^Sec-WebSocket-Version: 13\r$/mi, 'the upstream got Sec-WebSocket-Version');
like($uphead, qr/^traceparent: 00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]\r$/mi, 'the upstream got a traceparent');

my @f = read_frame($c, 5, $st);
is($f[2], 'sent together with the upgrade request', 'the frame sent with the upgrade request is echoed');
is($f[1], 1, '... as a text frame');

# several frames both ways, sizes around the length encodings and over 64 KiB
my @sizes = (0, 1, 125, 126, 127, 1000, 65535, 65536, 200_000, 3);
my @payloads = map { my $n = $_; join('', map { chr(97 + ($_ * 7 + $n) % 26) } 1 .. $n) } @sizes;
ok(send_frames($c, $st, map { frame(1, $_, masked => 1) } @payloads), 'ten text frames sent in one go');
my $all_ok = 1;
for my $i (0 .. $#sizes) {
    my @g = read_frame($c, 10, $st);
    unless (@g && $g[1] == 1 && $g[2] eq $payloads[$i] && $g[0] == 1) {
        $all_ok = 0;
        diag("frame $i ($sizes[$i] bytes): got " . (@g ? "op $g[1] len " . length($g[2]) : 'nothing'));
    }
}
ok($all_ok, 'all ten echoes arrive intact, in order (0 .. 200000 bytes)');

# binary, fragmented, ping
my $bin = join '', map { chr($_ % 256) } 0 .. 70_000;
send_frames($c, $st, frame(2, $bin, masked => 1));
@f = read_frame($c, 10, $st);
is($f[1], 2, 'a 70001-byte binary frame is echoed as binary');
ok(($f[2] // '') eq $bin, 'a 70001-byte binary frame is echoed intact')
    or diag('got ' . length($f[2] // '') . ' bytes');
send_frames($c, $st, frame(1, 'frag-1 ', masked => 1, fin => 0), frame(0, 'frag-2', masked => 1));
my @a1 = read_frame($c, 5, $st);
my @a2 = read_frame($c, 5, $st);
is_deeply([@a1[0, 1], @a2[0, 1]], [0, 1, 1, 0],
          'a fragmented message comes back as sent: text without FIN, then continuation with FIN');
is(($a1[2] // '') . ($a2[2] // ''), 'frag-1 frag-2', 'a fragmented message comes back as sent: the payload');
send_frames($c, $st, frame(9, 'ping-payload', masked => 1));
@f = read_frame($c, 5, $st);
is($f[1], 10, 'ping -> pong');
is($f[2], 'ping-payload', 'pong carries the ping\'s payload');

# the spans must not be out while the tunnel is open
sleep 0.6;
my @open_spans = grep { ($_->{attributes}{'url.path'} // '') eq '/ws/echo' } TGTrace::file_spans($spans);
is(scalar(@open_spans), 0, 'no span of the tunnel is exported while it is open');

# close
send_frames($c, $st, frame(8, pack('n', 1000) . 'bye', masked => 1));
@f = read_frame($c, 5, $st);
is($f[1], 8, 'close -> a close frame comes back');
is($f[2], pack('n', 1000) . 'bye', 'the close frame carries code 1000 and the reason');
ok($c->wait_closed(3), 'then the proxy closes the client connection');
is(length($c->{extra} // ''), 0, 'nothing after the close frame');
my $t_closed = time;
$c->close;
ok(TG::wait_for(3, sub { ends()->{$conn_id} }), 'the upstream side of the tunnel ended');
like(ends()->{$conn_id} // '', qr/why close/, 'the upstream ended on the close frame');
my ($srv_in, $srv_out) = (ends()->{$conn_id} // '') =~ /in (\d+) out (\d+)/;
is($srv_in, $st->{tx}, "the upstream read exactly the bytes the client sent after the request ($st->{tx})");
is($srv_out, $st->{rx}, "the client read exactly the bytes the upstream sent after the 101 ($st->{rx})");

# spans: SERVER and CLIENT of the tunnel, ended at close, with byte counts
{
    my (@s, $srv, $cli);
    TG::wait_for(5, sub {
        @s = TGTrace::file_spans($spans);
        ($srv) = grep { $_->{kind} == 2 && ($_->{attributes}{'url.path'} // '') eq '/ws/echo' } @s;
        ($cli) = grep { $_->{kind} == 3 && $srv && $_->{parent_span_id} eq $srv->{span_id} } @s if $srv;
        $srv && $cli;
    });
    ok($srv, 'SERVER span of the tunnel exported after the close');
    ok($cli, 'CLIENT span of the tunnel exported, child of the SERVER span');
    my $sa = $srv ? $srv->{attributes} : {};
    my $ca = $cli ? $cli->{attributes} : {};
    is($sa->{'http.response.status_code'}, 101, 'SERVER span: http.response.status_code 101');
    is($sa->{'http.request.body.size'}, $st->{tx}, 'SERVER span: http.request.body.size = bytes client -> upstream');
    is($sa->{'http.response.body.size'}, $st->{rx}, 'SERVER span: http.response.body.size = bytes upstream -> client');
    isnt($srv && $srv->{status}, 2, 'SERVER span: not an error');
    is($ca->{'http.response.status_code'}, 101, 'CLIENT span: http.response.status_code 101');
    is($ca->{'http.request.body.size'}, $st->{tx}, 'CLIENT span: http.request.body.size = bytes sent upstream');
    is($ca->{'http.response.body.size'}, $st->{rx}, 'CLIENT span: http.response.body.size = bytes received');
    ok(!defined $ca->{'error.type'}, 'CLIENT span: no error.type') or diag("error.type $ca->{'error.type'}");
    my %d = span_durations($spans);
    my $open_for = $t_closed - $t_open;
    for my $x (['SERVER', $srv], ['CLIENT', $cli]) {
        next unless $x->[1];
        my $dur = $d{$x->[1]{span_id}} // 0;
        my $lasts = sprintf("%s span lasts as long as the tunnel (%.2f s; the tunnel was open %.2f s)",
                            $x->[0], $dur, $open_for);
        cmp_ok($dur, '>=', 0.6, $lasts);
        cmp_ok($dur, '<=', $open_for + 1, $lasts);
    }
}

sub span_durations {
    my ($file) = @_;
    my %d;
    open my $fh, '<', $file or return ();
    while (my $l = <$fh>) {
        my $j = eval { JSON::PP->new->decode($l) } or next;
        for my $rs (@{ $j->{resourceSpans} || [] }) {
            for my $ss (@{ $rs->{scopeSpans} || [] }) {
                for my $sp (@{ $ss->{spans} || [] }) {
                    $d{$sp->{spanId}} = ($sp->{endTimeUnixNano} - $sp->{startTimeUnixNano}) / 1e9;
                }
            }
        }
    }
    return %d;
}

# --- bytes that come with the 101 ------------------------------------------
($c, $r, $key, $st) = open_ws($port, '/ws/hello');
is($r && $r->{status}, 101, '/ws/hello: 101');
@f = read_frame($c, 5, $st);
is($f[2], 'hello from upstream', 'a frame the upstream sent together with its 101 reaches the client');
send_frames($c, $st, frame(1, 'after hello', masked => 1));
@f = read_frame($c, 5, $st);
is($f[2], 'after hello', 'and the tunnel works both ways afterwards');
$c->close;     # the client vanishes without a close frame
my $hid = latest_conn();
ok(TG::wait_for(3, sub { ends()->{$hid} }), 'the client vanishing closes the upstream side too');
like(ends()->{$hid} // '', qr/why eof/, '... the upstream saw EOF');

# --- a 101 that switches to something else than what was asked: 502 --------
for my $case (['/ws/other', 'a 101 with another Upgrade (h2c for websocket)'],
              ['/ws/none', 'a 101 without Upgrade']) {
    my ($p, $what) = @$case;
    my ($oc, $or) = open_ws($port, $p);
    is($or && $or->{status}, 502, "$what: 502, no tunnel");
    $oc->close if $oc;
}

# --- the upstream closes first -----------------------------------------------
($c, $r, $key, $st) = open_ws($port, '/ws/bye');
is($r && $r->{status}, 101, '/ws/bye: 101');
@f = read_frame($c, 5, $st);
is($f[2], 'bye', 'the upstream\'s last text frame arrives');
@f = read_frame($c, 5, $st);
is($f[1], 8, 'then its close frame');
is(substr($f[2] // '', 0, 2), pack('n', 1001), '... code 1001');
ok($c->wait_closed(3), 'the upstream closing ends the client connection');
$c->close;

# --- backpressure: nobody reads ----------------------------------------------
{
    my @w = $t->workers;
    my ($rss0) = TG::rss($w[0]);
    my ($bc, $br, $bk, $bst) = open_ws($port, '/ws/echo-big');
    is($br && $br->{status}, 101, 'big: 101');
    my $N = 64 * 1024 * 1024;
    my $payload = TG::gen_body($N);
    my $fr = frame(2, $payload, masked => 1);
    undef $payload;
    # write without reading until the writes stall for 1.5 s
    my $s = $bc->sock;
    my ($off, $last) = (0, time);
    while ($off < length($fr) && time - $last < 1.5) {
        my $n = syswrite($s, $fr, 262144 > length($fr) - $off ? length($fr) - $off : 262144, $off);
        if (defined $n && $n > 0) { $off += $n; $last = time; next }
        IO::Select->new($s)->can_write(0.1);
    }
    my ($rss1) = TG::rss($w[0]);
    ok($off < length($fr), sprintf('nobody reading: the client\'s writes stall (%.1f MiB of %d MiB accepted)',
                                   $off / 1048576, $N / 1048576));
    my $grow = ($rss1 // 0) - ($rss0 // 0);
    ok($grow < 8 * 1024, sprintf('the worker\'s RSS grew by %.1f MiB only (bounded by proxy_buffer_size)',
                                 $grow / 1024));
    # now read while writing the rest: everything comes back intact
    $bst->{tx} += $bc->write(substr($fr, $off), 60);
    my @g = read_frame($bc, 60, $bst);
    is($g[1], 2, 'then reading: the 64 MiB frame comes back as binary');
    is(length($g[2] // ''), $N, 'then reading: the 64 MiB frame comes back whole');
    is(md5_hex($g[2] // ''), TG::gen_md5($N), 'then reading: the 64 MiB frame comes back intact');
    $bc->close;
}

# --- the upstream refuses the upgrade ------------------------------------------
{
    my $rc = TG::Conn->new($port);
    $rc->write(upgrade_request('/ws/refuse', ws_key()));
    my $rr = $rc->read_response(timeout => 5);
    is($rr && $rr->{status}, 200, 'refused upgrade: the client gets the upstream\'s 200');
    is($rr && $rr->{body}, "no upgrade here\n", 'refused upgrade: with its body');
    ok(!TG::hdr($rr, 'Upgrade'), 'refused upgrade: no Upgrade header');
    my $t0 = time;
    ok($rc->wait_closed(2.5), 'refused upgrade: then the connection closes');
    $rc->close;
}

# --- tunnel_timeout = 1s -------------------------------------------------------
{
    my $t2 = TG->new('92-websocket-timeout');
    $t2->write_conf($t2->main_conf("tunnel_timeout = 1s\n") . <<"CONF");
[upstream ws]
server = 127.0.0.1:$ws->{port}

[route /ws]
upstream = ws

[trace]

[otlp]
exporter = file
schedule_delay = 100ms
CONF
    $t2->start_ok;
    my ($tc, $tr, $tk, $tst) = open_ws($t2->{port}, '/ws/echo-idle');
    is($tr && $tr->{status}, 101, 'tunnel_timeout: 101');
    my $tid = latest_conn();
    # active for 2.5 s: a ping every 0.4 s keeps it open
    my $pongs = 0;
    my $t0 = time;
    my $idle0 = time;
    while (time - $t0 < 2.5) {
        sleep 0.4;
        send_frames($tc, $tst, frame(9, 'keep', masked => 1));
        my @p = read_frame($tc, 1, $tst);
        $idle0 = time;           # the last byte moved
        $pongs++ if @p && $p[1] == 10;
    }
    cmp_ok($pongs, '>=', 5, "an active tunnel outlives tunnel_timeout = 1s ($pongs pongs in 2.5 s)");
    ok(!$tc->{eof}, 'an active tunnel outlives tunnel_timeout = 1s: still open');
    ok($tc->wait_closed(4), 'an idle tunnel is closed');
    my $idle = time - $idle0;
    cmp_ok($idle, '>=', 0.7, sprintf('... after about 1 s of idleness (%.2f s)', $idle));
    cmp_ok($idle, '<', 2.5, sprintf('... after about 1 s of idleness (%.2f s)', $idle));
    ok(TG::wait_for(3, sub { ends()->{$tid} }), '... and its upstream connection is closed too');
    $tc->close;
    my ($srv) = grep { $_->{kind} == 2 && ($_->{attributes}{'url.path'} // '') eq '/ws/echo-idle' }
                TGTrace::wait_file_spans("$t2->{dir}/logs/spans.jsonl", 2);
    ok($srv, 'the timed-out tunnel\'s SERVER span is exported');
    is($srv && $srv->{attributes}{'http.response.status_code'}, 101, '... with status 101');
    is($srv && $srv->{attributes}{'http.request.body.size'}, $tst->{tx}, '... and the bytes sent');
    $t2->stop;
}

my @errs = glob("$wsdir/error-*");
is(scalar(@errs), 0, 'the echo server saw no protocol error') or diag(join '', map { TG::slurp($_) } @errs);
like($t->error_log, qr/\A(?:(?!\[(?:alert|crit|emerg)\]).)*\z/s, 'no alert/crit in the error log');
ok($t->stop, 'tracegate stops on QUIT');
done_testing();
