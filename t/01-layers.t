#!/usr/bin/perl
# Layers call downward only: nothing under src/core/ or src/event/ includes
# an HTTP header or calls into the HTTP layer (tg_http_*, tg_upstream_*);
# protocols plug in through module descriptors and listener handlers.
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

done_testing();
