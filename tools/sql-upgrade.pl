#!/usr/bin/perl
#
# sql-upgrade.pl -- build the upgrade script into the release in development.
#
#   perl tools/sql-upgrade.pl src/sql/updates/FROM--TO.sql src/sql/*.sql > settle--FROM--TO.sql
#   perl tools/sql-upgrade.pl --rerun-only src/sql/*.sql
#
# The schema has one source, src/sql/*.sql (docs/OPERATIONS.md, "Upgrades").
# An upgrade script is the release's table changes, written by hand in
# src/sql/updates/FROM--TO.sql, followed by every statement of src/sql/*.sql
# that can run again over an older release's objects: functions, views and
# aggregates (written CREATE OR REPLACE), comments, grants and revokes,
# ALTER FUNCTION / ALTER VIEW settings, DO blocks (written to be re-runnable).
# Tables, columns, indexes, sequences, domains, triggers, policies and
# reference rows are created once, by the install script; a release that
# changes one says so in its updates file.  A statement of any other kind, or
# a CREATE FUNCTION / CREATE VIEW without OR REPLACE, stops the build: every
# statement is placed on one side or the other on purpose.
#
# With --rerun-only, only the re-runnable statements are printed (without the
# \echo guard): test/scripts/upgrade.sh runs them over a fresh install and
# expects an unchanged catalog, which proves that they are re-runnable.
#
use strict;
use warnings;

# Statement kinds, by their leading words (upper case, single spaces).
my @rerun = (
	qr/^CREATE OR REPLACE (FUNCTION|PROCEDURE|VIEW|AGGREGATE)\b/,
	qr/^COMMENT ON\b/,
	qr/^(GRANT|REVOKE)\b/,
	qr/^ALTER (FUNCTION|PROCEDURE|VIEW|AGGREGATE)\b/,
	qr/^DO\b/,
);
my @install_only = (
	qr/^\\/,						# psql meta-command (the \echo guard)
	qr/^CREATE SCHEMA\b/,
	qr/^CREATE (TABLE|SEQUENCE|DOMAIN|TYPE|TRIGGER|POLICY)\b/,
	qr/^CREATE (UNIQUE )?INDEX\b/,
	qr/^ALTER (TABLE|SEQUENCE|DOMAIN|TYPE)\b/,
	qr/^INSERT INTO\b/,
	qr/^SELECT PG_CATALOG\.PG_EXTENSION_CONFIG_DUMP\b/,
);

# Split SQL text into statements, each with the comments before it.
# Understands -- and /* */ comments, '...' and E'...' strings, "..."
# identifiers, $tag$...$tag$ bodies and psql meta-command lines.
sub statements
{
	my ($text, $file) = @_;
	my @out;
	my $start = 0;
	my $pos = 0;
	my $len = length($text);
	my $line_start = 1;		# only blanks since the last newline

	while ($pos < $len)
	{
		my $rest = substr($text, $pos, 2);
		my $c = substr($text, $pos, 1);

		if ($rest eq '--')
		{
			my $nl = index($text, "\n", $pos);
			$pos = $nl < 0 ? $len : $nl;
			next;
		}
		if ($rest eq '/*')
		{
			my $end = index($text, '*/', $pos + 2);
			die "$file: unterminated /* comment\n" if $end < 0;
			$pos = $end + 2;
			next;
		}
		if ($c eq '\\' && $line_start)
		{
			# a meta-command: a statement of its own, to the end of the line
			my $nl = index($text, "\n", $pos);
			$pos = $nl < 0 ? $len : $nl + 1;
			push @out, substr($text, $start, $pos - $start);
			$start = $pos;
			next;
		}
		if ($c eq "'")
		{
			my $escapes = $pos > 0 && substr($text, $pos - 1, 1) =~ /[eE]/;
			$pos++;
			while (1)
			{
				die "$file: unterminated string\n" if $pos >= $len;
				my $ch = substr($text, $pos, 1);
				if ($escapes && $ch eq '\\') { $pos += 2; next; }
				if ($ch eq "'")
				{
					if (substr($text, $pos + 1, 1) eq "'") { $pos += 2; next; }
					$pos++;
					last;
				}
				$pos++;
			}
			$line_start = 0;
			next;
		}
		if ($c eq '"')
		{
			my $end = index($text, '"', $pos + 1);
			die "$file: unterminated identifier\n" if $end < 0;
			$pos = $end + 1;
			$line_start = 0;
			next;
		}
		if ($c eq '$' && substr($text, $pos) =~ /^(\$[A-Za-z_]*\$)/)
		{
			my $tag = $1;
			my $end = index($text, $tag, $pos + length($tag));
			die "$file: unterminated $tag body\n" if $end < 0;
			$pos = $end + length($tag);
			$line_start = 0;
			next;
		}
		if ($c eq ';')
		{
			$pos++;
			# keep the rest of the line (a trailing comment) with this statement
			if (substr($text, $pos) =~ /^([ \t]*(--[^\n]*)?\n)/) { $pos += length($1); }
			push @out, substr($text, $start, $pos - $start);
			$start = $pos;
			$line_start = 1;
			next;
		}
		$line_start = $c eq "\n" ? 1 : ($c =~ /[ \t]/ ? $line_start : 0);
		$pos++;
	}
	my $tail = substr($text, $start);
	die "$file: text after the last statement is not a comment\n"
		if $tail =~ /\S/ && leading_words($tail) ne '';
	push @out, $tail if $tail =~ /\S/;
	return @out;
}

