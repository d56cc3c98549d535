#!/usr/bin/python3
"""bench/quality/arff2csv.py: a small ARFF (Weka) reader that writes CSV.

    /usr/bin/python3 bench/quality/arff2csv.py INPUT.arff OUTPUT.csv

Handles what credit-g.arff uses: @attribute lines (numeric or {nominal}),
a dense @data section, values quoted with single quotes, '?' as missing
(written as an empty field).  Sparse data ({...} rows) is refused.
"""
import csv
import sys


def split_values(line):
    """Split one ARFF data line on commas outside single or double quotes."""
    out, cur, quote, esc, quoted = [], [], None, False, False
    for ch in line:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\":
            esc = True
        elif quote:
            if ch == quote:
                quote = None
            else:
                cur.append(ch)
        elif ch in "'\"":
            quote, quoted = ch, True
        elif ch == ",":
            out.append(("".join(cur).strip(), quoted))
            cur, quoted = [], False
        else:
            cur.append(ch)
    out.append(("".join(cur).strip(), quoted))
    return [None if (v == "?" and not q) else v for v, q in out]


def read_arff(path):
    names, rows, in_data = [], [], False
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith("%"):
                continue
            low = line.lower()
            if not in_data:
                if low.startswith("@attribute"):
                    rest = line[len("@attribute"):].strip()
                    if rest[0] in "'\"":
                        q = rest[0]
                        end = rest.index(q, 1)
                        names.append(rest[1:end])
                    else:
                        names.append(rest.split()[0])
                elif low.startswith("@data"):
                    in_data = True
                continue
            if line.startswith("{"):
                sys.exit("arff2csv: sparse ARFF rows are not supported")
            vals = split_values(line)
            if len(vals) != len(names):
                sys.exit("arff2csv: a data row has %d values, expected %d"
                         % (len(vals), len(names)))
            rows.append(vals)
    return names, rows


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    names, rows = read_arff(sys.argv[1])
    with open(sys.argv[2], "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(names)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])


if __name__ == "__main__":
    main()
