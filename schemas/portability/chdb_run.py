#!/usr/bin/env python3
"""Run Flowsentry's ClickHouse migrations and queries on a current ClickHouse
engine (PyPI's chdb, ClickHouse 26.x in-process) to prove the schema is
portable beyond Debian's 18.16.

Input (stdin, JSON):
  {"migrations_dir": "...",        # apply every NNNN_*.sql in order
   "statements": ["INSERT ...", ...],  # run, output ignored
   "queries": ["SELECT ...", ...]}     # run, output returned as TSV
Output (stdout, JSON): {"version": "26.x", "results": ["tsv", ...]}
Errors: exit 1, message on stderr naming the file/statement.

Migrations are split like migrations.Split in Go: lines starting with "--"
are dropped and a statement ends at a line that ends with ";".
"""
import json
import os
import sys
import tempfile


def split(sql):
    stmts, cur = [], []
    for line in sql.split("\n"):
        t = line.strip()
        if not t or t.startswith("--"):
            continue
        cur.append(line)
        if t.endswith(";"):
            s = "\n".join(cur).strip()
            stmts.append(s[:-1].strip())
            cur = []
    rest = "\n".join(cur).strip()
    if rest:
        stmts.append(rest)
    return stmts


def main():
    try:
        from chdb import session as chs
    except ImportError as e:  # the Go test turns this into skip/fail
        print("chdb not installed: %s" % e, file=sys.stderr)
        return 3
    req = json.load(sys.stdin)
    with tempfile.TemporaryDirectory() as d:
        sess = chs.Session(os.path.join(d, "db"))
        try:
            version = str(sess.query("SELECT version()", "TSV")).strip()
            sess.query("CREATE DATABASE IF NOT EXISTS flowsentry")
            mdir = req.get("migrations_dir")
            if mdir:
                for name in sorted(os.listdir(mdir)):
                    if not name.endswith(".sql"):
                        continue
                    with open(os.path.join(mdir, name)) as f:
                        for i, stmt in enumerate(split(f.read()), 1):
                            try:
                                sess.query(stmt)
                            except Exception as e:  # noqa: BLE001
                                print("%s statement %d: %s" % (name, i, e), file=sys.stderr)
                                return 1
            for stmt in req.get("statements", []):
                try:
                    sess.query(stmt)
                except Exception as e:  # noqa: BLE001
                    print("statement %r: %s" % (stmt[:200], e), file=sys.stderr)
                    return 1
            results = []
            for q in req.get("queries", []):
                try:
                    results.append(str(sess.query(q, "TSV")))
                except Exception as e:  # noqa: BLE001
                    print("query %r: %s" % (q[:200], e), file=sys.stderr)
                    return 1
        finally:
            sess.close()
    json.dump({"version": version, "results": results}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
