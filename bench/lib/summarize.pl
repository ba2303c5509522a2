#!/usr/bin/perl
# summarize.pl RESULTSDIR: turns the raw .tsv files of one bench/run.sh run into the markdown
# summary (tables + the issue's 8 targets, met or not). Perl core modules only.
use strict; use warnings;
use List::Util qw(min max sum);

my $dir = shift or die "usage: summarize.pl RESULTSDIR\n";

sub read_tsv {
    my $f = shift;
    open(my $fh, '<', $f) or return ();
    my $h = <$fh>; return () unless $h;
    chomp $h; my @k = split /\t/, $h;
    my @rows;
    while (my $l = <$fh>) { chomp $l; next unless length $l; my %r; @r{@k} = split /\t/, $l, -1; push @rows, \%r; }
    return @rows;
}
sub median {
    my @v = sort { $a <=> $b } grep { defined && length } @_;
    return undef unless @v;
    return @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
}
sub fmt { my ($f, $v) = @_; defined $v ? sprintf($f, $v) : '–' }
sub ratio { my ($a, $b) = @_; (defined $a && defined $b && $b > 0) ? $a / $b : undef }

my @targets = qw(direct nginx-plain nginx-traceid tracegate-off tracegate tracegate-10 tracegate-1 tracegate-deadsink);
my %tord; @tord{@targets} = 0 .. $#targets;
my @scen = qw(c1 c50 c256 c50-4k close50);
my %sdesc = (c1 => '1 keep-alive connection, 2-byte body', c50 => '50 keep-alive connections, 2-byte body',
             c256 => '256 keep-alive connections, 2-byte body', 'c50-4k' => '50 keep-alive connections, 4 KiB body',
             close50 => '50 concurrent, connection per request (Connection: close), 2-byte body');

my $env = '';
if (open(my $e, '<', "$dir/env.txt")) { local $/; $env = <$e>; }
print "# tracegate benchmark\n\n";
print "```\n$env```\n\n";

# ---------------------------------------------------------------- load
my (%L, %workers);
for my $r (read_tsv("$dir/load.tsv")) {
    my $k = join $;, $r->{workers}, $r->{scenario}, $r->{target};
    $workers{$r->{workers}} = 1;
    my $cpu = $r->{requests} > 0 ? $r->{cpu_ticks} / $r->{hz} / $r->{requests} * 1e5 : undef;
    push @{ $L{$k}{rps} }, $r->{rps};
    push @{ $L{$k}{p99} }, $r->{p99_us} / 1000;
    push @{ $L{$k}{cpu} }, $cpu if defined $cpu;
    push @{ $L{$k}{rss} }, $r->{rss_mid_kb} / 1024 if length $r->{rss_mid_kb};
    $L{$k}{errors} += $r->{errors};
    $L{$k}{requests} += $r->{requests};
    $L{$k}{lines} += $r->{access_log_lines} if $r->{access_log_lines} =~ /^\d+$/;
    $L{$k}{haslog} = 1 if $r->{access_log_lines} =~ /^\d+$/;
    $L{$k}{n}++;
    push @{ $L{$k}{other} }, $r->{other_cpu_pct} if defined $r->{other_cpu_pct} && $r->{other_cpu_pct} =~ /^\d/;
}
my %M;   # medians
for my $k (keys %L) {
    for my $m (qw(rps p99 cpu rss other)) { $M{$k}{$m} = median(@{ $L{$k}{$m} || [] }); }
    $M{$k}{rps_min} = min(@{ $L{$k}{rps} }); $M{$k}{rps_max} = max(@{ $L{$k}{rps} });
    $M{$k}{p99_min} = min(@{ $L{$k}{p99} }); $M{$k}{p99_max} = max(@{ $L{$k}{p99} });
}
sub med { my ($w, $s, $t, $m) = @_; my $k = join $;, $w, $s, $t; $M{$k} ? $M{$k}{$m} : undef }

