#!/usr/bin/perl
# The trace viewer in a real browser: Debian's chromium, headless, loads
# the page from the gateway, and the rendered DOM must list the trace of a
# request and draw its waterfall with one row per span, and survive a
# malformed ?q= (%E0). Screenshots of both
# views are kept in t/artifacts/ (viewer-list.png, viewer-trace.png).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Test::More;
use File::Path qw(make_path);
use POSIX ();
use Time::HiRes qw(time sleep);
use TG;
use TGDemo;
TG::need_modules(qw(traces otlp));

my $CHROMIUM = $ENV{TG_CHROMIUM} || '/usr/bin/chromium';
plan skip_all => "$CHROMIUM is missing (apt-get install chromium)" unless -x $CHROMIUM;

my $t = TG->new('81-viewer-browser');
my $d = TGDemo::start($t, workers => 2) or do { fail('demo set-up'); done_testing(); exit 1 };
my $art = "$TG::ROOT/t/artifacts";
make_path($art);
my $runs = 0;

# Runs chromium headless on $url with @extra; returns its stdout. Bounded:
# the whole process group is killed after $timeout seconds.
sub chromium {
    my ($url, @extra) = @_;
    my $n = ++$runs;
    my $profile = "$t->{dir}/chrome-$n";
    make_path($profile);
    my $out = "$t->{dir}/logs/chrome-$n.out";
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        $TG::IS_CHILD = 1;
        POSIX::setsid();
        $ENV{HOME} = $profile;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', $out;
        open STDERR, '>', "$t->{dir}/logs/chrome-$n.err";
        { exec $CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu',
              '--disable-quic', '--no-first-run', '--disable-background-networking',
              '--disable-component-update', '--disable-sync', '--disable-extensions',
              '--hide-scrollbars', '--mute-audio', "--user-data-dir=$profile",
              '--virtual-time-budget=5000', @extra, $url }
        POSIX::_exit(127);
    }
    my $end = time + 90;
    my $done;
    while (time < $end) {
        if (waitpid($pid, POSIX::WNOHANG()) == $pid) { $done = 1; last }
        sleep 0.1;
    }
    unless ($done) {
        kill 'KILL', -$pid;
        waitpid($pid, 0);
        diag("chromium did not finish within 90 s: " . (TG::slurp("$t->{dir}/logs/chrome-$n.err") // ''));
    }
    kill 'KILL', -$pid; # helpers left behind, if any
    return TG::slurp($out) // '';
}

# two scenarios, so the list has more than one entry
my %tid;
for my $sc (qw(parallel circular)) {
    my $r = TG::http_get($t->{port}, "/service-a/api/demo/$sc",
                         headers => [[ 'X-Trace-ID', "browser-$sc" ]]);
    is($r && $r->{status}, 200, "$sc: 200");
    $tid{$sc} = TGDemo::trace_id_of($r);
    my $tr = TGDemo::wait_trace($t, $tid{$sc}, $TGDemo::SPANS{$sc});
    is($tr && scalar @{ $tr->{spans} }, $TGDemo::SPANS{$sc}, "$sc: all spans stored");
}
# the others too, so the list screenshot shows every scenario
for my $sc (qw(sequential failure/timeout failure/partial failure/cascade)) {
    TG::http_get($t->{port}, "/service-a/api/demo/$sc");
}
TGDemo::wait_trace($t, $tid{circular}, $TGDemo::SPANS{circular});
my $base = "http://127.0.0.1:$t->{port}/_traces/";

# list view
my $dom = chromium($base, '--dump-dom');
like($dom, qr/id="trace-list"/, 'list view: the page rendered');
my @rows = $dom =~ /<tr class="trace-row" data-trace-id="([0-9a-f]{32})"/g;
ok(@rows >= 6, 'list view: trace rows rendered (' . scalar(@rows) . ')')
    or diag(substr($dom, 0, 2000));
ok((grep { $_ eq $tid{parallel} } @rows), 'list view: lists the parallel trace');
ok((grep { $_ eq $tid{circular} } @rows), 'list view: lists the circular trace');
my ($pi) = grep { $rows[$_] eq $tid{parallel} } 0 .. $#rows;
my ($ci) = grep { $rows[$_] eq $tid{circular} } 0 .. $#rows;
ok(defined $pi, 'list view: the parallel trace is listed');
ok(defined $ci, 'list view: the circular trace is listed');
cmp_ok($ci // -1, '<', $pi // -1, 'list view: newest first');
like($dom, qr/browser-circular/, 'list view: shows the X-Trace-ID');

# search by X-Trace-ID
$dom = chromium("${base}?q=browser-parallel", '--dump-dom');
@rows = $dom =~ /<tr class="trace-row" data-trace-id="([0-9a-f]{32})"/g;
is(scalar @rows, 1, 'search: one row for an X-Trace-ID');
is($rows[0], $tid{parallel}, 'search: the right trace');

# malformed percent-encoding in ?q= (decodeURIComponent throws a URIError):
# the page still renders its list, searching for the raw text
$dom = chromium("${base}?q=%E0", '--dump-dom');
like($dom, qr/id="q"/, 'q=%E0: the search box is there');
like($dom, qr/id="list-status"[^>]*>0 traces matching "%E0"/,
     'q=%E0: the list rendered, searching for the raw text')
    or diag(substr($dom, 0, 2000));
unlike($dom, qr/<p id="list-empty"[^>]*hidden/, 'q=%E0: "no traces" shown, not a blank list');

# waterfall view
for my $sc (qw(circular parallel)) {
    $dom = chromium("$base#/trace/$tid{$sc}", '--dump-dom');
    my @spans = $dom =~ /<div class="span-row[^"]*" data-span-id="([0-9a-f]{16})"/g;
    is(scalar @spans, $TGDemo::SPANS{$sc},
       "waterfall ($sc): one row per span ($TGDemo::SPANS{$sc})")
        or diag(substr($dom, 0, 3000));
    my @bars = $dom =~ /class="span-bar/g;
    is(scalar @bars, $TGDemo::SPANS{$sc}, "waterfall ($sc): one bar per span");
    like($dom, qr/id="span-detail"[^>]*>.*?http\.request\.method/s,
         "waterfall ($sc): the selected span's attributes are shown");
    for my $svc (qw(service-a service-b service-c tracegate)) {
        like($dom, qr/class="svc">\Q$svc\E</, "waterfall ($sc): $svc has rows");
    }
}

# screenshots, kept as artifacts
for my $s ([ 'viewer-list.png', $base ],
           [ 'viewer-trace.png', "$base#/trace/$tid{circular}" ]) {
    my $file = "$art/$s->[0]";
    unlink $file;
    chromium($s->[1], "--screenshot=$file", '--window-size=1280,900');
    my $png = TG::slurp($file) // '';
    cmp_ok(length($png), '>', 10_000, "screenshot $s->[0] (" . length($png) . " bytes)");
    is(substr($png, 0, 8), "\x89PNG\r\n\x1a\n", "screenshot $s->[0]: a PNG");
    note("artifact: $file");
}

$t->stop;
done_testing();
