#!/usr/bin/env python3
"""Embeds a SQL script as a C string: embed_sql.py INPUT OUTPUT NAME
writes `const char NAME[] = "...";` (the build's copy of schema_pg.sql)."""
import sys

src, out, name = sys.argv[1:4]
text = open(src, encoding="utf-8").read()
lines = []
for line in text.splitlines(keepends=True):
    lines.append('"' + line.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"')
with open(out, "w", encoding="utf-8") as f:
    f.write("/* Generated from %s by embed_sql.py: do not edit. */\n" % src.split("/")[-1])
    f.write("extern const char %s[];\nconst char %s[] =\n" % (name, name))
    f.write("\n".join(lines) + ";\n")
