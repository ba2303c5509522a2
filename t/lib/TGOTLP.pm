package TGOTLP;

# A real OTLP/HTTP receiver for tests, Perl core modules only.
#
#   my $c = TGOTLP->new(dir => "$tmp/otlp",
#                       script => [ { status => 503 },
#                                   { status => 429, retry_after => 1 },
#                                   { status => 200, delay => 0.5 },
#                                   { status => 200, rejected => 2,
#                                     message => 'too old' },
#                                   { status => 400 },
#                                   { drop => 1 } ]);   # close, no answer
#   $c->url;                 # http://127.0.0.1:PORT/v1/traces
#   ... export ...
#   $c->stop;
#   my @r = $c->requests;    # { n, status, ct, ce, len, time, file, path }
#   my @s = $c->spans;       # spans of requests answered 2xx (protoc)
#
# The server is a forked child with a select loop on 127.0.0.1, on a port
# the kernel picked (bind port 0) (or port => N, e.g. to restart a
# receiver on the port of a stopped one). Request n (from 1) is answered by
# script->[n-1], then by `default` ({ status => 200 }). Bodies are stored
# gunzipped (Content-Encoding: gzip) as DIR/req-NNNN.bin, one line per
# request in DIR/requests.log. With store => 0 nothing is written per
# request (benchmark sink); DIR/count gets "requests spans bytes" at exit.
# Spans are counted by walking the protobuf framing only.

use strict;
use warnings;

use File::Path qw(make_path);
use IO::Select;
use IO::Socket::INET;
use IO::Uncompress::Gunzip qw(gunzip $GunzipError);
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use Cwd qw(abs_path);
use File::Basename qw(dirname);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $PROTO_DIR = "$ROOT/modules/otlp/proto";
our $REQUEST = 'opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest';

sub new {
    my ($class, %o) = @_;
    my $dir = $o{dir} or die "TGOTLP->new: dir is required";
    make_path($dir);
    unlink glob("$dir/req-*"), "$dir/requests.log", "$dir/count";
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                       LocalPort => $o{port} || 0, Listen => 128,
                                       ReuseAddr => 1, Proto => 'tcp')
        or die "TGOTLP: listen: $!";
    my $port = $listen->sockport;
    my $pid = fork();
    die "TGOTLP: fork: $!" unless defined $pid;
    if ($pid == 0) {
        eval { _serve($listen, $dir, \%o) };
        print STDERR "TGOTLP: $@" if $@;
        POSIX::_exit(0);
    }
    close $listen;
    return bless { %o, pid => $pid, port => $port, dir => $dir,
                   owner => $$ }, $class;
}

sub port { $_[0]{port} }
sub url  { "http://127.0.0.1:$_[0]{port}/v1/traces" }

# Stops the server (bounded: TERM, 5 s, then KILL).
sub stop {
    my ($self) = @_;
    return unless $self->{pid};
    kill 'TERM', $self->{pid};
    my $deadline = time + 5;
    while (time < $deadline) {
        last if waitpid($self->{pid}, WNOHANG) == $self->{pid};
        sleep 0.05;
    }
    if (kill 0, $self->{pid}) {
        kill 'KILL', $self->{pid};
        waitpid($self->{pid}, 0);
    }
    delete $self->{pid};
}

sub DESTROY { $_[0]->stop if $_[0]{pid} && $_[0]{owner} == $$ }

# Requests seen so far, in arrival order.
sub requests {
    my ($self) = @_;
    my @r;
    open my $fh, '<', "$self->{dir}/requests.log" or return ();
    while (my $line = <$fh>) {
        chomp $line;
        my %h = map { /^([^=]+)=(.*)$/ ? ($1, $2) : () } split / /, $line;
        $h{file} = sprintf "%s/req-%04d.bin", $self->{dir}, $h{n};
        push @r, \%h;
    }
    return @r;
}

# (requests, spans, bytes) counted by the server; valid after stop.
sub counts {
    my ($self) = @_;
    open my $fh, '<', "$self->{dir}/count" or return (0, 0, 0);
    my $l = <$fh> // '';
    return split ' ', $l;
}

# Spans of every stored request answered 2xx (protobuf bodies only).
sub spans {
    my ($self, %o) = @_;
    my @s;
    for my $r ($self->requests) {
        next unless $o{all} || $r->{status} =~ /^2/;
        next unless $r->{ct} eq 'application/x-protobuf';
        push @s, decode_file($r->{file});
    }
    return @s;
}

