#!/usr/bin/perl
# Builds a GeoIP2-City-layout MaxMind DB from a text source (default GeoData/geodata.txt to
# GeoData/test.mmdb) with MaxMind's own writer (Debian: libmaxmind-db-writer-perl).
# Source lines: network continent country subdivision latitude longitude city...
# IPv4 networks are stored in ::/96 of an IPv6 tree, as MaxMind's databases do.
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my ($src, $out) = @ARGV;
$src //= 'GeoData/geodata.txt';
$out //= 'GeoData/test.mmdb';

my %types = (
    continent    => 'map',  country  => 'map',  subdivisions => ['array', 'map'],
    location     => 'map',  city     => 'map',  names        => 'map',
    code         => 'utf8_string', iso_code => 'utf8_string', en => 'utf8_string',
    latitude     => 'double', longitude => 'double',
);

my $tree = MaxMind::DB::Writer::Tree->new(
    ip_version               => 6,
    record_size              => 24,
    database_type            => 'Meridian-Test-City',
    languages                => ['en'],
    description              => { en => 'Meridian test GeoIP data (documentation and private ranges only)' },
    map_key_type_callback    => sub { $types{ $_[0] } },
    remove_reserved_networks => 0,
);

open my $in, '<', $src or die "$src: $!\n";
my $n = 0;
while (my $line = <$in>) {
    next if $line =~ /^\s*(#|$)/;
    my ($net, $cont, $country, $sub, $lat, $lon, @city) = split ' ', $line;
    die "$src:$.: expected 7 fields\n" unless @city;
    $tree->insert_network($net, {
        continent    => { code => $cont },
        country      => { iso_code => $country },
        subdivisions => [ { iso_code => $sub } ],
        location     => { latitude => $lat + 0.0, longitude => $lon + 0.0 },
        city         => { names => { en => join(' ', @city) } },
    });
    $n++;
}
open my $fh, '>:raw', $out or die "$out: $!\n";
$tree->write_tree($fh);
close $fh or die "$out: $!\n";
print "build-geodata: $n networks from $src -> $out\n";