# The first words of a statement, comments removed, upper case.
sub leading_words
{
	my ($stmt) = @_;
	my $s = $stmt;
	$s =~ s{/\*.*?\*/}{ }gs;
	$s =~ s/--[^\n]*//g;
	$s =~ s/^\s+//;
	my @w = split /\s+/, $s, 7;
	pop @w if @w > 6;
	return uc(join(' ', @w));
}

sub kind
{
	my ($stmt, $where) = @_;
	my $words = leading_words($stmt);

	return 'comment' if $words eq '';
	die "$where: CREATE $1 without OR REPLACE: function files are re-run by upgrades (tools/sql-upgrade.pl)\n"
		if $words =~ /^CREATE (FUNCTION|PROCEDURE|VIEW|AGGREGATE)\b/;
	for my $re (@rerun) { return 'rerun' if $words =~ $re; }
	for my $re (@install_only) { return 'install' if $words =~ $re; }
	die "$where: a statement of unknown kind (\"$words\"): list it in tools/sql-upgrade.pl as re-runnable or install-only\n";
}

sub slurp
{
	my ($file) = @_;
	open(my $fh, '<', $file) or die "$file: $!\n";
	local $/;
	my $text = <$fh>;
	close $fh;
	return $text;
}

# The re-runnable statements of the source files, each file headed by its name.
sub rerun_part
{
	my @files = @_;
	my $out = '';
	for my $file (@files)
	{
		my $text = slurp($file);
		my $line = 1;
		my $part = '';
		for my $stmt (statements($text, $file))
		{
			my $k = kind($stmt, "$file:$line");
			$line += ($stmt =~ tr/\n//);
			$part .= $stmt if $k eq 'rerun';
		}
		$part =~ s/^\s*\n//;
		$out .= "\n-- from $file\n\n$part" if $part ne '';
	}
	return $out;
}

my $rerun_only = @ARGV && $ARGV[0] eq '--rerun-only';
shift @ARGV if $rerun_only;

if ($rerun_only)
{
	print rerun_part(@ARGV);
	exit 0;
}

my $updates = shift @ARGV;
die "usage: $0 src/sql/updates/FROM--TO.sql src/sql/*.sql\n" unless defined $updates && @ARGV;
my ($from, $to) = $updates =~ m{([^/]+)--([^/]+)\.sql$}
	or die "$updates: the name must be FROM--TO.sql\n";

my $changes = slurp($updates);
# the hand-written part holds table changes only (it is checked like the rest)
my $line = 1;
for my $stmt (statements($changes, $updates))
{
	my $words = leading_words($stmt);
	die "$updates:$line: a function, view or comment belongs in src/sql/*.sql only (it is re-run from there)\n"
		if $words =~ /^CREATE (OR REPLACE )?(FUNCTION|PROCEDURE|VIEW|AGGREGATE)\b/;
	$line += ($stmt =~ tr/\n//);
}

print <<"EOF";
-- settle $from -> $to (ALTER EXTENSION settle UPDATE TO '$to').
--
-- Built by tools/sql-upgrade.pl; do not edit.  First the table changes of
-- $to, written by hand in $updates; then every re-runnable
-- statement of src/sql/*.sql (functions, views, comments, grants), so that an
-- updated database has exactly the objects of a fresh install
-- (test/scripts/upgrade.sh compares the two catalogs).

\\echo Use "ALTER EXTENSION settle UPDATE TO '$to'" to load this file. \\quit

-- from $updates

EOF
print $changes;
print rerun_part(@ARGV);
