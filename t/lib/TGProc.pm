package TGProc;

# Processes of the tests: every process a test starts is recorded in
# %STARTED and killed (QUIT/TERM, then KILL) in END, so a failing test
# leaves nothing behind; forked children set $IS_CHILD and leave through
# POSIX::_exit so that they never run the parent's END blocks.  The /proc
# helpers (alive, children_of, rss, threads_of, reap, kill_proc), and the
# methods of a TG prefix that run objs/tracegate in it (run_cli, cli, start,
# start_ok, stop, signal, workers, master_pid_from_file) and read its logs
# (error_log, stderr_log, dump_logs): TG inherits them.  Perl core modules
# only.

use strict;
use warnings;

use Exporter qw(import);
use POSIX qw(:sys_wait_h);
use Test::More ();
use Time::HiRes qw(time sleep);

use TGNet qw(port_accepts);
use TGUtil qw($ROOT slurp tail wait_for);

our @EXPORT_OK = qw($BIN %STARTED $IS_CHILD alive children_of rss threads_of
                    reap kill_proc);

our $BIN = $ENV{TG_BINARY} || "$ROOT/objs/tracegate";

our %STARTED;        # pid => { kind => 'tracegate'|'mock', sig => 'QUIT'|'TERM' }
our $IS_CHILD = 0;

# --------------------------------------------------------------------------
# processes: /proc helpers

sub alive {
    my ($pid) = @_;
    return 0 unless $pid;
    return 0 unless kill 0, $pid;
    my $st = slurp("/proc/$pid/stat") // return 0;
    return 0 if $st =~ /^\d+ \(.*\) [ZX] /s;
    return 1;
}

# Child pids of $ppid (from /proc/*/stat), sorted; zombies excluded.
sub children_of {
    my ($ppid) = @_;
    my @k;
    opendir my $d, '/proc' or return ();
    for my $p (grep { /^\d+$/ } readdir $d) {
        my $st = slurp("/proc/$p/stat") // next;
        next unless $st =~ /^\d+ \(.*\) (\S) (\d+) /s;
        next if $1 eq 'Z' || $1 eq 'X';
        push @k, $p + 0 if $2 == $ppid;
    }
    closedir $d;
    my @s = sort { $a <=> $b } @k;
    return @s;                      # a count in scalar context
}

