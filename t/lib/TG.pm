package TG;

# Black-box test harness for objs/tracegate.  Perl core modules only.
#
#   my $t = TG->new('10-routing');          # prefix t/tmp/10-routing.PID/{conf,logs,html}
#   my $up = TG::mock_upstream(name => 'a'); # forked HTTP/1.1 server on a free port
#   $t->write_conf(TG::main_conf($t) . "...");
#   $t->start_ok or exit;                    # spawn in the foreground, wait for the port
#   my $r = TG::http_get($t->{port}, '/service-a/x');
#   my $e = TG::parse_echo($r->{body});      # what the upstream saw
#
# Every process started here is recorded and killed (QUIT/TERM, then KILL) in
# END, so a failing test leaves nothing behind.  Forked children always leave
# through POSIX::_exit so that they never run the parent's END blocks.

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::MD5;
use Errno qw(EAGAIN EWOULDBLOCK EINTR EINPROGRESS ECONNRESET);
use Fcntl qw(:DEFAULT);
use File::Basename qw(dirname basename);
use File::Path qw(make_path remove_tree);
use IO::Select;
use IO::Socket::INET;
use POSIX qw(:sys_wait_h);
use Socket qw(SOL_SOCKET SO_RCVBUF SO_SNDBUF SO_LINGER IPPROTO_TCP TCP_NODELAY
              SOMAXCONN);
use Test::More ();
use Time::HiRes qw(time sleep);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $TMP  = "$ROOT/t/tmp";
our $BIN  = $ENV{TG_BINARY} || "$ROOT/objs/tracegate";

our %STARTED;        # pid => { kind => 'tracegate'|'mock', sig => 'QUIT'|'TERM' }
our $IS_CHILD = 0;

$SIG{PIPE} = 'IGNORE';

# --------------------------------------------------------------------------
# small utilities

sub diag { Test::More::diag(@_) }
sub note { Test::More::note(@_) }

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

sub slurp {
    my ($f) = @_;
    open my $fh, '<', $f or return undef;
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d;
}

sub spew {
    my ($f, $data) = @_;
    make_path(dirname($f));
    open my $fh, '>', "$f.tmp$$" or die "write $f: $!";
    binmode $fh;
    print $fh $data;
    close $fh or die "close $f: $!";
    rename "$f.tmp$$", $f or die "rename $f: $!";
}

# 1-based number of the first line of $text matching $re (for FILE:LINE checks).
sub line_of {
    my ($text, $re) = @_;
    my $n = 0;
    for my $l (split /\n/, $text, -1) {
        $n++;
        return $n if $l =~ $re;
    }
    die "line_of: no line matches $re";
}

# Waits until $cond->() is true; bounded by $timeout seconds.  Returns the
# last value of $cond->().
sub wait_for {
    my ($timeout, $cond, $step) = @_;
    $step ||= 0.05;
    my $end = time + $timeout;
    my $v;
    while (1) {
        $v = $cond->();
        return $v if $v;
        last if time >= $end;
        sleep $step;
    }
    return $v;
}

# --------------------------------------------------------------------------
# deterministic large bodies: 64 KB blocks, each starting with its index

my $BLOCK = 65536;
my $FILL  = substr(('abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ-_' x 1025),
                   0, $BLOCK - 16);

sub gen_block {
    my ($i) = @_;
    return sprintf('%016x', $i) . $FILL;
}

# Calls $cb->($piece) for the $n bytes of the generated stream, $piece at
# most $chunk (default 64 KB) bytes.
sub gen_stream {
    my ($n, $cb, $chunk) = @_;
    $chunk ||= $BLOCK;
    my ($off, $bi, $blk, $bpos) = (0, 0, gen_block(0), 0);
    while ($off < $n) {
        my $want = $n - $off;
        $want = $chunk if $want > $chunk;
        my $piece = '';
        while (length($piece) < $want) {
            if ($bpos >= $BLOCK) { $bi++; $blk = gen_block($bi); $bpos = 0 }
            my $take = $BLOCK - $bpos;
            $take = $want - length($piece) if $take > $want - length($piece);
            $piece .= substr($blk, $bpos, $take);
            $bpos += $take;
        }
        $off += length $piece;
        return unless defined $cb->($piece);
    }
}

sub gen_body {
    my ($n) = @_;
    my $b = '';
    gen_stream($n, sub { $b .= $_[0]; 1 });
    return $b;
}

my %MD5_CACHE;
sub gen_md5 {
    my ($n) = @_;
    return $MD5_CACHE{$n} //= do {
        my $d = Digest::MD5->new;
        gen_stream($n, sub { $d->add($_[0]); 1 });
        $d->hexdigest;
    };
}

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
# prefix directory + tracegate process

