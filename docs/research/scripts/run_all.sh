#!/bin/sh
# Runs every verification script with Debian's python3 (the only interpreter with torch 1.13.1)
# and prints each script's one-line summary (the last line of its output).
cd "$(dirname "$0")"
status=0
for s in 1[0-9]_*.py; do
  out=$(/usr/bin/python3 "$s" 2>/dev/null)
  echo "$out" | tail -n 1
  echo "$out" | tail -n 1 | grep -q '^PASS' || status=1
done
exit $status
