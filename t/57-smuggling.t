#!/usr/bin/perl
# Request smuggling and desync corpus. Each attack is sent raw on a new
# client connection; a recording upstream stores the exact bytes every
# upstream connection carries. For every case:
#   - each upstream byte stream must parse STRICTLY (CRLF only, token names,
#     no NUL/CR/obs-fold in values, one Host, at most one framing header:
#     one "Transfer-Encoding: chunked" or one decimal Content-Length,
#     strict chunks) into complete requests, with no byte left over;
#   - the client got exactly one relayed response per request the upstream
#     saw (the recorder marks its responses with X-Recorder), so no
#     response can be attributed to the wrong request;
#   - when the proxy answered with its own error, that error is the last
#     response and the upstream saw nothing for that request;
#   - the case's own expectation: "reject" (a proxy error, nothing
#     upstream), "reject-body" (a proxy error for a body that breaks after
#     the head went upstream: the bodies are streamed, so the upstream may
#     hold a head and part of a body, but never a complete request, and the
#     proxy must close that upstream connection), "accept" (relayed; body =>
#     the body length the upstream must have read), or "either".
# The client never half-closes: the proxy may take an early EOF as an
# abandoned request, which is not what this file is about.  Responses are read
# until the proxy closes or stays silent for 0.5 s after a response.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use IO::Socket::INET;
use IO::Select;
use File::Path qw(make_path);
use POSIX ();
use Time::HiRes qw(time sleep);
use TG;

# --------------------------------------------------------------------------
# recording upstream

sub recorder {
    my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                  Proto => 'tcp', Listen => 64, ReuseAddr => 1)
        or die "recorder: listen: $!";
    my $port = $l->sockport;
    my $dir = "$TG::TMP/recorder.$$." . int(rand(1e6));
    make_path($dir);
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $TG::IS_CHILD = 1;
        $SIG{PIPE} = 'IGNORE';
        $SIG{CHLD} = 'IGNORE';
        my $n = 0;
        my $end = time + 600;
        while (time < $end) {
            my $c = $l->accept or next;
            $n++;
            my $k = fork;
            if (defined $k && $k == 0) {
                close $l;
                eval { record_conn($c, "$dir/conn." . sprintf('%04d', $n)) };
                POSIX::_exit(0);
            }
            close $c;
        }
        POSIX::_exit(0);
    }
    close $l;
    $TG::STARTED{$pid} = { kind => 'mock', sig => 'KILL' };
    return { pid => $pid, port => $port, dir => $dir };
}

# Lenient framing, only to know when to answer; the test judges the bytes.
sub record_conn {
    my ($c, $file) = @_;
    open my $fh, '>', $file or die "$file: $!";
    binmode $fh;
    $fh->autoflush(1);
    my $sel = IO::Select->new($c);
    my $buf = '';
    while ($sel->can_read(20)) {
        my $r = sysread($c, my $chunk, 65536);
        last unless $r;
        print $fh $chunk;
        $buf .= $chunk;
        while (1) {
            my $end = index($buf, "\r\n\r\n");
            last if $end < 0;
            my $head = substr($buf, 0, $end + 4);
            my $rest = substr($buf, $end + 4);
            my $len;
            if ($head =~ /^transfer-encoding:[^\r\n]*chunked/im) {
                my $p = 0;
                my $body = 0;
                my $done = 0;
                while (1) {
                    my $le = index($rest, "\r\n", $p);
                    last if $le < 0;
                    my ($sz) = substr($rest, $p, $le - $p) =~ /^([0-9a-fA-F]+)/;
                    $sz = defined $sz ? hex($sz) : 0;
                    if ($sz == 0) {
                        my $t = index($rest, "\r\n\r\n", $le - 2 < 0 ? 0 : $le - 2);
                        last if $t < 0;
                        $p = $t + 4;
                        $done = 1;
                        last;
                    }
                    last if length($rest) < $le + 2 + $sz + 2;
                    $body += $sz;
                    $p = $le + 2 + $sz + 2;
                }
                last unless $done;
                $len = $body;
                $buf = substr($rest, $p);
            } else {
                my ($cl) = $head =~ /^content-length:\s*(\d+)/im;
                $cl //= 0;
                last if length($rest) < $cl;
                $len = $cl;
                $buf = substr($rest, $cl);
            }
            syswrite($c, "HTTP/1.1 200 OK\r\nX-Recorder: 1\r\nX-Body-Len: $len\r\n"
                       . "Content-Length: 2\r\n\r\nok");
        }
    }
    close $fh;
    close $c;
    TG::spew("$file.eof", '');    # the proxy closed (or we timed out)
}