sub new {
    my ($class, $name, %o) = @_;
    $name //= basename($0, '.t');
    my $dir = "$TMP/$name.$$." . int(rand(1e6));
    remove_tree($dir);
    make_path("$dir/conf", "$dir/logs", "$dir/html", "$dir/conf.d");
    my %html = (
        'index.html' => "<html><body><h1>tracegate</h1></body></html>\n",
        '404.html'   => "<html><head><title>404 Not Found</title></head>"
                      . "<body><h1>404 Not Found</h1><p>tg-test-404</p></body></html>\n",
        '50x.html'   => "<html><head><title>Error</title></head>"
                      . "<body><h1>The gateway could not reach the service</h1>"
                      . "<p>tg-test-50x</p></body></html>\n",
    );
    for my $f (sort keys %html) {
        my $src = "$ROOT/html/$f";
        my $data = -f $src ? slurp($src) : $html{$f};
        spew("$dir/html/$f", $data);
    }
    my $self = bless { name => $name, dir => $dir, port => $o{port} || free_port(),
                       conf => "$dir/conf/tracegate.conf" }, $class;
    return $self;
}

sub html { my ($self, $f) = @_; return slurp("$self->{dir}/html/$f") }

# The configuration most tests proxy through: upstream service-a (the mock
# $up, keepalive 8) routed at /service-a.
sub service_a_conf {
    my ($self, $up) = @_;
    return "[upstream service-a]\n"
         . "server = 127.0.0.1:$up->{port}\n"
         . "keepalive = 8\n"
         . "\n"
         . "[route /service-a]\n"
         . "upstream = service-a\n";
}

# The usual [main] section: foreground, one listener on $self->{port}.
# Extra "key = value" lines may be passed as a string.
sub main_conf {
    my ($self, $extra) = @_;
    $extra //= '';
    $extra .= "\n" if length $extra && $extra !~ /\n\z/;
    return "[main]\n"
         . "daemon = off\n"
         . "listen = 127.0.0.1:$self->{port}\n"
         . ($extra =~ /^workers\s*=/m ? '' : "workers = 1\n")
         . "pid = logs/tracegate.pid\n"
         . "error_log = logs/error.log info\n"
         . $extra . "\n";
}

sub write_conf {
    my ($self, $text, $file) = @_;
    $file //= $self->{conf};
    $file = "$self->{dir}/$file" unless $file =~ m{^/};
    spew($file, $text);
    return $file;
}

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
        diag("tracegate @args did not exit within 10 s; killed");
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
        diag("$BIN does not exist or is not executable (run make)");
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
            diag(sprintf("tracegate exited during start-up (status %d, signal %d)",
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
            diag("tracegate exited during start-up while something else "
                 . "accepted on 127.0.0.1:$self->{port}");
            $self->dump_logs;
            return undef;
        }
        sleep 0.05;
    }
    diag("tracegate (pid $pid) did not accept on 127.0.0.1:$self->{port} within $timeout s");
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
    diag("stderr:\n" . tail($e, 20)) if length $e;
    diag("logs/error.log:\n" . tail($l, 20)) if length $l;
}

sub tail {
    my ($s, $n) = @_;
    my @l = split /\n/, $s;
    @l = @l[-$n .. -1] if @l > $n;
    return join("\n", @l);
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
    my $c = TG::slurp("$self->{dir}/conns") // '';
    my $r = TG::slurp("$self->{dir}/requests") // '';
    my $b = TG::slurp("$self->{dir}/bytes_out") // 0;
    my @c = split /\n/, $c;
    my @r = split /\n/, $r;
    return { conns => scalar(@c), requests => scalar(@r), bytes_out => $b + 0,
             request_log => \@r };
}

sub reset_stats {
    my ($self) = @_;
    TG::spew("$self->{dir}/conns", '');
    TG::spew("$self->{dir}/requests", '');
    unlink "$self->{dir}/bytes_out";
}

sub stop {
    my ($self) = @_;
    TG::kill_proc($self->{pid}, 'TERM', 3) if $self->{pid};
    delete $self->{pid};
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

package TG;

# One request on a new connection; returns the response hash (see
# TG::Conn::read_response) or undef (diag says why).
#   http_get($port, $path, headers => [..] | "raw lines", method => 'GET',
#            body => STR, host => 'h', keepalive => 1, timeout => S, version => '1.1')
sub request {
    my ($port, $path, %o) = @_;
    my $c = TG::Conn->new($port) or do { $@ =~ s/\n//; $TG::last_error = $@; return undef };
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
    $TG::last_error = $c->{error} unless $r;
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
    return 'no response (' . ($TG::last_error // '?') . ')' unless $r;
    my $b = defined $r->{body} ? substr($r->{body}, 0, 200) : '';
    $b =~ s/\n/\\n/g;
    return "$r->{status} $r->{reason}; " . join('; ', map { "$_->[0]: $_->[1]" } @{ $r->{headers} })
         . "; body: $b";
}

1;
