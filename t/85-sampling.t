#!/usr/bin/perl
# Sampling (issue 3 item 6, DESIGN.md 7.2): the OTel SDK samplers from
# [trace] or OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, the sampled flag
# the upstream and the client see, spans exported only for sampled
# requests (file exporter, flushed by a graceful stop), unsampled requests
# still propagated with their ids. The ratio decision is a function of the
# trace id: rightmost 7 bytes < ratio * 2^56.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use TG;
use TGTrace;
TG::need_modules(qw(otlp access_log));

TGTrace::clean_env();

my $T = '4bf92f3577b34da6a3ce929d0e0e4736';
my $P = '00f067aa0ba902b7';
my $LOW  = '4bf92f3577b34da6a3' . '00000000000001';   # low 56 bits = 1
my $HIGH = '4bf92f3577b34da6a3' . 'ffffffffffffff';   # low 56 bits = max

my $up = TG::mock_upstream(name => 'a');
my $n = 0;

sub instance {
    my ($trace, %o) = @_;
    $n++;
    my ($t) = TGTrace::gateway(name => "85-sampling-$n", up => $up, trace => $trace,
                               otlp => "exporter = file\nschedule_delay = 100ms\n", %o);
    return $t;
}

# one request; returns { flags (upstream), trace, tr_flags, tr_span, xid, status }
sub req {
    my ($t, $in, $path) = @_;
    my @h = defined $in ? (['traceparent', $in]) : ();
    my ($r, $e) = TGTrace::via($t, $path // '/service-a/s', headers => \@h);
    my @tp = TGTrace::tp(TGTrace::one($e, 'traceparent'));
    my @tr = TGTrace::tp(TGTrace::rhdr1($r, 'traceresponse'));
    return { status => $r && $r->{status}, flags => $tp[3], trace => $tp[1], parent => $tp[2],
             tr_trace => $tr[1], tr_span => $tr[2], tr_flags => $tr[3],
             xid => TGTrace::rhdr1($r, 'X-Trace-ID') };
}

# stops (the exporter flushes on a graceful stop) and returns the spans
sub spans_after_stop {
    my ($t) = @_;
    ok($t->stop(10), "$t->{name}: graceful stop");
    return TGTrace::file_spans("$t->{dir}/logs/spans.jsonl");
}

# [incoming traceparent or undef, expected upstream flags, what]
sub flags_cases {
    my ($t, $label, @cases) = @_;
    my %sampled;       # SERVER span id => 1 if its request was sampled
    for my $c (@cases) {
        my ($in, $want, $what) = @$c;
        my $x = req($t, $in);
        is($x->{flags}, $want, "$label, $what: upstream flags $want");
        is($x->{tr_flags}, $want, "$label, $what: traceresponse flags $want");
        if (defined $in && $in =~ /^00-([0-9a-f]{32})-/ && $what !~ /invalid/) {
            is($x->{trace}, $1, "$label, $what: trace id kept whatever the decision");
        }
        is($x->{xid}, $x->{trace}, "$label, $what: X-Trace-ID present");
        $sampled{ $x->{tr_span} // '' } = $want eq '01' ? 1 : 0;
    }
    return \%sampled;
}

sub spans_match {
    my ($t, $label, $sampled) = @_;
    my @s = spans_after_stop($t);
    my %srv = map { ($_->{span_id} => 1) } grep { $_->{kind} == 2 } @s;
    my $want = grep { $_ } values %$sampled;
    is(scalar(keys %srv), $want, "$label: $want SERVER spans exported");
    is(scalar(@s), 2 * $want, "$label: and as many CLIENT spans");
    my @wrong = grep { ($sampled->{$_} ? 1 : 0) != ($srv{$_} ? 1 : 0) } keys %$sampled;
    is(scalar(@wrong), 0, "$label: exactly the sampled requests have spans");
}

# ---------------------------------------------------------------------------

{
    my $t = instance("sampler = always_off\n");
    my $s = flags_cases($t, 'always_off',
        [undef, '00', 'no context'],
        ["00-$T-$P-01", '00', 'incoming 01'],
        ["00-$T-$P-00", '00', 'incoming 00']);
    my $x = req($t, undef, '/nope');
    is($x->{status}, 404, 'always_off: 404');
    is($x->{tr_flags}, '00', 'always_off: 404 traceresponse flags 00');
    ok($x->{xid}, 'always_off: 404 has X-Trace-ID');
    $s->{ $x->{tr_span} // '' } = 0;
    spans_match($t, 'always_off', $s);
}
{
    my $t = instance("sampler = always_on\n");
    my $s = flags_cases($t, 'always_on',
        [undef, '01', 'no context'],
        ["00-$T-$P-01", '01', 'incoming 01'],
        ["00-$T-$P-00", '01', 'incoming 00']);
    spans_match($t, 'always_on', $s);
}
{
    my $t = instance("sampler = traceidratio\nsampler_arg = 0\n");
    my $s = flags_cases($t, 'traceidratio 0',
        (map { [undef, '00', "no context $_"] } 1 .. 5),
        ["00-$T-$P-01", '00', 'incoming 01'],
        ["00-$LOW-$P-01", '00', 'incoming 01, lowest trace id']);
    spans_match($t, 'traceidratio 0', $s);
}
{
    my $t = instance("sampler = traceidratio\nsampler_arg = 1\n");
    my $s = flags_cases($t, 'traceidratio 1',
        (map { [undef, '01', "no context $_"] } 1 .. 5),
        ["00-$T-$P-00", '01', 'incoming 00'],
        ["00-$HIGH-$P-00", '01', 'incoming 00, highest trace id']);
    spans_match($t, 'traceidratio 1', $s);
}
{
    # 0.5: sampled exactly when the low 56 bits are < 2^55, i.e. when hex
    # digit 18 of the trace id is < 8; the same for every instance
    my $t = instance("sampler = traceidratio\nsampler_arg = 0.5\n");
    my $s = flags_cases($t, 'traceidratio 0.5',
        ["00-$LOW-$P-00", '01', 'incoming 00, low trace id'],
        ["00-$HIGH-$P-01", '00', 'incoming 01, high trace id'],
        ["00-4bf92f3577b34da6a37fffffffffffff-$P-00", '01', 'just below the threshold'],
        ["00-4bf92f3577b34da6a380000000000000-$P-01", '00', 'at the threshold']);
    my (%seen, $bad);
    for my $i (1 .. 40) {
        my $x = req($t, undef);
        my $want = hex(substr($x->{trace} // '0' x 32, 18, 1)) < 8 ? '01' : '00';
        $seen{ $x->{flags} // '' }++;
        $bad++ unless ($x->{flags} // '') eq $want;
        $s->{ $x->{tr_span} // '' } = $want eq '01' ? 1 : 0;
    }
    ok(!$bad, 'traceidratio 0.5: each new trace decided by its trace id')
        or diag("$bad of 40 decisions differ from (low 56 bits < 2^55)");
    ok($seen{'01'}, 'traceidratio 0.5: sampled traces among 40 new traces') or diag(join ' ', %seen);
    ok($seen{'00'}, 'traceidratio 0.5: unsampled traces among 40 new traces') or diag(join ' ', %seen);
    spans_match($t, 'traceidratio 0.5', $s);
}
{
    my $t = instance('');   # the default: parentbased_always_on
    my $s = flags_cases($t, 'default parentbased_always_on',
        [undef, '01', 'no context'],
        ["00-$T-$P-01", '01', 'incoming 01'],
        ["00-$T-$P-00", '00', 'incoming 00'],
        ["00-$T-$P-02", '00', 'incoming 02 (sampled bit clear)'],
        ["00-$T-" . ('0' x 16) . "-00", '01', 'invalid incoming 00: root decides']);
    my $x = req($t, "00-$T-" . ('0' x 16) . "-00");
    ok($x->{trace}, 'parentbased_always_on, invalid incoming: a trace id');
    isnt($x->{trace}, $T, 'parentbased_always_on, invalid incoming: a new trace');
    $s->{ $x->{tr_span} // '' } = 1;
    spans_match($t, 'parentbased_always_on', $s);
}
{
    my $t = instance("sampler = parentbased_always_off\n");
    my $s = flags_cases($t, 'parentbased_always_off',
        [undef, '00', 'no context'],
        ["00-$T-$P-01", '01', 'incoming 01'],
        ["00-$T-$P-00", '00', 'incoming 00']);
    spans_match($t, 'parentbased_always_off', $s);
}
{
    my $t = instance("sampler = parentbased_traceidratio\nsampler_arg = 0\n");
    my $s = flags_cases($t, 'parentbased_traceidratio 0',
        [undef, '00', 'no context'],
        ["00-$HIGH-$P-01", '01', 'incoming 01'],
        ["00-$LOW-$P-00", '00', 'incoming 00']);
    spans_match($t, 'parentbased_traceidratio 0', $s);
    $t = instance("sampler = parentbased_traceidratio\nsampler_arg = 1\n");
    flags_cases($t, 'parentbased_traceidratio 1',
        [undef, '01', 'no context'],
        ["00-$T-$P-00", '00', 'incoming 00']);
    $t->stop;
}

# ---------------------------------------------------------------------------
# OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG when [trace] leaves them unset

{
    my $t = instance('', env => { OTEL_TRACES_SAMPLER => 'always_off' });
    flags_cases($t, 'env always_off', [undef, '00', 'no context'], ["00-$T-$P-01", '00', 'incoming 01']);
    $t->stop;
    $t = instance("sampler = always_on\n", env => { OTEL_TRACES_SAMPLER => 'always_off' });
    flags_cases($t, 'conf always_on over env always_off', [undef, '01', 'no context']);
    $t->stop;
    $t = instance('', env => { OTEL_TRACES_SAMPLER => 'parentbased_traceidratio',
                               OTEL_TRACES_SAMPLER_ARG => '0' });
    flags_cases($t, 'env parentbased_traceidratio 0',
        [undef, '00', 'no context'], ["00-$T-$P-01", '01', 'incoming 01']);
    $t->stop;
    $t = instance("sampler_arg = 1\n", env => { OTEL_TRACES_SAMPLER => 'traceidratio',
                                                OTEL_TRACES_SAMPLER_ARG => '0' });
    flags_cases($t, 'env traceidratio, conf sampler_arg 1 over env 0', [undef, '01', 'no context']);
    $t->stop;
    $t = instance('', env => { OTEL_TRACES_SAMPLER => 'traceidratio',
                               OTEL_TRACES_SAMPLER_ARG => 'abc' });
    flags_cases($t, 'env traceidratio, bad arg (ignored: 1.0)', [undef, '01', 'no context']);
    $t->stop;
    like($t->stderr_log . $t->error_log, qr/OTEL_TRACES_SAMPLER_ARG.*abc/,
         'a bad OTEL_TRACES_SAMPLER_ARG is logged');
    $t = instance('', env => { OTEL_TRACES_SAMPLER => '' });
    flags_cases($t, 'env empty = unset (parentbased_always_on)',
        [undef, '01', 'no context'], ["00-$T-$P-00", '00', 'incoming 00']);
    $t->stop;
}

# configuration errors name the key
{
    for my $c (["sampler = sometimes\n", 'sampler'], ["sampler_arg = 1.5\n", 'sampler_arg'],
               ["sampler = traceidratio\nsampler_arg = -0.1\n", 'sampler_arg']) {
        my ($body, $key) = @$c;
        my $t = TG->new('85-sampling-bad');
        $t->write_conf($t->main_conf . "[trace]\n$body");
        my ($rc, $out, $err) = $t->cli('-t');
        (my $one = $body) =~ s/\n/; /g;
        isnt($rc, 0, "'$one': -t fails");
        like($err . $out, qr/$key/, "'$one': the error names $key");
    }
}

# ---------------------------------------------------------------------------
# unsampled requests are logged with their ids (access log, issue 3 item 7)

SKIP: {
    my $probe = TG->new('85-sampling-log');
    $probe->write_conf($probe->main_conf("access_log = logs/access.log trace")
                       . "[trace]\nsampler = always_off\n[otlp]\nexporter = none\n");
    my ($rc, $out, $err) = $probe->cli('-t');
    skip "access_log is not accepted by this build ($err$out)", 3 if $rc != 0;
    my ($t) = TGTrace::gateway(name => '85-sampling-log', up => $up,
                               main => "access_log = logs/access.log trace",
                               trace => "sampler = always_off\n");
    my $x = req($t, "00-$T-$P-01");
    is($x->{flags}, '00', 'access log: the request was not sampled');
    $t->stop;
    my $log = TG::slurp("$t->{dir}/logs/access.log") // '';
    like($log, qr/trace_id=$T\b/, 'access log: the unsampled request has its trace id');
    like($log, qr/sampled=(0|false)\b/, 'access log: marked unsampled');
}

done_testing();
