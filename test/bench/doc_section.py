#!/usr/bin/env python3
"""Put a benchmark's section into a document, replacing its earlier version.

    doc_section.py DOC BEFORE < SECTION

SECTION's first line is its "## " heading: the part of DOC from that heading to
the next "## " heading is replaced by SECTION; a document without it gets
SECTION before the heading BEFORE (or at its end).  Used by the benchmarks
that write their own section of docs/BENCHMARKS.md.
"""
import re
import sys

doc, before = sys.argv[1], sys.argv[2]
new = sys.stdin.read().rstrip("\n") + "\n\n"
heading = new.splitlines()[0]
text = open(doc).read()
start = text.find(heading)
if start < 0:
    at = text.find(before)
    text = text[:at] + new + text[at:] if at >= 0 else text + "\n" + new
else:
    m = re.compile(r"^## (?!#)", re.M).search(text, start + 3)
    text = text[:start] + new + (text[m.start():] if m else "")
open(doc, "w").write(text)