# Snapshot of every connection file's size.
sub rec_sizes {
    my ($rec) = @_;
    my %s;
    for my $f (grep { !/\.eof\z/ } glob("$rec->{dir}/conn.*")) { $s{$f} = -s $f }
    return \%s;
}

# Bytes each upstream connection carried since the snapshot.
sub rec_new_bytes {
    my ($rec, $before) = @_;
    my @out;
    for my $f (sort grep { !/\.eof\z/ } glob("$rec->{dir}/conn.*")) {
        my $all = TG::slurp($f) // '';
        my $from = $before->{$f} // 0;
        next if length($all) <= $from;
        push @out, [substr($all, $from), -e "$f.eof" ? 1 : 0];
    }
    return @out;
}

# --------------------------------------------------------------------------
# strict HTTP/1.1 request parser (RFC 9112, no leniency at all)

my $TCHAR = qr/[!#\$%&'*+\-.^_`|~0-9A-Za-z]/;

# Returns (\@requests, $error); a request is { method, target, headers,
# body_len }.
sub parse_strict {
    my ($bytes) = @_;
    my @reqs;
    my $p = 0;
    while ($p < length $bytes) {
        my $le = index($bytes, "\r\n", $p);
        return (\@reqs, 'incomplete request line') if $le < 0;
        my $line = substr($bytes, $p, $le - $p);
        $line =~ m{^($TCHAR+) ([\x21-\x7e]+) HTTP/1\.1\z}
            or return (\@reqs, "bad request line: " . esc($line));
        my %r = (method => $1, target => $2, headers => []);
        $p = $le + 2;
        my (%count, $te, $cl);
        while (1) {
            $le = index($bytes, "\r\n", $p);
            return (\@reqs, 'incomplete head') if $le < 0;
            my $h = substr($bytes, $p, $le - $p);
            $p = $le + 2;
            last if $h eq '';
            $h =~ /^($TCHAR+):[ \t]*([\x21-\x7e\x80-\xff](?:[\x20-\x7e\x80-\xff\t]*[\x21-\x7e\x80-\xff])?)?[ \t]*\z/
                or return (\@reqs, "bad header line: " . esc($h));
            my ($n, $v) = (lc $1, $2 // '');
            $count{$n}++;
            push @{ $r{headers} }, [$n, $v];
            $te = $v if $n eq 'transfer-encoding';
            $cl = $v if $n eq 'content-length';
        }
        return (\@reqs, 'Host count ' . ($count{host} // 0)) if ($count{host} // 0) != 1;
        return (\@reqs, 'several Transfer-Encoding') if ($count{'transfer-encoding'} // 0) > 1;
        return (\@reqs, 'several Content-Length') if ($count{'content-length'} // 0) > 1;
        return (\@reqs, 'Transfer-Encoding with Content-Length') if defined $te && defined $cl;
        if (defined $te) {
            return (\@reqs, "Transfer-Encoding \"$te\"") unless $te eq 'chunked';
            my $body = 0;
            while (1) {
                $le = index($bytes, "\r\n", $p);
                return (\@reqs, 'incomplete chunk size') if $le < 0;
                my $sl = substr($bytes, $p, $le - $p);
                $sl =~ /^([0-9a-fA-F]{1,15})(?:;$TCHAR+(?:=(?:$TCHAR+|"[^"\\\r\n]*"))?)*\z/
                    or return (\@reqs, "bad chunk size line: " . esc($sl));
                my $sz = hex $1;
                $p = $le + 2;
                if ($sz == 0) {
                    while (1) {       # trailer section
                        $le = index($bytes, "\r\n", $p);
                        return (\@reqs, 'incomplete trailer') if $le < 0;
                        my $t = substr($bytes, $p, $le - $p);
                        $p = $le + 2;
                        last if $t eq '';
                        $t =~ /^$TCHAR+:[ \t]*[\x20-\x7e\t]*\z/
                            or return (\@reqs, 'bad trailer: ' . esc($t));
                    }
                    last;
                }
                return (\@reqs, 'incomplete chunk') if length($bytes) < $p + $sz + 2;
                return (\@reqs, 'chunk without CRLF') if substr($bytes, $p + $sz, 2) ne "\r\n";
                $body += $sz;
                $p += $sz + 2;
            }
            $r{body_len} = $body;
        } elsif (defined $cl) {
            return (\@reqs, "Content-Length \"$cl\"") unless $cl =~ /^[0-9]{1,15}\z/;
            return (\@reqs, 'incomplete body') if length($bytes) < $p + $cl;
            $r{body_len} = $cl + 0;
            $p += $cl;
        } else {
            $r{body_len} = 0;
        }
        push @reqs, \%r;
    }
    return (\@reqs, undef);
}

sub esc {
    my ($s, $max) = @_;
    $max //= 120;
    $s = substr($s, 0, $max) . '...' if length $s > $max;
    $s =~ s/([^\x20-\x7e])/sprintf('\\x%02x', ord $1)/ge;
    return $s;
}

# What the proxy sends until it closes, or is silent for 0.5 s after
# something arrived (3 s at most).
sub read_quiet {
    my ($c) = @_;
    my $end = time + 3;
    my $last = time;
    while (time < $end && !$c->{eof}) {
        my $n = $c->fill(0.1);
        if ($n) {
            $last = time;
        } elsif (length($c->{buf}) && time - $last > 0.5) {
            last;
        }
    }
    return $c->{buf};
}

# Every response head in what the client received: [status, relayed].
sub client_responses {
    my ($bytes) = @_;
    my @resp;
    my $c = TG::Conn->from_bytes($bytes);
    while (1) {
        my $r = $c->read_response(timeout => 0.2) or last;
        push @resp, [$r->{status}, ($r->{h}{'x-recorder'} ? 1 : 0),
                     $r->{h}{'x-body-len'} ? $r->{h}{'x-body-len'}[0] : undef];
    }
    return @resp;
}

# --------------------------------------------------------------------------

my $rec = recorder();
my $t = TG->new('57-smuggling');
$t->write_conf($t->main_conf("client_max_body_size = 1m\nkeepalive_timeout = 5s")
    . <<"CONF");
[upstream rec]
server = 127.0.0.1:$rec->{port}
keepalive = 8

[route /service-a]
upstream = rec
CONF
$t->start_ok;

my $H = "Host: gw.example\r\n";
my $P = "POST /service-a/x HTTP/1.1\r\n$H";
my $G = "GET /service-a/x HTTP/1.1\r\n$H";

# [name, bytes, expect, body length when accepted, requests when accepted]
my @cases = (
    # CL.TE and TE.CL
    ['CL.TE', "${P}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 'reject'],
    ['TE.CL', "${P}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 'reject'],
    ['CL.TE with CL 0', "${P}Content-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 'reject'],
    # TE.TE obfuscations
    ['TE xchunked', "${P}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE xchunked + CL', "${P}Transfer-Encoding: xchunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE leading space', "${P}Transfer-Encoding:  chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 'accept', 5],
    ['TE chunked, identity', "${P}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE identity, chunked', "${P}Transfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE ,chunked', "${P}Transfer-Encoding: ,chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 'reject'],
    ['TE chunked,', "${P}Transfer-Encoding: chunked,\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE tab', "${P}Transfer-Encoding:\tchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 'either', 5],
    ['TE trailing tab', "${P}Transfer-Encoding: chunked\t\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 'either', 5],
    ['TE uppercase', "${P}Transfer-Encoding: CHUNKED\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 'accept', 5],
    ['TE duplicate lines', "${P}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE duplicate, second junk', "${P}Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE duplicate, first junk', "${P}Transfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE vertical tab', "${P}Transfer-Encoding:\x0bchunked\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE form feed', "${P}Transfer-Encoding:\x0cchunked\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE space before colon', "${P}Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE name with tab', "${P}Transfer-Encoding\t: chunked\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE quoted', "${P}Transfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n", 'reject'],
    ['TE obs-fold', "${P}Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n", 'either', 0],
    ['TE in trailer only', "${P}Content-Length: 5\r\n\r\nhello", 'accept', 5],
    # Content-Length
    ['CL duplicate same', "${P}Content-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 'reject'],
    ['CL conflicting', "${P}Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 'reject'],
    ['CL plus sign', "${P}Content-Length: +5\r\n\r\nhello", 'reject'],
    ['CL minus sign', "${P}Content-Length: -1\r\n\r\n", 'reject'],
    ['CL leading spaces', "${P}Content-Length:   5\r\n\r\nhello", 'accept', 5],
    ['CL comma list', "${P}Content-Length: 5, 5\r\n\r\nhello", 'reject'],
    ['CL comma no space', "${P}Content-Length: 5,5\r\n\r\nhello", 'reject'],
    ['CL hex', "${P}Content-Length: 0x5\r\n\r\nhello", 'reject'],
    ['CL inner space', "${P}Content-Length: 1 0\r\n\r\nhelloworld", 'reject'],
    ['CL overflow', "${P}Content-Length: 18446744073709551617\r\n\r\nhello", 'reject'],
    ['CL leading zeros', "${P}Content-Length: 0005\r\n\r\nhello", 'accept', 5],
    ['CL space before colon', "${P}Content-Length : 5\r\n\r\nhello", 'reject'],
    # line endings and folding
    ['bare LF everywhere', "GET /service-a/x HTTP/1.1\nHost: gw.example\n\n", 'either', 0],
    ['bare LF after header', "${G}X-A: 1\nX-B: 2\r\n\r\n", 'either', 0],
    ['bare CR in header', "${G}X-A: 1\rX-B: 2\r\n\r\n", 'reject'],
    ['obs-fold', "${G}X-A: 1\r\n 2\r\n\r\n", 'either', 0],
    ['obs-fold tab', "${G}X-A: 1\r\n\t2\r\n\r\n", 'either', 0],
    ['whitespace line before body', "${G} \r\n\r\n", 'either', 0],
    # header names and values
    ['space in header name', "${G}X Forwarded: 1\r\n\r\n", 'reject'],
    ['non-token char in name', "${G}X-A\@b: 1\r\n\r\n", 'reject'],
    ['control char in name', "${G}X-A\x01: 1\r\n\r\n", 'reject'],
    ['empty header name', "${G}: x\r\n\r\n", 'reject'],
    ['NUL in header value', "${G}X-A: a\x00b\r\n\r\n", 'reject'],
    ['CR in header value', "${G}X-A: a\rb\r\n\r\n", 'reject'],
    ['DEL in header value', "${G}X-A: a\x7fb\r\n\r\n", 'either', 0],
    ['high bytes in value', "${G}X-A: caf\xc3\xa9\r\n\r\n", 'accept', 0],
    ['high bytes in target', "GET /service-a/caf\xc3\xa9 HTTP/1.1\r\n$H\r\n", 'reject'],
    # request line
    ['NUL in target', "GET /service-a/\x00x HTTP/1.1\r\n$H\r\n", 'reject'],
    ['NUL in method', "G\x00ET /service-a/x HTTP/1.1\r\n$H\r\n", 'reject'],
    ['space in target', "GET /service-a/x y HTTP/1.1\r\n$H\r\n", 'reject'],
    ['tab separator', "GET\t/service-a/x HTTP/1.1\r\n$H\r\n", 'reject'],
    ['HTTP/1.2', "GET /service-a/x HTTP/1.2\r\n$H\r\n", 'either', 0],
    ['HTTP/2.0 in HTTP/1', "GET /service-a/x HTTP/2.0\r\n$H\r\n", 'either', 0],
    ['lowercase version', "GET /service-a/x http/1.1\r\n$H\r\n", 'reject'],
    # chunks
    ['chunk size over 64 bits', "${P}Transfer-Encoding: chunked\r\n\r\n10000000000000001\r\nx\r\n0\r\n\r\n", 'reject-body'],
    ['chunk size 16 f', "${P}Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nx\r\n0\r\n\r\n", 'reject-body'],
    ['chunk size with 0x', "${P}Transfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n", 'reject-body'],
    ['chunk size with space', "${P}Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n", 'either-body', 5],
    ['chunk size 2^63', "${P}Transfer-Encoding: chunked\r\n\r\n8000000000000000\r\nx\r\n0\r\n\r\n", 'reject-body'],
    ['chunk over the body limit', "${P}Transfer-Encoding: chunked\r\n\r\n200000\r\nx\r\n0\r\n\r\n", 'reject-body'],
    ['chunk size negative', "${P}Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 'reject-body'],
    ['chunk size junk', "${P}Transfer-Encoding: chunked\r\n\r\n5g\r\nhello\r\n0\r\n\r\n", 'reject-body'],
    ['chunk extension', "${P}Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n0\r\n\r\n", 'accept', 5],
    ['chunk data too long', "${P}Transfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n", 'reject-body'],
    ['chunk bare LF', "${P}Transfer-Encoding: chunked\r\n\r\n5\nhello\n0\n\n", 'reject-body'],
    ['chunk with trailer', "${P}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n", 'accept', 5],
    # strict framing (llhttp without LLHTTP_STRICT_MODE took these, and the
    # upstream got them byte for byte)
    ['chunk data without CRLF', "${P}Transfer-Encoding: chunked\r\n\r\n1\r\nA\n60\r\n\r\n", 'reject'],
    ['chunk data then junk', "${P}Transfer-Encoding: chunked\r\n\r\n1\r\nAxx0\r\n\r\n", 'reject'],
    ['last chunk bare LF', "${P}Transfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\n\n", 'reject'],
    ['trailer section bare LF', "${P}Transfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\nX-T: 1\r\n\n", 'reject'],
    ['trailer line bare LF', "${P}Transfer-Encoding: chunked\r\n\r\n1\r\nA\r\n0\r\nX-T: 1\nX-U: 2\r\n\r\n", 'reject'],
    ['tab in target', "GET /service-a/x\tb HTTP/1.1\r\n$H\r\n", 'reject'],
    # trailers: fields the gateway sets in the head never pass in a trailer
    (map { ["trailer $_", "${P}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n$_: x\r\n\r\n", 'reject'] }
        qw(Host Transfer-Encoding Content-Length Connection X-Forwarded-For
           X-Forwarded-Host X-Forwarded-Proto Forwarded traceparent tracestate
           X-Trace-ID)),
    # every CR and LF of a chunked body (with a trailer) dropped, doubled,
    # swapped for the other or replaced, with a request after it: nothing
    # goes upstream, neither the body nor the request behind it
    sweep("5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"),
    # versions and targets
    ['HTTP/1.0 with TE', "POST /service-a/x HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 'reject'],
    ['HTTP/1.0 with TE and CL', "POST /service-a/x HTTP/1.0\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello", 'reject'],
    ['absolute-form, other Host', "GET http://other.example/service-a/x HTTP/1.1\r\n$H\r\n", 'accept', 0],
    ['absolute-form, no Host', "GET http://other.example/service-a/x HTTP/1.1\r\n\r\n", 'either', 0],
    ['two Host headers', "GET /service-a/x HTTP/1.1\r\n${H}Host: evil.example\r\n\r\n", 'reject'],
    ['Host with userinfo', "GET /service-a/x HTTP/1.1\r\nHost: a\@evil.example\r\n\r\n", 'reject'],
    ['absolute-form with userinfo', "GET http://a\@evil.example/service-a/x HTTP/1.1\r\n$H\r\n", 'reject'],
    # keep-alive: requests after a body
    ['keep-alive after CL body', "${P}Content-Length: 5\r\n\r\nhello${G}\r\n", 'accept', 5, 2],
    ['keep-alive after chunked body', "${P}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n${G}\r\n", 'accept', 5, 2],
    ['GET with body hiding a request', "${G}Content-Length: 33\r\n\r\nGET /service-a/admin HTTP/1.1\r\n\r\n", 'accept', 33],
    ['keep-alive, then CL.TE', "${G}\r\n${P}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG", 'reject', 0, 1],
);

sub sweep {
    my ($body) = @_;
    my @out;
    for my $i (0 .. length($body) - 1) {
        my $ch = substr($body, $i, 1);
        next unless $ch eq "\r" || $ch eq "\n";
        my %how = (dropped => '', doubled => $ch x 2,
                   swapped => $ch eq "\r" ? "\n" : "\r", replaced => 'x');
        for my $how (sort keys %how) {
            # a byte doubled after the last one belongs to the next request
            next if $how eq 'doubled' && $i == length($body) - 1;
            my $b = $body;
            substr($b, $i, 1) = $how{$how};
            push @out, ["sweep: byte $i ($how)",
                "${P}Transfer-Encoding: chunked\r\n\r\n$b${G}\r\n", 'reject'];
        }
    }
    return @out;
}

for my $case (@cases) {
    my ($name, $bytes, $expect, $body, $nreq) = @$case;
    # upstream requests: relayed ones when accepted, the ones before the
    # rejected request when rejected
    $nreq //= $expect =~ /^reject/ ? 0 : 1;
    my $before = rec_sizes($rec);
    my $c = TG::Conn->new($t->{port}, timeout => 5);
    unless ($c) {
        fail("$name: connect: $@");
        next;
    }
    $c->write($bytes);
    my $got = read_quiet($c);
    $c->close;
    sleep 0.2;    # the recorder writes what it read, and sees the close
    my @streams = rec_new_bytes($rec, $before);
    my @resp = client_responses($got);

    my (@reqs, @errs, $cut);
    for my $s (@streams) {
        my ($r, $e) = parse_strict($s->[0]);
        push @reqs, @$r;
        if (defined $e && $expect =~ /-body\z/ && $e =~ /^incomplete/
            && $s->[1] && !defined $cut)
        {
            $cut = $e;    # a cut request on a connection the proxy closed
            next;
        }
        push @errs, $e if defined $e;
    }
    my @relayed = grep { $_->[1] } @resp;
    my @own = grep { !$_->[1] } @resp;
    my $diag = sprintf("$name: responses [%s], upstream %d request(s)%s; upstream bytes: %s",
        join(' ', map { $_->[0] . ($_->[1] ? 'r' : '') } @resp), scalar @reqs,
        @errs ? " (" . join('; ', @errs) . ")" : '',
        join(' | ', map { esc($_->[0], 600) . ($_->[1] ? ' [closed]' : '') } @streams)
            || 'none');

    my $ok = !@errs && @resp > 0 && @relayed == @reqs;
    # a proxy error ends the connection: nothing after it
    $ok &&= !(@own && $resp[-1] != $own[-1]);
    if ($expect eq 'reject' || $expect eq 'reject-body') {
        $ok &&= @own == 1 && $own[0][0] >= 400 && @reqs == $nreq;
    } elsif ($expect eq 'accept') {
        $ok &&= !@own && @reqs == $nreq;
        $ok &&= defined $body ? $reqs[0]{body_len} == $body : 1 if @reqs;
    } else {
        $ok &&= !defined $cut || @own;
        $ok &&= @own ? ($own[0][0] >= 400 && @reqs == $nreq - 1)
                     : (@reqs == $nreq && (!defined $body || $reqs[0]{body_len} == $body));
    }
    ok($ok, "$name: $expect") or diag($diag);
    note($diag) if $ok;
}

# The reported attack, in two writes so that the head is upstream before
# the body breaks: the victim's request that follows on another client
# connection must never share an upstream connection with the broken body.
for my $split (0, 1) {
    my $before = rec_sizes($rec);
    my $a = TG::Conn->new($t->{port}, timeout => 5);
    my $body = "1\r\nA\n60\r\n\r\n";
    my $head = "${P}Transfer-Encoding: chunked\r\n\r\n";
    if ($split) {
        $a->write($head);
        sleep 0.3;
        $a->write($body);
    } else {
        $a->write($head . $body);
    }
    my @ra = client_responses(read_quiet($a));
    $a->close;
    my $v = TG::Conn->new($t->{port}, timeout => 5);
    $v->write("GET /service-a/victim HTTP/1.1\r\n${H}Cookie: session=s3cret\r\n\r\n");
    my $rv = $v->read_response(timeout => 5);
    $v->close;
    sleep 0.2;
    my @streams = rec_new_bytes($rec, $before);
    my $label = $split ? 'head first, then the broken body' : 'one write';
    is(scalar(@ra) && $ra[0][0], 400, "attack ($label): 400");
    ok(!grep({ $_->[1] } @ra), "attack ($label): nothing relayed to the attacker");
    is($rv && $rv->{status}, 200, "victim after the attack ($label): 200");
    my @shared = grep { $_->[0] =~ /victim/ && $_->[0] =~ /A\n60/ } @streams;
    is(scalar @shared, 0, "attack ($label): the victim's request never "
        . "shares an upstream connection with the broken body")
        or diag(join(' | ', map { esc($_->[0], 600) } @streams));
    my @attack = grep { $_->[0] =~ /A\n60/ } @streams;
    is(scalar @attack, 0, "attack ($label): no byte of the broken body "
        . "went upstream") or diag(join(' | ', map { esc($_->[0], 600) } @attack));
    is(scalar(grep { $_->[0] !~ /victim/ } grep { !$_->[1] } @streams), 0,
       "attack ($label): the upstream connection that got the head was closed")
        if $split;
}

# the proxy survived the corpus and still serves
my $c = TG::Conn->new($t->{port}, timeout => 5);
$c->write("${G}\r\n");
my $r = $c->read_response(timeout => 5);
is($r && $r->{status}, 200, 'a normal request after the corpus');
$c->close;
note(scalar(@cases) . " attack cases");

$t->stop;
kill 'KILL', $rec->{pid};
waitpid($rec->{pid}, 0);
delete $TG::STARTED{$rec->{pid}};
done_testing();
