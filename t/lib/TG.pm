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
#
# This file is the prefix (directory, html, configuration); the rest is
# split by concern, and every name a test uses as TG::NAME, $TG::NAME or
# %TG::NAME is imported from there (the same sub or variable, not a copy):
#   TGUtil   paths, files, wait_for, line_of, tail, generated bodies
#   TGNet    ports, the raw client connection TG::Conn, request helpers
#   TGProc   processes and their clean-up in END; the methods that run
#            objs/tracegate in the prefix and read its logs (TG inherits)
#   TGMock   the mock upstream (TG::Mock), echo_text and parse_echo

use strict;
use warnings;

use File::Basename qw(basename);
use File::Path qw(make_path remove_tree);
use Test::More ();

use TGUtil qw($ROOT $TMP slurp spew line_of wait_for tail
              gen_block gen_stream gen_body gen_md5);
use TGNet qw($last_error untaken_socket free_port refused_port
             blackhole_port port_accepts request http_get build_request
             request_on raw_exchange parse_responses hdr summary);
use TGProc qw($BIN %STARTED $IS_CHILD alive children_of rss threads_of
              reap kill_proc);
use TGMock qw(mock_upstream mock_main append mock_fill mock_write mock_conn
              mock_default echo_text mock_respond parse_echo);

our @ISA = ('TGProc');

sub diag { Test::More::diag(@_) }
sub note { Test::More::note(@_) }

# The modules the binary was built with (tracegate -V: "modules: ...").
sub modules {
    my $out = `"$BIN" -V 2>&1`;
    my ($list) = $out =~ /^modules: *(.*)$/m;
    return split ' ', $list // '';
}

# A test that needs modules (configure --without-NAME leaves one out) is
# skipped, saying which, when the binary lacks one of them.
sub need_modules {
    my (@need) = @_;
    my %have = map { $_ => 1 } modules();
    my @missing = grep { !$have{$_} } @need;
    Test::More::plan(skip_all => "built without the @missing module"
                     . (@missing > 1 ? 's' : '')) if @missing;
}

# --------------------------------------------------------------------------
# prefix directory

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

1;
