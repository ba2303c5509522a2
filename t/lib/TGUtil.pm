package TGUtil;

# Test helpers without processes or sockets: the paths of the tree, files
# (slurp, spew), polling (wait_for), text (line_of, tail) and the
# deterministic large bodies that the mock upstream sends and the tests
# check by length and MD5 (gen_*).  Perl core modules only.

use strict;
use warnings;

use Cwd qw(abs_path);
use Digest::MD5;
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use Time::HiRes qw(time sleep);

our @EXPORT_OK = qw($ROOT $TMP slurp spew line_of wait_for tail
                    gen_block gen_stream gen_body gen_md5);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');
our $TMP  = "$ROOT/t/tmp";

# --------------------------------------------------------------------------
# files and text

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

sub tail {
    my ($s, $n) = @_;
    my @l = split /\n/, $s;
    @l = @l[-$n .. -1] if @l > $n;
    return join("\n", @l);
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

1;
