"""Real PostgreSQL clients against dealhouse's PostgreSQL listener (run by api/tests/pgwire.rs).

Usage: pgwire_clients.py CHECK PORT [ARGS...]; exits non-zero with the reason on failure.
Tokens come from the environment: ANALYST_TOKEN (user `analyst`), MSK_TOKEN (user `moscow`),
EXPIRED_TOKEN (user `old`, past its expiry).

The fixture's figures, by hand (api/tests/common/mod.rs): deals msk 3 (390.50), spb 2
(3000.00), nsk 2 (7300.00).
"""

import datetime
import decimal
import json
import os
import socket
import struct
import sys
import threading
import time

import psycopg

HOST = "127.0.0.1"


def dsn(port, user, token):
    return f"host={HOST} port={port} dbname=dealhouse user={user} password={token} sslmode=disable"


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def psycopg_types(port):
    """A parameterised query: exact Decimal money, tz-aware datetimes, text and binary results."""
    with psycopg.connect(dsn(port, "analyst", os.environ["ANALYST_TOKEN"])) as conn:
        for binary in (False, True):
            cur = conn.cursor(binary=binary)
            cur.execute(
                "select count(*) as n, sum(amount) as total, max(created_at) as latest "
                "from deals where branch_id = %s",
                ("msk",),
            )
            n, total, latest = cur.fetchone()
            check(n == 3, f"binary={binary}: msk has 3 deals, got {n!r}")
            check(isinstance(total, decimal.Decimal), f"binary={binary}: sum(amount) is {type(total)}")
            check(total == decimal.Decimal("390.50"), f"binary={binary}: msk total {total!r}")
            check(isinstance(latest, datetime.datetime), f"binary={binary}: created_at is {type(latest)}")
            check(latest.tzinfo is not None, f"binary={binary}: created_at {latest!r} has no time zone")
        # The same prepared statement, executed again with other values.
        totals = {}
        for branch in ("msk", "spb", "nsk"):
            row = conn.execute(
                "select sum(amount) from deals where branch_id = %s", (branch,), prepare=True
            ).fetchone()
            totals[branch] = row[0]
        want = {"msk": decimal.Decimal("390.50"), "spb": decimal.Decimal("3000.00"), "nsk": decimal.Decimal("7300.00")}
        check(totals == want, f"prepared totals {totals} != {want}")
        # A typed integer parameter and a boolean result.
        row = conn.execute("select count(*) > %s as many from deals", (5,)).fetchone()
        check(row[0] is True, f"7 deals > 5 should be true, got {row!r}")
        names = [d.name for d in conn.execute("select branch_id, amount from deals limit 1").description]
        check(names == ["branch_id", "amount"], f"column names {names}")
    print("psycopg: ok")


def sqlalchemy_pandas(port):
    import pandas as pd
    import sqlalchemy

    token = os.environ["ANALYST_TOKEN"]
    engine = sqlalchemy.create_engine(f"postgresql+psycopg://analyst:{token}@{HOST}:{port}/dealhouse")
    frame = pd.read_sql(
        "select branch_id, count(*) as n, sum(amount) as total from deals group by branch_id order by branch_id",
        engine,
    )
    check(list(frame["branch_id"]) == ["msk", "nsk", "spb"], f"branches {list(frame['branch_id'])}")
    check(list(frame["n"]) == [3, 2, 2], f"counts {list(frame['n'])}")
    totals = [decimal.Decimal(str(t)) for t in frame["total"]]
    check(totals == [decimal.Decimal("390.50"), decimal.Decimal("7300.00"), decimal.Decimal("3000.00")], f"totals {totals}")
    with engine.connect() as conn:
        value = conn.execute(sqlalchemy.text("select count(*) from deals where branch_id = :b"), {"b": "spb"}).scalar()
        check(value == 2, f"spb count via sqlalchemy: {value!r}")
        tables = sqlalchemy.inspect(conn).get_table_names()
        check("deals" in tables and "fct_deal" in tables, f"inspector tables: {tables}")
    print("sqlalchemy+pandas: ok")


def raw_startup(port, user, password):
    """The protocol's startup by hand, to read the SQLSTATE (libpq shows only the message for
    connection errors): returns the ErrorResponse's fields, or {} when the login succeeded."""
    sock = socket.create_connection((HOST, port), timeout=15)

    def exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        return data

    def message():
        kind = exact(1)
        (length,) = struct.unpack("!I", exact(4))
        return kind, exact(length - 4)

    params = b"user\0" + user.encode() + b"\0database\0dealhouse\0\0"
    body = struct.pack("!I", 196608) + params
    sock.sendall(struct.pack("!I", len(body) + 4) + body)
    kind, body = message()
    if kind == b"R" and struct.unpack("!I", body[:4])[0] == 3:
        secret = password.encode() + b"\0"
        sock.sendall(b"p" + struct.pack("!I", len(secret) + 4) + secret)
        kind, body = message()
    sock.close()
    if kind != b"E":
        return {}
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode()
    return fields


