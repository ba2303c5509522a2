package TGPB;

# OTLP trace requests built by hand, for the collector tests and benches:
# the protobuf wire format (an ExportTraceServiceRequest) and OTLP/JSON of
# the same shape. Perl core only; no protoc needed.
#
#   my $req = TGPB::request(resources => 1, scopes => 1, spans => 3,
#                           attrs => 2, events => 1, links => 1);
#   my $pb   = TGPB::pb($req);      # bytes
#   my $json = TGPB::json($req);    # text
#
# A request is a list of resources, each with a service name and scopes,
# each with spans; a span has ids, a name, attributes (key => string
# value pairs in order), events (each with attributes), links (each with
# attributes) and an optional dropped_attributes_count.

use strict;
use warnings;

# --------------------------------------------------------------------------
# wire format

sub varint {
    my ($n) = @_;
    my $s = '';
    while ($n >= 0x80) {
        $s .= chr(($n & 0x7f) | 0x80);
        $n >>= 7;
    }
    return $s . chr($n);
}

sub tag { my ($f, $wt) = @_; return varint($f << 3 | $wt) }

# a length-delimited field (strings, bytes, messages)
sub ld { my ($f, $b) = @_; return tag($f, 2) . varint(length $b) . $b }
sub vint { my ($f, $n) = @_; return tag($f, 0) . varint($n) }
sub fixed64 { my ($f, $n) = @_; return tag($f, 1) . pack('Q<', $n) }

# KeyValue with a string AnyValue
sub pb_kv { my ($k, $v) = @_; return ld(1, $k) . ld(2, ld(1, $v)) }

sub pb_span {
    my ($s) = @_;
    my $b = ld(1, pack('H*', $s->{trace_id})) . ld(2, pack('H*', $s->{span_id}))
          . ld(5, $s->{name}) . vint(6, 2)
          . fixed64(7, 1_700_000_000_000_000_000)
          . fixed64(8, 1_700_000_000_001_000_000);
    my @a = @{ $s->{attributes} || [] };
    while (@a) { my ($k, $v) = splice(@a, 0, 2); $b .= ld(9, pb_kv($k, $v)) }
    $b .= vint(10, $s->{dropped_attributes_count}) if $s->{dropped_attributes_count};
    for my $e (@{ $s->{events} || [] }) {
        my $eb = fixed64(1, 1_700_000_000_000_500_000) . ld(2, $e->{name});
        my @ea = @{ $e->{attributes} || [] };
        while (@ea) { my ($k, $v) = splice(@ea, 0, 2); $eb .= ld(3, pb_kv($k, $v)) }
        $b .= ld(11, $eb);
    }
    for my $l (@{ $s->{links} || [] }) {
        my $lb = ld(1, pack('H*', $l->{trace_id})) . ld(2, pack('H*', $l->{span_id}));
        my @la = @{ $l->{attributes} || [] };
        while (@la) { my ($k, $v) = splice(@la, 0, 2); $lb .= ld(4, pb_kv($k, $v)) }
        $b .= ld(13, $lb);
    }
    return $b;
}

sub pb {
    my ($req) = @_;
    my $out = '';
    for my $r (@{ $req->{resources} }) {
        my $rb = ld(1, ld(1, pb_kv('service.name', $r->{service})));
        for my $sc (@{ $r->{scopes} }) {
            my $sb = ld(1, ld(1, 'test-scope'));
            $sb .= ld(2, pb_span($_)) for @{ $sc->{spans} };
            $rb .= ld(2, $sb);
        }
        $out .= ld(1, $rb);
    }
    return $out;
}

# --------------------------------------------------------------------------
# OTLP/JSON

sub js { my ($s) = @_; $s =~ s/(["\\])/\\$1/g; return "\"$s\"" }

sub json_attrs {
    my ($a) = @_;
    my @a = @{ $a || [] };
    my @o;
    while (@a) {
        my ($k, $v) = splice(@a, 0, 2);
        push @o, '{"key":' . js($k) . ',"value":{"stringValue":' . js($v) . '}}';
    }
    return '[' . join(',', @o) . ']';
}

sub json_span {
    my ($s) = @_;
    my $j = '{"traceId":"' . $s->{trace_id} . '","spanId":"' . $s->{span_id}
          . '","name":' . js($s->{name}) . ',"kind":2,'
          . '"startTimeUnixNano":"1700000000000000000",'
          . '"endTimeUnixNano":"1700000000001000000",'
          . '"attributes":' . json_attrs($s->{attributes});
    $j .= ',"droppedAttributesCount":' . $s->{dropped_attributes_count}
        if $s->{dropped_attributes_count};
    $j .= ',"events":[' . join(',', map {
              '{"timeUnixNano":"1700000000000500000","name":' . js($_->{name})
            . ',"attributes":' . json_attrs($_->{attributes}) . '}' } @{ $s->{events} || [] })
        . ']' if $s->{events};
    $j .= ',"links":[' . join(',', map {
              '{"traceId":"' . $_->{trace_id} . '","spanId":"' . $_->{span_id}
            . '","attributes":' . json_attrs($_->{attributes}) . '}' } @{ $s->{links} || [] })
        . ']' if $s->{links};
    return $j . '}';
}

sub json {
    my ($req) = @_;
    my @rs;
    for my $r (@{ $req->{resources} }) {
        my @ss;
        for my $sc (@{ $r->{scopes} }) {
            push @ss, '{"scope":{"name":"test-scope"},"spans":['
                    . join(',', map { json_span($_) } @{ $sc->{spans} }) . ']}';
        }
        push @rs, '{"resource":{"attributes":' . json_attrs([ 'service.name', $r->{service} ])
                . '},"scopeSpans":[' . join(',', @ss) . ']}';
    }
    return '{"resourceSpans":[' . join(',', @rs) . ']}';
}

# --------------------------------------------------------------------------
# requests of a given shape

my $SEQ = 0;

# resources x scopes x spans; per span attrs attributes (values of vlen
# bytes), events events and links links (each with eattrs attributes).
# trace_id => HEX puts every span in that trace (else a new one per call).
sub request {
    my (%o) = @_;
    my $tid = $o{trace_id} // sprintf('%08x%024x', $$, ++$SEQ);
    my $vlen = $o{vlen} // 8;
    my $n = 0;
    my @res;
    for my $ri (1 .. ($o{resources} // 1)) {
        my @scopes;
        for my $si (1 .. ($o{scopes} // 1)) {
            my @spans;
            for my $pi (1 .. ($o{spans} // 1)) {
                $n++;
                my @attr = map { ("k$_", substr(('v' x $vlen) . $_, -$vlen)) }
                               1 .. ($o{attrs} // 0);
                my @ea = map { ("e$_", 'x') } 1 .. ($o{eattrs} // 0);
                push @spans, {
                    trace_id => $tid, span_id => sprintf('%016x', $n + ($o{span_base} // 0)),
                    name => "span $n", attributes => \@attr,
                    dropped_attributes_count => $o{dropped_attributes_count},
                    events => [ map { { name => "event $_", attributes => [ @ea ] } }
                                    1 .. ($o{events} // 0) ],
                    links => [ map { { trace_id => 'ab' x 16, span_id => sprintf('%016x', $_),
                                       attributes => [ @ea ] } } 1 .. ($o{links} // 0) ],
                };
            }
            push @scopes, { spans => \@spans };
        }
        push @res, { service => "svc-$ri", scopes => \@scopes };
    }
    return { resources => \@res, trace_id => $tid };
}

1;