if (%L) {
    print "## Load (wrk --latency, medians of the interleaved runs; ratios against nginx measured in the same run)\n\n";
    print "CPU = CPU seconds of the proxy's processes (master + workers, all threads; for `direct`, the upstream) per 100k\n",
          "requests. RSS = sum of the proxy's processes' RSS sampled mid-run. ×plain / ×traceid = req/s ratio of medians.\n",
          "other % = busy time of the servers' CPU (softirq left out) not charged to the proxy or the upstream (other work on the\n",
          "machine), median over the runs: a few % is normal, much more means the machine was not quiet.\n\n";
}
for my $w (sort { $a <=> $b } keys %workers) {
    for my $s (@scen) {
        my @ts = sort { $tord{$a} <=> $tord{$b} } grep { $L{join $;, $w, $s, $_} } @targets;
        next unless @ts;
        print "### workers=$w, $s: $sdesc{$s}\n\n";
        print "| target | req/s median | min–max | ×plain | ×traceid | p99 ms (min–max) | CPU s/100k | CPU ×plain | RSS MiB | errors | log lines/req | other % |\n";
        print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
        for my $t (@ts) {
            my $k = join $;, $w, $s, $t;
            my $d = $M{$k};
            printf "| %s | %s | %s–%s | %s | %s | %s (%s–%s) | %s | %s | %s | %d | %s | %s |\n", $t,
                fmt('%.0f', $d->{rps}), fmt('%.0f', $d->{rps_min}), fmt('%.0f', $d->{rps_max}),
                fmt('%.3f', ratio($d->{rps}, med($w, $s, 'nginx-plain', 'rps'))),
                fmt('%.3f', ratio($d->{rps}, med($w, $s, 'nginx-traceid', 'rps'))),
                fmt('%.2f', $d->{p99}), fmt('%.2f', $d->{p99_min}), fmt('%.2f', $d->{p99_max}),
                fmt('%.3f', $d->{cpu}), fmt('%.3f', ratio($d->{cpu}, med($w, $s, 'nginx-plain', 'cpu'))),
                fmt('%.1f', $d->{rss}), $L{$k}{errors},
                $L{$k}{haslog} ? fmt('%.3f', ratio($L{$k}{lines}, $L{$k}{requests})) : '–', fmt('%.0f', $d->{other});
        }
        print "\n";
    }
}

my @pk = read_tsv("$dir/peak.tsv");
if (@pk) {
    print "### Peak RSS over the whole load phase (summed VmHWM of the proxy's processes; direct = the upstream)\n\n";
    print "| workers | target | peak RSS MiB | largest process MiB | processes |\n|---:|---|---:|---:|---:|\n";
    printf "| %s | %s | %.1f | %.1f | %s |\n", $_->{workers}, $_->{target}, $_->{hwm_kb} / 1024, $_->{hwm_max_kb} / 1024, $_->{nproc}
        for sort { $a->{workers} <=> $b->{workers} || $tord{$a->{target}} <=> $tord{$b->{target}} } @pk;
    print "\n";
}

# ---------------------------------------------------------------- streams
my %S;
my @srows = read_tsv("$dir/stream.tsv");
if (@srows) {
    print "## Streaming (one transfer each way, Content-Length, fresh process; RSS growth = rise of the summed VmHWM)\n\n";
    print "| workers | target | upload MiB/s | upload RSS growth MiB | download MiB/s | download RSS growth MiB | status |\n";
    print "|---:|---|---:|---:|---:|---:|---|\n";
    my %by;
    for my $r (@srows) { $by{$r->{workers}}{$r->{target}}{$r->{direction}} = $r; $S{$r->{workers}}{$r->{target}}{$r->{direction}} = $r; }
    for my $w (sort keys %by) {
        for my $t (sort { $tord{$a} <=> $tord{$b} } keys %{ $by{$w} }) {
            my ($u, $d) = @{ $by{$w}{$t} }{qw(upload download)};
            my @bad = map { "$_->{direction} http $_->{http_code}" } grep { $_ && $_->{http_code} ne '200' } ($u, $d);
            printf "| %s | %s | %s | %s | %s | %s | %s |\n", $w, $t,
                $u ? $u->{mib_per_s} : '–', $u ? fmt('%.1f', $u->{growth_kb} / 1024) : '–',
                $d ? $d->{mib_per_s} : '–', $d ? fmt('%.1f', $d->{growth_kb} / 1024) : '–',
                @bad ? join(', ', @bad) : 'ok';
        }
    }
    print "\n";
}

# ---------------------------------------------------------------- idle
my %I;
my @irows = read_tsv("$dir/idle.tsv");
if (@irows) {
    print "## Idle keep-alive connections (one request each, then held open; RSS summed over the proxy's processes)\n\n";
    print "| workers | target | connections | answered | still held | RSS before MiB | RSS after MiB | KiB per connection |\n";
    print "|---:|---|---:|---:|---:|---:|---:|---:|\n";
    for my $r (sort { $a->{workers} <=> $b->{workers} || $tord{$a->{target}} <=> $tord{$b->{target}} || $a->{connections} <=> $b->{connections} } @irows) {
        $I{$r->{workers}}{$r->{target}}{$r->{connections}} = $r;
        printf "| %s | %s | %d | %d | %d | %.1f | %.1f | %.2f |\n", $r->{workers}, $r->{target}, $r->{connections},
            $r->{ok}, $r->{held}, $r->{rss_before_kb} / 1024, $r->{rss_after_kb} / 1024, $r->{kib_per_conn};
    }
    print "\n";
}

