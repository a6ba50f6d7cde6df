#!/usr/bin/env python3
"""Which B-trees a loaded SQLite store's commits write, page by page.

Usage: bench/wal_frames.py DB WAL [WAL ...]

DB is a copy of the database file (with its -wal beside it, so every page
exists); each WAL is a copy of the -wal file taken while the gateway was
under load (`cp qrgate.db-wal snapshot1`). For every commit in each copy
(frames up to the first whose salt does not match the header: the WAL
restarts after a checkpoint and older frames stay behind), the distinct
pages it wrote are matched to their table or index and page type through
SQLite's `dbstat` table, and the mean pages per commit are printed, most
first. Divide by the payments a commit (qrgate_sqlite_writes_total over
qrgate_sqlite_transactions_total in /metrics) for pages per payment.
"""
import collections
import sqlite3
import struct
import sys


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    db, wals = sys.argv[1], sys.argv[2:]
    owner = {
        pageno: (name, ptype)
        for name, pageno, ptype in sqlite3.connect(db).execute(
            "SELECT name, pageno, pagetype FROM dbstat"
        )
    }
    pages = collections.Counter()
    commits = 0
    # Copies taken before the WAL restarts hold the same commits again (same
    # salt, same frame offsets); each commit is counted once.
    seen = set()
    for path in wals:
        data = open(path, "rb").read()
        if len(data) < 32:
            continue
        page_size = struct.unpack(">I", data[8:12])[0]
        salt = data[16:24]
        off, current = 32, set()
        while off + 24 + page_size <= len(data):
            pgno, commit_size = struct.unpack(">II", data[off : off + 8])
            if data[off + 8 : off + 16] != salt:
                break
            current.add(pgno)
            off += 24 + page_size
            if commit_size:
                if (salt, off) not in seen:
                    seen.add((salt, off))
                    commits += 1
                    pages.update(owner.get(p, ("(new page)", "-")) for p in current)
                current = set()
    if commits == 0:
        sys.exit("no committed frames in the WAL copies")
    print(f"{commits} commits, {sum(pages.values()) / commits:.1f} distinct pages a commit")
    for (name, ptype), n in pages.most_common(30):
        print(f"{n / commits:7.2f}  {name:<40} {ptype}")


if __name__ == "__main__":
    main()
