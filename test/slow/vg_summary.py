#!/usr/bin/env python3
"""vg_summary.py LOGDIR SRCDIR - counts the Memcheck errors of vg.*.log files.

Prints "SAMPLELLM ERROR in <log>" and the error for every error with a frame
in samplellm.so or under SRCDIR, then "TOTAL <errors> <ours> <our leaks>"
(our leaks: ours that are "definitely lost" records of --leak-check=full)
and one "KIND <count> <first line>" per kind of error.  Suppression stanzas printed
by --gen-suppressions=all are skipped.
"""
import glob
import re
import sys


def main():
    logs, src = sys.argv[1], sys.argv[2]
    total = ours = leaks = 0
    kinds = {}
    for path in sorted(glob.glob(logs + "/vg.*.log")):
        block = []
        in_supp = False
        lines = open(path, errors="replace").read().splitlines() + ["==0== "]
        for line in lines:
            if line.startswith("{"):
                in_supp = True
            if in_supp:
                in_supp = not line.startswith("}")
                continue
            body = re.sub(r"^==\d+== ?", "", line)
            if body.strip() == "":
                if any(re.match(r"\s+(at|by) 0x", b) for b in block):
                    total += 1
                    kind = re.sub(r"0x[0-9A-Fa-f]+|\d+", "N", block[0].strip())
                    kinds[kind] = kinds.get(kind, 0) + 1
                    if any("samplellm.so" in b or src in b for b in block):
                        ours += 1
                        leaks += "definitely lost" in block[0]
                        print("SAMPLELLM ERROR in " + path)
                        print("\n".join(block[:30]))
                block = []
            else:
                block.append(body)
    print("TOTAL %d %d %d" % (total, ours, leaks))
    for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]):
        print("KIND %d %s" % (v, k))


if __name__ == "__main__":
    main()