# ---------------------------------------------------------------- spans
my @prows = read_tsv("$dir/spans.tsv");
my %P;
if (@prows) {
    print "## Spans counted by the sink against the requests wrk completed\n\n";
    print "(lost = requests − SERVER spans when positive, at 100% sampling; requests in flight when wrk stops can add a few spans.)\n\n";
    print "| workers | target | scope | requests | spans | SERVER | SERVER / requests | CLIENT | export POSTs | decode errors | lost |\n";
    print "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for my $r (@prows) {
        push @{ $P{$r->{workers}}{$r->{target}}{$r->{scope} =~ /^c50-run/ ? 'c50' : $r->{scope}} }, $r;
        printf "| %s | %s | %s | %d | %d | %d | %s | %d | %d | %d | %s |\n", @{$r}{qw(workers target scope requests spans server_spans)},
            fmt('%.4f', ratio($r->{server_spans}, $r->{requests})), @{$r}{qw(client_spans trace_posts decode_errors lost)};
    }
    print "\n";
}

# ---------------------------------------------------------------- exporter
my @erows = read_tsv("$dir/exporter.tsv");
my %E;
if (@erows) {
    print "## Exporter micro-benchmark (one ring, one exporter thread, OTLP/HTTP protobuf to the sink; objs/tests/tools/otlp_bench)\n\n";
    print "| compression | runs | spans/s median | min–max | exported / pushed | dropped | sink counted |\n|---|---:|---:|---:|---:|---:|---:|\n";
    my %by;
    push @{ $by{$_->{compression}} }, $_ for @erows;
    for my $z (sort keys %by) {
        my @r = @{ $by{$z} };
        my @v = grep { length } map { $_->{spans_per_s} } @r;
        $E{$z} = median(@v);
        printf "| %s | %d | %s | %s–%s | %s / %s | %s | %s |\n", $z, scalar @r, fmt('%.0f', $E{$z}),
            @v ? (min(@v), max(@v)) : ('–', '–'), sum(map { $_->{exported} || 0 } @r), sum(map { $_->{spans} || 0 } @r),
            sum(map { $_->{dropped} || 0 } @r), sum(map { $_->{sink_spans} || 0 } @r);
    }
    print "\n";
}

# ---------------------------------------------------------------- notes
if (open(my $n, '<', "$dir/notes.txt")) { print "## Notes\n\n"; print "- $_" while <$n>; print "\n"; }