sub have_protoc {
    for my $d (split /:/, $ENV{PATH} // '') {
        return 1 if -x "$d/protoc";
    }
    return 0;
}

sub decode_file {
    my ($file) = @_;
    my $cmd = "protoc --decode $REQUEST --proto_path=$PROTO_DIR "
            . "opentelemetry/proto/collector/trace/v1/trace_service.proto "
            . "< '$file' 2>&1";
    my $text = `$cmd`;
    die "protoc --decode failed on $file: $text" if $?;
    return decode_text($text);
}

sub decode_bytes {
    my ($bytes, $tmpdir) = @_;
    my $file = "$tmpdir/decode.$$.bin";
    open my $fh, '>:raw', $file or die "$file: $!";
    print $fh $bytes;
    close $fh;
    my @s = decode_file($file);
    unlink $file;
    return @s;
}

# protoc's text format -> list of span hashes:
#   { trace_id, span_id, parent_span_id (hex, '' when empty), name, kind,
#     start, end, flags, dropped_attributes_count, status (code name),
#     attributes => { key => value }, types => { key => 'string_value'.. },
#     links => [ { trace_id, span_id, flags } ], resource => { k => v },
#     scope => { name, version } }
sub decode_text {
    my ($text) = @_;
    my $tree = parse_text($text);
    my @spans;
    for my $rs (@{ $tree->{resource_spans} || [] }) {
        my %res;
        for my $a (@{ $rs->{resource}[0]{attributes} || [] }) {
            my ($k, $v) = _kv($a);
            $res{$k} = $v;
        }
        for my $ss (@{ $rs->{scope_spans} || [] }) {
            my $scope = $ss->{scope} ? $ss->{scope}[0] : {};
            for my $sp (@{ $ss->{spans} || [] }) {
                my (%attrs, %types);
                for my $a (@{ $sp->{attributes} || [] }) {
                    my ($k, $v, $t) = _kv($a);
                    $attrs{$k} = $v;
                    $types{$k} = $t;
                }
                my @links = map { {
                    trace_id => unpack('H*', $_->{trace_id} // ''),
                    span_id  => unpack('H*', $_->{span_id} // ''),
                    flags    => $_->{flags} // 0,
                } } @{ $sp->{links} || [] };
                push @spans, {
                    trace_id       => unpack('H*', $sp->{trace_id} // ''),
                    span_id        => unpack('H*', $sp->{span_id} // ''),
                    parent_span_id => unpack('H*', $sp->{parent_span_id} // ''),
                    name           => $sp->{name} // '',
                    kind           => $sp->{kind} // 'SPAN_KIND_UNSPECIFIED',
                    start          => $sp->{start_time_unix_nano} // 0,
                    end            => $sp->{end_time_unix_nano} // 0,
                    flags          => $sp->{flags} // 0,
                    dropped_attributes_count =>
                        $sp->{dropped_attributes_count} // 0,
                    status         => $sp->{status}
                                      ? ($sp->{status}[0]{code}
                                         // 'STATUS_CODE_UNSET')
                                      : 'STATUS_CODE_UNSET',
                    attributes     => \%attrs,
                    types          => \%types,
                    links          => \@links,
                    resource       => \%res,
                    scope          => { name => $scope->{name} // '',
                                        version => $scope->{version} // '' },
                };
            }
        }
    }
    return @spans;
}

sub _kv {
    my ($a) = @_;
    my $v = $a->{value} ? $a->{value}[0] : {};
    my ($t) = grep { /_value$/ } keys %$v;
    $t //= 'none';
    return ($a->{key} // '', $v->{$t}, $t);
}

# Nested hash of arrays of hashes; scalar fields keep their last value.
sub parse_text {
    my ($text) = @_;
    my $root = {};
    my @stack = ($root);
    for my $line (split /\n/, $text) {
        $line =~ s/^\s+//;
        $line =~ s/\s+$//;
        next if $line eq '';
        if ($line =~ /^(\w+)\s*\{$/) {
            my $h = {};
            push @{ $stack[-1]{$1} }, $h;
            push @stack, $h;
        } elsif ($line eq '}') {
            pop @stack;
        } elsif ($line =~ /^(\w+):\s*"(.*)"$/) {
            $stack[-1]{$1} = unescape($2);
        } elsif ($line =~ /^(\w+):\s*(\S+)$/) {
            $stack[-1]{$1} = $2;
        } else {
            die "TGOTLP: cannot parse protoc line: $line";
        }
    }
    return $root;
}

# C-style escapes of protoc's text format -> bytes
sub unescape {
    my ($s) = @_;
    my %c = (n => "\n", r => "\r", t => "\t", '"' => '"', "'" => "'",
             '\\' => '\\', a => "\a", b => "\b", f => "\f", v => "\x0b");
    $s =~ s{\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|(.))}{
        defined $1 ? chr(oct $1) : defined $2 ? chr(hex $2)
                   : exists $c{$3} ? $c{$3} : $3
    }ge;
    return $s;
}

# Counts spans in an ExportTraceServiceRequest by walking only framing:
# request.1 (ResourceSpans) -> .2 (ScopeSpans) -> .2 (Span).
sub count_spans {
    my ($buf) = @_;
    my $n = 0;
    _walk($buf, 0, length $buf, sub {
        my ($f, $o, $l) = @_;
        return unless $f == 1;
        _walk($buf, $o, $o + $l, sub {
            my ($f2, $o2, $l2) = @_;
            return unless $f2 == 2;
            _walk($buf, $o2, $o2 + $l2, sub { $n++ if $_[0] == 2 });
        });
    });
    return $n;
}

sub _varint {
    my ($buf, $pos) = @_;
    my ($v, $shift) = (0, 0);
    while (1) {
        my $b = ord substr($$buf, $$pos++, 1);
        $v |= ($b & 0x7f) << $shift;
        last unless $b & 0x80;
        $shift += 7;
    }
    return $v;
}

# calls $cb->(field, offset, length) for every length-delimited field
sub _walk {
    my ($buf, $pos, $end, $cb) = @_;
    while ($pos < $end) {
        my $tag = _varint(\$buf, \$pos);
        my ($f, $wt) = ($tag >> 3, $tag & 7);
        if ($wt == 2) {
            my $l = _varint(\$buf, \$pos);
            $cb->($f, $pos, $l);
            $pos += $l;
        } elsif ($wt == 0) {
            _varint(\$buf, \$pos);
        } elsif ($wt == 1) {
            $pos += 8;
        } elsif ($wt == 5) {
            $pos += 4;
        } else {
            last;
        }
    }
}

sub _pb_varint {
    my ($v) = @_;
    my $out = '';
    while ($v >= 0x80) {
        $out .= chr(($v & 0x7f) | 0x80);
        $v >>= 7;
    }
    return $out . chr($v);
}

# ExportTraceServiceResponse{ partial_success{ rejected_spans, error_message } }
sub _partial_pb {
    my ($rejected, $msg) = @_;
    my $ps = "\x08" . _pb_varint($rejected);
    $ps .= "\x12" . _pb_varint(length $msg) . $msg if length $msg;
    return "\x0a" . _pb_varint(length $ps) . $ps;
}

# --------------------------------------------------------------------------
# the server (child process)

sub _serve {
    my ($listen, $dir, $o) = @_;
    my $store = exists $o->{store} ? $o->{store} : 1;
    my $script = $o->{script} || [];
    my $default = $o->{default} || { status => 200 };
    my $stop = 0;
    local $SIG{TERM} = sub { $stop = 1 };
    local $SIG{PIPE} = 'IGNORE';

    my $sel = IO::Select->new($listen);
    my %conn;            # fileno => { sock, in, due, resp, close }
    my ($nreq, $nspans, $nbytes) = (0, 0, 0);
    my $log;
    if ($store) {
        open $log, '>>', "$dir/requests.log" or die "$dir/requests.log: $!";
        $log->autoflush(1);
    }

    my $close = sub {
        my ($c) = @_;
        $sel->remove($c->{sock});
        delete $conn{ fileno $c->{sock} };
        close $c->{sock};
    };

    my $send = sub {
        my ($c) = @_;
        my $r = delete $c->{resp};
        delete $c->{due};
        if ($r->{drop}) {
            $close->($c);
            return;
        }
        my $buf = $r->{data};
        while (length $buf) {
            my $w = syswrite($c->{sock}, $buf);
            if (!defined $w) {
                $close->($c);
                return;
            }
            substr($buf, 0, $w) = '';
        }
        $close->($c) if $r->{close};
    };

    my $process;
    $process = sub {
        my ($c) = @_;
        while (!$c->{resp}) {
            my $he = index($c->{in}, "\r\n\r\n");
            return if $he < 0;
            my $head = substr($c->{in}, 0, $he);
            my ($reqline, @lines) = split /\r\n/, $head;
            my %h;
            for (@lines) {
                $h{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
            }
            my $cl = $h{'content-length'} // 0;
            return if length($c->{in}) < $he + 4 + $cl;
            my $body = substr($c->{in}, $he + 4, $cl);
            substr($c->{in}, 0, $he + 4 + $cl) = '';

            $nreq++;
            $nbytes += length $body;
            my $step = $script->[$nreq - 1] || $default;
            my $ct = $h{'content-type'} // '';
            my $ce = $h{'content-encoding'} // 'identity';
            my $plain = $body;
            if ($ce eq 'gzip') {
                my $out;
                gunzip(\$body => \$out) or die "gunzip: $GunzipError";
                $plain = $out;
            }
            my $spans = $ct eq 'application/x-protobuf'
                        ? count_spans($plain) : 0;
            $nspans += $spans;
            my $status = $step->{drop} ? 0 : ($step->{status} // 200);
            if ($store) {
                my $f = sprintf "%s/req-%04d.bin", $dir, $nreq;
                open my $fh, '>:raw', $f or die "$f: $!";
                print $fh $plain;
                close $fh;
                my $path = (split / /, $reqline)[1] // '';
                my $ua = $h{'user-agent'} // '';
                $ua =~ s/\s/_/g;
                my $extra = join ' ',
                    map { my $v = $h{$_}; $v =~ s/\s/_/g; "h.$_=$v" }
                    grep { /^x-/ } sort keys %h;
                printf $log "n=%d status=%d ct=%s ce=%s len=%d spans=%d "
                          . "time=%.3f path=%s ua=%s %s\n",
                    $nreq, $status, $ct, $ce, length($body), $spans, time,
                    $path, $ua, $extra;
            }

            my $rbody = '';
            my $rct = $ct eq 'application/json' ? 'application/json'
                                                : 'application/x-protobuf';
            if ($step->{rejected}) {
                $rbody = $rct eq 'application/json'
                    ? sprintf('{"partialSuccess":{"rejectedSpans":"%d",'
                              . '"errorMessage":"%s"}}', $step->{rejected},
                              $step->{message} // '')
                    : _partial_pb($step->{rejected}, $step->{message} // '');
            }
            my $data = "HTTP/1.1 $status " . ($status == 200 ? 'OK' : 'X')
                     . "\r\nContent-Type: $rct\r\nContent-Length: "
                     . length($rbody) . "\r\n";
            $data .= "Retry-After: $step->{retry_after}\r\n"
                if defined $step->{retry_after};
            $data .= "Connection: close\r\n" if $step->{close};
            $data .= "\r\n" . $rbody;
            $c->{resp} = { data => $data, drop => $step->{drop},
                           close => $step->{close} };
            $c->{due} = time + ($step->{delay} // 0);
            if (!$step->{delay}) {
                $send->($c);
                return unless $conn{ fileno($c->{sock}) // -1 };
            }
        }
    };

    while (!$stop) {
        my $timeout = 0.2;
        for my $c (values %conn) {
            next unless $c->{due};
            my $d = $c->{due} - time;
            $timeout = $d if $d < $timeout;
        }
        $timeout = 0 if $timeout < 0;
        for my $s ($sel->can_read($timeout)) {
            if ($s == $listen) {
                my $a = $listen->accept or next;
                $sel->add($a);
                $conn{ fileno $a } = { sock => $a, in => '' };
                next;
            }
            my $c = $conn{ fileno $s } or next;
            my $n = sysread($s, my $buf, 1 << 20);
            if (!$n) {
                $close->($c);
                next;
            }
            $c->{in} .= $buf;
            $process->($c);
        }
        for my $c (values %conn) {
            next unless $c->{due} && $c->{due} <= time;
            $send->($c);
            $process->($c) if $conn{ fileno($c->{sock}) // -1 };
        }
    }

    if (open my $fh, '>', "$dir/count") {
        print $fh "$nreq $nspans $nbytes\n";
        close $fh;
    }
}

1;