# (VmRSS, VmHWM) in kB of $pid, or () when gone.
sub rss {
    my ($pid) = @_;
    my $s = slurp("/proc/$pid/status") // return ();
    my ($rss) = $s =~ /^VmRSS:\s+(\d+)\s+kB/m;
    my ($hwm) = $s =~ /^VmHWM:\s+(\d+)\s+kB/m;
    return ($rss // 0, $hwm // 0);
}

sub threads_of {
    my ($pid) = @_;
    opendir my $d, "/proc/$pid/task" or return ();
    my @t = grep { /^\d+$/ } readdir $d;
    closedir $d;
    return @t;
}

# Reaps $pid if it is our child and has exited; returns 1 if it is gone.
sub reap {
    my ($pid) = @_;
    my $r = waitpid($pid, WNOHANG);
    return 1 if $r == $pid || $r == -1;
    return !alive($pid);
}

# Sends $sig, waits up to $timeout s, then KILLs.  Kills the children that
# the process had when we started (workers/handlers) too, if they linger.
sub kill_proc {
    my ($pid, $sig, $timeout) = @_;
    return unless $pid;
    my @kids = children_of($pid);
    kill $sig, $pid if alive($pid);
    my $end = time + ($timeout // 5);
    while (time < $end) {
        last if reap($pid);
        sleep 0.05;
    }
    unless (reap($pid)) {
        kill 'KILL', $pid;
        my $e2 = time + 2;
        sleep 0.02 while !reap($pid) && time < $e2;
    }
    # leftover children (e.g. workers of a killed master) would keep ports
    my $e3 = time + 2;
    while (grep { alive($_) } @kids and time < $e3) { sleep 0.05 }
    for my $k (@kids) { kill 'KILL', $k if alive($k) }
    delete $STARTED{$pid};
}

END {
    unless ($IS_CHILD) {
        local $?;
        for my $pid (sort { ($STARTED{$a}{kind} eq 'mock') <=> ($STARTED{$b}{kind} eq 'mock') }
                     keys %STARTED) {
            kill_proc($pid, $STARTED{$pid}{sig}, 3);
        }
    }
}

# --------------------------------------------------------------------------

# a tracegate process in a TG prefix ({dir}, {conf}, {port}, {pid})

sub error_log { my ($self) = @_; return slurp("$self->{dir}/logs/error.log") // '' }
sub stderr_log { my ($self) = @_; return slurp("$self->{dir}/logs/stderr.log") // '' }

# Runs objs/tracegate with @args; returns (exit code, stdout, stderr).
# Bounded by $TIMEOUT (10 s): a hanging command is KILLed, exit = -1.
sub run_cli {
    my ($self, @args) = @_;
    my $out = "$self->{dir}/logs/cli.out";
    my $err = "$self->{dir}/logs/cli.err";
    unless (-x $BIN) {
        return (-2, '', "$BIN does not exist or is not executable\n");
    }
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $IS_CHILD = 1;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>', $err;
        { exec $BIN, @args }
        POSIX::_exit(127);
    }
    my $end = time + 10;
    my $rc;
    while (time < $end) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) { $rc = $? >> 8; $rc = -($? & 127) if $? & 127; last }
        sleep 0.02;
    }
    unless (defined $rc) {
        kill 'KILL', $pid; waitpid($pid, 0); $rc = -1;
        Test::More::diag("tracegate @args did not exit within 10 s; killed");
    }
    return ($rc, slurp($out) // '', slurp($err) // '');
}

# Runs "objs/tracegate -p DIR -c CONF @extra" for -t/-T/-s.
sub cli {
    my ($self, @extra) = @_;
    return $self->run_cli('-p', $self->{dir}, '-c', $self->{conf}, @extra);
}

# Spawns the master in the foreground (conf must say daemon = off) and waits
# until $self->{port} accepts.  Returns the master pid, or undef (with diag)
# when it exited or did not listen within $o{timeout} (default 10 s).
sub start {
    my ($self, %o) = @_;
    my $timeout = $o{timeout} // 10;
    unless (-x $BIN) {
        Test::More::diag("$BIN does not exist or is not executable (run make)");
        return undef;
    }
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $IS_CHILD = 1;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', "$self->{dir}/logs/stderr.log";
        open STDERR, '>>', "$self->{dir}/logs/stderr.log";
        { exec $BIN, '-p', $self->{dir}, '-c', $self->{conf} }
        POSIX::_exit(127);
    }
    $STARTED{$pid} = { kind => 'tracegate', sig => 'QUIT' };
    $self->{pid} = $pid;
    my $end = time + $timeout;
    while (time < $end) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid) {
            my $st = $?;
            delete $STARTED{$pid};
            delete $self->{pid};
            Test::More::diag(sprintf("tracegate exited during start-up (status %d, signal %d)",
                         $st >> 8, $st & 127));
            $self->dump_logs;
            return undef;
        }
        if (port_accepts($self->{port}, 0.2)) {
            # workers may still be starting: wait for one to exist
            wait_for(3, sub { scalar children_of($pid) });
            # whoever accepted, it was not this tracegate if it has failed
            return $pid if waitpid($pid, WNOHANG) != $pid || $? == 0;
            delete $STARTED{$pid};
            delete $self->{pid};
            Test::More::diag("tracegate exited during start-up while something else "
                 . "accepted on 127.0.0.1:$self->{port}");
            $self->dump_logs;
            return undef;
        }
        sleep 0.05;
    }
    Test::More::diag("tracegate (pid $pid) did not accept on 127.0.0.1:$self->{port} within $timeout s");
    $self->dump_logs;
    $self->stop;
    return undef;
}

# start() or fail the test file at once (fail, done_testing, exit 1).
sub start_ok {
    my ($self, %o) = @_;
    my $pid = $self->start(%o);
    Test::More::ok($pid, 'tracegate started and accepts on 127.0.0.1:' . $self->{port})
        or do { Test::More::done_testing(); exit 1 };
    return $pid;
}

sub dump_logs {
    my ($self) = @_;
    my $e = $self->stderr_log;
    my $l = $self->error_log;
    Test::More::diag("stderr:\n" . tail($e, 20)) if length $e;
    Test::More::diag("logs/error.log:\n" . tail($l, 20)) if length $l;
}

sub workers {
    my ($self) = @_;
    return () unless $self->{pid};
    my @w = children_of($self->{pid});
    return @w;
}

sub master_pid_from_file {
    my ($self, $file) = @_;
    $file //= "$self->{dir}/logs/tracegate.pid";
    my $p = slurp($file) // return undef;
    return $p =~ /^\s*(\d+)/ ? $1 : undef;
}

sub signal {
    my ($self, $sig) = @_;
    return kill $sig, $self->{pid};
}

# QUIT, then KILL after $timeout (default 5 s).  Returns 1 if the master
# exited on QUIT by itself.
sub stop {
    my ($self, $timeout, $sig) = @_;
    my $pid = delete $self->{pid} or return 1;
    $sig //= 'QUIT';
    my @kids = children_of($pid);
    kill $sig, $pid;
    my $gone = wait_for($timeout // 5, sub { reap($pid) });
    kill_proc($pid, 'KILL', 1) unless $gone;
    for my $k (@kids) { kill 'KILL', $k if alive($k) }
    delete $STARTED{$pid};
    return $gone ? 1 : 0;
}

1;