def wrong_password(port):
    fields = raw_startup(port, "analyst", "not-the-token")
    check(fields.get("C") == "28P01", f"wrong password answered {fields}")
    fields = raw_startup(port, "nobody", os.environ["ANALYST_TOKEN"])
    check(fields.get("C") == "28P01", f"a right token under another name answered {fields}")
    try:
        psycopg.connect(dsn(port, "analyst", "not-the-token")).close()
        fail("psycopg connected with a wrong password")
    except psycopg.OperationalError as e:
        check("password authentication failed" in str(e), f"psycopg's message: {e}")
    fields = raw_startup(port, "old", os.environ["EXPIRED_TOKEN"])
    check(fields.get("C") == "28000" and "expired" in fields.get("M", ""), f"an expired token answered {fields}")
    check(raw_startup(port, "analyst", os.environ["ANALYST_TOKEN"]) == {}, "the right token was refused")
    print("wrong password: ok")


def too_many(port, limit):
    held = [psycopg.connect(dsn(port, "analyst", os.environ["ANALYST_TOKEN"])) for _ in range(int(limit))]
    fields = raw_startup(port, "analyst", os.environ["ANALYST_TOKEN"])
    check(fields.get("C") == "53300", f"connection {int(limit) + 1} answered {fields}")
    held.pop().close()
    time.sleep(0.5)
    check(raw_startup(port, "analyst", os.environ["ANALYST_TOKEN"]) == {}, "a freed slot was not reusable")
    for c in held:
        c.close()
    print("too many connections: ok")


def concurrent(port, hostile_file, clients):
    """`clients` connections query while one sends every hostile query; each hostile query must
    fail with one of its SQLSTATEs (or succeed where listed as "ok"), every ordinary one must
    return the right figure, and the server must answer afterwards."""
    cases = json.load(open(hostile_file))
    stop = threading.Event()
    results = {"ok": 0, "bad": []}
    lock = threading.Lock()

    def ordinary(i):
        try:
            with psycopg.connect(dsn(port, "moscow" if i % 2 else "analyst",
                                     os.environ["MSK_TOKEN"] if i % 2 else os.environ["ANALYST_TOKEN"])) as conn:
                rounds = 0
                while rounds < 3 or (not stop.is_set() and rounds < 200):
                    n, total = conn.execute(
                        "select count(*), sum(amount) from deals where branch_id = %s", ("msk",)
                    ).fetchone()
                    with lock:
                        if (n, total) == (3, decimal.Decimal("390.50")):
                            results["ok"] += 1
                        else:
                            results["bad"].append(f"client {i}: {(n, total)}")
                    rounds += 1
                    time.sleep(0.05)
        except Exception as e:  # noqa: BLE001 - any failure of an ordinary client is the finding
            with lock:
                results["bad"].append(f"client {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=ordinary, args=(i,)) for i in range(int(clients))]
    for t in threads:
        t.start()
    wrong = []
    answered = {}
    with psycopg.connect(dsn(port, "analyst", os.environ["ANALYST_TOKEN"]), autocommit=True) as conn:
        for case in cases:
            sql, states = case["sql"], case["sqlstates"]
            started = time.monotonic()
            try:
                conn.execute(sql, prepare=False)
                got = "ok"
            except psycopg.Error as e:
                got = e.sqlstate or "none"
            took = time.monotonic() - started
            answered[got] = answered.get(got, 0) + 1
            if got not in states or took > 20:
                wrong.append(f"{sql[:70]!r}: {got} not in {states} (took {took:.1f} s)")
    stop.set()
    for t in threads:
        t.join(timeout=120)
    check(not wrong, "hostile queries answered wrongly:\n  " + "\n  ".join(wrong))
    check(not results["bad"], "ordinary clients failed:\n  " + "\n  ".join(results["bad"][:20]))
    check(results["ok"] >= 3 * int(clients), f"only {results['ok']} ordinary queries answered")
    with psycopg.connect(dsn(port, "analyst", os.environ["ANALYST_TOKEN"])) as conn:
        check(conn.execute("select count(*) from deals").fetchone()[0] == 7, "the server is not answering after")
    print(f"concurrent: ok ({results['ok']} ordinary queries, {len(cases)} hostile answered {answered})")


def client_queries(port, queries_file, refused_file):
    """Every catalog query the BI and SQL tools send runs, over one connection each with the simple
    and the extended protocol, except the ones listed as refused (with the SQLSTATE they get)."""
    queries = json.load(open(queries_file))["queries"]
    refused = json.load(open(refused_file))
    wrong = []
    for prepare in (False, True):
        with psycopg.connect(dsn(port, "analyst", os.environ["ANALYST_TOKEN"]), autocommit=True) as conn:
            for q in queries:
                sql = q["sql"]
                try:
                    # Psycopg takes % as a placeholder only when parameters are given.
                    conn.execute(sql, prepare=prepare)
                    got = "ok"
                except psycopg.Error as e:
                    got = e.sqlstate or "none"
                    detail = str(e).splitlines()[0][:160]
                want = refused.get(sql, "ok")
                if got != want:
                    wrong.append(f"[{q['client']}, prepare={prepare}] {sql[:100]!r}: {got} (want {want})"
                                 + ("" if got == "ok" else f": {detail}"))
    check(not wrong, f"{len(wrong)} client queries answered wrongly:\n  " + "\n  ".join(wrong))
    print(f"client queries: ok ({len(queries)} queries, {len(refused)} refused as expected)")


if __name__ == "__main__":
    what, port, *rest = sys.argv[1:]
    {
        "psycopg": psycopg_types,
        "sqlalchemy": sqlalchemy_pandas,
        "wrong-password": wrong_password,
        "too-many": too_many,
        "concurrent": concurrent,
        "client-queries": client_queries,
    }[what](port, *rest)
