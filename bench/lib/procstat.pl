#!/usr/bin/perl
# procstat.pl PID...: CPU and memory of the given processes and all their descendants
# (a master and its workers). Prints one line of key=value:
#   ticks    utime+stime of all of them, in clock ticks (all threads included)
#   hz       clock ticks per second
#   rss_kb   sum of VmRSS          hwm_kb   sum of VmHWM (peak RSS) of each process
#   hwm_max_kb  largest single VmHWM         nproc    how many processes
#   pids     the pids counted
use strict; use warnings;
my @roots = grep { /^\d+$/ } @ARGV;
my %kids;
opendir(my $d, '/proc') or die;
for my $p (grep { /^\d+$/ } readdir $d) {
    open(my $f, '<', "/proc/$p/stat") or next;
    my $l = <$f>; close $f; next unless defined $l;
    $l =~ s/^.*\)\s+//s;                      # after "(comm)"
    my @x = split ' ', $l;                    # x[0]=state x[1]=ppid
    push @{ $kids{$x[1]} }, $p;
}
my (%seen, @all);
my @q = @roots;
while (@q) {
    my $p = shift @q;
    next if $seen{$p}++ || !-e "/proc/$p";
    push @all, $p;
    push @q, @{ $kids{$p} || [] };
}
my ($ticks, $rss, $hwm, $hwmmax) = (0, 0, 0, 0);
for my $p (@all) {
    if (open(my $f, '<', "/proc/$p/stat")) {
        my $l = <$f>; close $f;
        $l =~ s/^.*\)\s+//s;
        my @x = split ' ', $l;                # utime = field 14 -> x[11], stime -> x[12]
        $ticks += $x[11] + $x[12];
    }
    if (open(my $f, '<', "/proc/$p/status")) {
        while (<$f>) {
            $rss += $1 if /^VmRSS:\s+(\d+)/;
            if (/^VmHWM:\s+(\d+)/) { $hwm += $1; $hwmmax = $1 if $1 > $hwmmax; }
        }
        close $f;
    }
}
my $hz = 100;
if (open(my $g, '-|', 'getconf', 'CLK_TCK')) { my $v = <$g>; close $g; $hz = $1 if defined $v && $v =~ /(\d+)/; }
printf "ticks=%d hz=%d rss_kb=%d hwm_kb=%d hwm_max_kb=%d nproc=%d pids=%s\n",
    $ticks, $hz, $rss, $hwm, $hwmmax, scalar @all, join(',', @all) || '-';
