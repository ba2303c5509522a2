#!/usr/bin/perl
# Layers call downward only: nothing under src/core/ or src/event/ includes
# an HTTP header or calls into the HTTP layer (tg_http_*, tg_upstream_*);
# protocols plug in through module descriptors and listener handlers. And
# no module names another.
use strict;
use warnings;
use FindBin;
use Test::More;

my $root = "$FindBin::Bin/..";
my @files = sort(glob("$root/src/core/*.[ch]"), glob("$root/src/event/*.[ch]"));
ok(@files > 10, 'core and event sources found') or diag("none under $root/src");

# comments and string literals removed, so that prose may name the layers
sub code_of {
    my ($text) = @_;
    $text =~ s{/\*.*?\*/}{ }gs;
    $text =~ s{"(?:[^"\\\n]|\\.)*"}{""}g;
    return $text;
}

for my $f (@files) {
    open my $fh, '<', $f or die "$f: $!";
    my $raw = do { local $/; <$fh> };
    close $fh;
    my $code = code_of($raw);
    (my $name = $f) =~ s{^\Q$root\E/}{};
    my @inc = $raw =~ /^\s*#\s*include\s*[<"](tg_http[^>"]*|tg_upstream[^>"]*)[>"]/mg;
    is("@inc", '', "$name includes no HTTP header");
    my %calls;
    $calls{$1}++ while $code =~ /\b((?:tg_http|tg_upstream)_\w+)\s*\(/g;
    is(join(' ', sort keys %calls), '', "$name calls no tg_http_/tg_upstream_ function");
    my %types;
    $types{$1}++ while $code =~ /\b((?:tg_http|tg_upstream)_\w+_t)\b/g;
    is(join(' ', sort keys %types), '', "$name names no HTTP type");
}

# Modules meet only through what the core owns (the span sink, the metrics
# registry): none includes another's header or calls another's functions,
# so each can be left out with configure --without-NAME.
my @mods = map { m{/modules/([^/]+)/config\z} ? $1 : () } glob("$root/modules/*/config");
ok(@mods >= 5, 'modules found: ' . join(' ', @mods));
for my $m (@mods) {
    for my $f (sort glob("$root/modules/$m/*.[ch]")) {
        open my $fh, '<', $f or die "$f: $!";
        my $raw = do { local $/; <$fh> };
        close $fh;
        my $code = code_of($raw);
        (my $name = $f) =~ s{^\Q$root\E/}{};
        for my $o (grep { $_ ne $m } @mods) {
            my @inc = $raw =~ /^\s*#\s*include\s*[<"](tg_\Q$o\E[._][^>"]*)[>"]/mg;
            my %calls;
            $calls{$1}++ while $code =~ /\b(tg_\Q$o\E_\w+)\b/g;
            is(join(' ', @inc, sort keys %calls), '', "$name names nothing of module $o");
        }
    }
}

done_testing();