# ---------------------------------------------------------------- the issue's targets (workers = 1)
my $w = 1;
print "## Issue 5 targets (workers=1, medians of this run)\n\n";
print "| # | target | measured | verdict |\n|---|---|---|---|\n";
sub verdict { my @c = @_; return 'n/a (not measured)' if grep { !defined } @c; return (grep { !$_ } @c) ? '**NOT met**' : 'met'; }
my @rows;
{   # 1
    my @m; my @c;
    for my $s (qw(c50 c256)) {
        my $r = ratio(med($w, $s, 'tracegate', 'rps'), med($w, $s, 'nginx-plain', 'rps'));
        my $q = ratio(med($w, $s, 'tracegate', 'rps'), med($w, $s, 'nginx-traceid', 'rps'));
        push @m, sprintf('%s: %s× plain, %s× traceid', $s, fmt('%.3f', $r), fmt('%.3f', $q));
        push @c, defined $r ? $r >= 1.0 : undef, defined $q ? $q >= 1.25 : undef;
    }
    push @rows, [1, 'tracegate ≥ 1.0× nginx-plain req/s at 50 and 256 (≥ 1.25× nginx-traceid)', join('; ', @m), verdict(@c)];
}
{   # 2
    my @m; my @c;
    for my $s (qw(c50 c256)) {
        my ($a, $b) = (med($w, $s, 'tracegate', 'p99'), med($w, $s, 'nginx-plain', 'p99'));
        push @m, sprintf('%s: %s vs %s ms (%s×)', $s, fmt('%.2f', $a), fmt('%.2f', $b), fmt('%.3f', ratio($a, $b)));
        push @c, (defined $a && defined $b) ? $a <= $b : undef;
    }
    push @rows, [2, 'tracegate p99 ≤ nginx-plain p99 at 50 and 256', join('; ', @m), verdict(@c)];
}
{   # 3
    my @m; my @c;
    for my $s (qw(c50 c256)) {
        my $r = ratio(med($w, $s, 'tracegate-off', 'rps'), med($w, $s, 'nginx-plain', 'rps'));
        push @m, sprintf('%s: %s×', $s, fmt('%.3f', $r));
        push @c, defined $r ? $r >= 1.1 : undef;
    }
    push @rows, [3, 'tracegate-off ≥ 1.1× nginx-plain', join('; ', @m), verdict(@c)];
}
{   # 4
    my @m; my @c;
    for my $s (qw(c50 c256)) {
        my $r = ratio(med($w, $s, 'tracegate-deadsink', 'rps'), med($w, $s, 'tracegate', 'rps'));
        push @m, sprintf('%s: %s× tracegate', $s, fmt('%.3f', $r));
        push @c, defined $r ? $r >= 0.97 : undef;
    }
    push @rows, [4, 'tracegate-deadsink within 3% of tracegate', join('; ', @m), verdict(@c)];
}
{   # 5
    my @m; my @c;
    for my $s (qw(c50 c256)) {
        my ($a, $b, $x) = (med($w, $s, 'tracegate', 'cpu'), med($w, $s, 'nginx-plain', 'cpu'), med($w, $s, 'nginx-traceid', 'cpu'));
        push @m, sprintf('%s: %s vs plain %s s/100k (%s×; traceid %s)', $s, fmt('%.3f', $a), fmt('%.3f', $b), fmt('%.3f', ratio($a, $b)), fmt('%.3f', $x));
        push @c, (defined $a && defined $b) ? $a <= $b : undef;
    }
    push @rows, [5, 'CPU per request of tracegate ≤ nginx-plain', join('; ', @m), verdict(@c)];
}
{   # 6
    my $i = $I{$w}{tracegate}{10000};
    my $ni = $I{$w}{'nginx-plain'}{10000};
    my ($a, $b) = (med($w, 'c50', 'tracegate', 'rss'), med($w, 'c50', 'nginx-plain', 'rss'));
    my $m = sprintf('idle 10k: %s KiB/conn (nginx-plain %s); RSS at c50: %s vs %s MiB', $i ? $i->{kib_per_conn} : '–',
                    $ni ? $ni->{kib_per_conn} : '–', fmt('%.1f', $a), fmt('%.1f', $b));
    push @rows, [6, 'idle keep-alive ≤ 1 KiB each at 10k; RSS under 50-conn load ≤ nginx', $m,
                 verdict($i ? ($i->{kib_per_conn} <= 1.0 && $i->{held} >= 0.99 * $i->{connections}) : undef,
                         (defined $a && defined $b) ? $a <= $b : undef)];
}
{   # 7
    my $rs = $P{$w}{tracegate}{c50};
    my ($sent, $lost) = (0, 0);
    if ($rs) { $sent += $_->{requests} for @$rs; $lost += ($_->{lost} =~ /^\d+$/ ? $_->{lost} : 0) for @$rs; }
    my $mb = $E{none};
    push @rows, [7, 'one exporter thread ≥ 200k spans/s; zero lost at 100% with a live sink (c50)',
                 sprintf('exporter: %s spans/s (gzip: %s); c50: %s lost of %s requests', fmt('%.0f', $mb), fmt('%.0f', $E{gzip}),
                         $rs ? $lost : '–', $rs ? $sent : '–'),
                 verdict(defined $mb ? $mb >= 200000 : undef, $rs ? $lost == 0 : undef)];
}
{   # 8
    my ($u, $d) = map { $S{$w}{tracegate}{$_} } qw(upload download);
    my $ok = sub { my $r = shift; $r && $r->{http_code} eq '200' };
    push @rows, [8, '1 GB streamed both ways, proxy RSS growth ≤ 16 MiB',
                 sprintf('upload %s MiB/s +%s MiB; download %s MiB/s +%s MiB', $u ? $u->{mib_per_s} : '–', $u ? fmt('%.1f', $u->{growth_kb} / 1024) : '–',
                         $d ? $d->{mib_per_s} : '–', $d ? fmt('%.1f', $d->{growth_kb} / 1024) : '–'),
                 verdict($u ? ($ok->($u) && $u->{growth_kb} <= 16384) : undef, $d ? ($ok->($d) && $d->{growth_kb} <= 16384) : undef)];
}
printf "| %s | %s | %s | %s |\n", @$_ for @rows;
print "\n";
