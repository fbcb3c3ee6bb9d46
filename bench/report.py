#!/usr/bin/env python3
"""Parse pgbench runs and render the side-by-side Markdown table.

Standard library only, so the harness runs on any machine with Python 3.

  report.py record --raw FILE ...        parse one pgbench run, append a JSON line
  report.py record-idle --raw FILE ...   append one idle-clients memory reading
  report.py table --raw FILE --meta FILE   print the Markdown report
  report.py check --raw FILE        exit 1 if any run had errors
"""

import argparse
import glob
import json
import os
import re
import statistics
import sys

TARGET_ORDER = ["direct", "pgbouncer", "dbwarden", "pgcat", "pgdog"]
TARGET_NAMES = {
    "direct": "direct",
    "pgbouncer": "PgBouncer",
    "dbwarden": "dbwarden",
    "pgcat": "PgCat",
    "pgdog": "PgDog",
}


def parse_pgbench_stdout(text):
    """Pull the summary numbers out of pgbench's report (PostgreSQL 13+ wording)."""

    def num(pattern):
        m = re.search(pattern, text, re.MULTILINE)
        return float(m.group(1)) if m else None

    processed = num(r"^number of transactions actually processed: (\d+)")
    failed = num(r"^number of failed transactions: (\d+)")
    return {
        # With -C (a connection per transaction) pgbench counts the logins in.
        "tps": num(r"^tps = ([\d.]+) \((?:without initial connection time|including reconnection times)\)"),
        "avg_ms": num(r"^latency average = ([\d.]+) ms"),
        "txns": int(processed) if processed is not None else 0,
        "failed": int(failed) if failed is not None else 0,
        "conn_ms": num(r"^initial connection time = ([\d.]+) ms"),
        "aborted": "Run was aborted" in text,
    }


def read_latencies_us(paths):
    """Per-transaction latencies from pgbench --log files.

    Each line is `client txn latency_us script epoch_s epoch_us ...`; a failed
    or skipped transaction has a word instead of a latency and is left out
    (it is counted as an error from the summary instead).
    """
    out = []
    for path in paths:
        with open(path, encoding="ascii", errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) >= 3 and fields[2].isdigit():
                    out.append(int(fields[2]))
    return out


def percentile(sorted_values, pct):
    """Nearest-rank percentile: a latency some transaction really had."""
    if not sorted_values:
        return None
    rank = max(1, -(-len(sorted_values) * pct // 100))
    return sorted_values[int(rank) - 1]


def cmd_record(args):
    with open(args.stdout, encoding="utf-8", errors="replace") as f:
        out = f.read()
    with open(args.stderr, encoding="utf-8", errors="replace") as f:
        err = f.read()
    summary = parse_pgbench_stdout(out)
    logs = sorted(glob.glob(args.log_prefix + ".*"))
    lat = sorted(read_latencies_us(logs))
    p99_us = percentile(lat, 99)

    # Client-side errors (a refused login, a dropped connection) abort the
    # client and show up only on stderr, not in the failed-transaction count.
    client_errors = len(re.findall(r"^pgbench: error: ", err, re.MULTILINE))
    errors = summary["failed"] + client_errors
    if args.rc != 0 or summary["aborted"] or summary["tps"] is None:
        errors = max(errors, 1)
    if not args.proxy_alive:
        errors = max(errors, 1)

    cpu_ms_per_1k = None
    if args.cpu_ticks is not None and summary["txns"] > 0:
        cpu_ms = args.cpu_ticks * 1000.0 / args.clk_tck
        cpu_ms_per_1k = cpu_ms * 1000.0 / summary["txns"]

    rec = {
        "kind": "load",
        "round": args.round,
        "pool_mode": args.pool_mode,
        "mode": args.mode,
        "clients": args.clients,
        "pool": args.pool,
        "target": args.target,
        "tps": summary["tps"],
        "avg_ms": summary["avg_ms"],
        "p99_ms": p99_us / 1000.0 if p99_us is not None else None,
        "txns": summary["txns"],
        "latency_samples": len(lat),
        "conn_ms": summary["conn_ms"],
        "cpu_ms_per_1k": cpu_ms_per_1k,
        "rss_mb": args.rss_kb / 1024.0 if args.rss_kb is not None else None,
        "errors": errors,
        "rc": args.rc,
        "first_error": first_error_line(err),
    }
    with open(args.raw, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
    print(
        "  {target:<9} tps={tps} avg={avg} p99={p99} cpu/1k={cpu} rss={rss} errors={errors}".format(
            target=args.target,
            tps=fmt(rec["tps"], 0),
            avg=fmt(rec["avg_ms"], 3),
            p99=fmt(rec["p99_ms"], 3),
            cpu=fmt(rec["cpu_ms_per_1k"], 1),
            rss=fmt(rec["rss_mb"], 1),
            errors=errors,
        ),
        file=sys.stderr,
    )
    if rec["first_error"]:
        print("    first error: " + rec["first_error"], file=sys.stderr)


def cmd_record_idle(args):
    with open(args.stderr, encoding="utf-8", errors="replace") as f:
        err = f.read()
    errors = len(re.findall(r"^pgbench: error: ", err, re.MULTILINE))
    if args.connected < args.clients or not args.proxy_alive:
        errors = max(errors, 1)
    grown_kb = args.rss_kb - args.rss_before_kb
    rec = {
        "kind": "idle",
        "round": args.round,
        "pool_mode": args.pool_mode,
        "target": args.target,
        "clients": args.clients,
        "connected": args.connected,
        "rss_before_mb": args.rss_before_kb / 1024.0,
        "rss_mb": args.rss_kb / 1024.0,
        "kb_per_client": grown_kb / args.connected if args.connected > 0 else None,
        "errors": errors,
        "first_error": first_error_line(err),
    }
    with open(args.raw, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
    print(
        f"  {args.target:<9} idle={args.connected}/{args.clients} rss {fmt(rec['rss_before_mb'], 1)}"
        f" -> {fmt(rec['rss_mb'], 1)} MB, {fmt(rec['kb_per_client'], 2)} KB/client errors={errors}",
        file=sys.stderr,
    )


def first_error_line(err):
    for line in err.splitlines():
        if "error" in line.lower() or "fatal" in line.lower():
            return line.strip()[:200]
    return None


def fmt(value, digits):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def load(raw, kind=None):
    with open(raw, encoding="utf-8") as f:
        records = [json.loads(line) for line in f if line.strip()]
    if kind is None:
        return records
    return [r for r in records if r.get("kind", "load") == kind]


def median_of(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}×"


def scenario_label(key, by_target):
    pool_mode, mode, clients = key
    # The pool belongs to the proxies; the direct rows share their scenario.
    pools = sorted({r["pool"] for runs in by_target.values() for r in runs if r["target"] != "direct"})
    pool = f" · pool {'/'.join(pools)}" if pools else ""
    if mode == "storm":
        mode = "connect storm (-C)"
    return f"{pool_mode} · {mode} · {clients} clients{pool}"


def build_rows(records):
    """One row per (scenario, target): medians over rounds, ratios vs PgBouncer."""
    scenarios = []
    groups = {}
    for r in records:
        key = (r["pool_mode"], r["mode"], r["clients"])
        if key not in groups:
            scenarios.append(key)
            groups[key] = {}
        groups[key].setdefault(r["target"], []).append(r)

    rows = []
    for key in scenarios:
        by_target = groups[key]
        med = {
            t: {k: median_of(runs, k) for k in ("tps", "avg_ms", "p99_ms", "cpu_ms_per_1k", "rss_mb")}
            for t, runs in by_target.items()
        }
        base = med.get("pgbouncer")
        targets = sorted(by_target, key=lambda t: TARGET_ORDER.index(t) if t in TARGET_ORDER else 99)
        for t in targets:
            m, runs = med[t], by_target[t]
            tps_values = [r["tps"] for r in runs if r["tps"] is not None]
            spread = None
            if len(tps_values) > 1 and m["tps"]:
                spread = (max(tps_values) - min(tps_values)) * 100.0 / m["tps"]
            is_base = t == "pgbouncer"
            rows.append(
                [
                    scenario_label(key, by_target),
                    TARGET_NAMES.get(t, t),
                    fmt(m["tps"], 0) + ("*" if any(r["errors"] for r in runs) else ""),
                    fmt(m["avg_ms"], 3),
                    fmt(m["p99_ms"], 3),
                    fmt(m["cpu_ms_per_1k"], 1),
                    fmt(m["rss_mb"], 1),
                    "1.00×" if is_base and base else ratio(m["tps"], base and base["tps"]),
                    "1.00×"
                    if is_base and base
                    else ratio(m["cpu_ms_per_1k"], base and base["cpu_ms_per_1k"]),
                    fmt(spread, 1) + ("%" if spread is not None else ""),
                    f"{sum(r['errors'] for r in runs)} in {len(runs)} runs",
                ]
            )
    return rows


HEADER = [
    "scenario",
    "target",
    "TPS",
    "avg ms",
    "p99 ms",
    "CPU ms/1k txn",
    "RSS MB",
    "TPS ÷ PgBouncer",
    "CPU ÷ PgBouncer",
    "TPS spread",
    "errors",
]


def build_idle_lines(records):
    """Memory per idle client: RSS growth over the clients that got connected."""
    if not records:
        return []
    lines = [
        "",
        "| idle clients | target | RSS before MB | RSS with clients MB | KB per idle client | ÷ PgBouncer | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    groups = {}
    for r in records:
        groups.setdefault((r["pool_mode"], r["clients"]), {}).setdefault(r["target"], []).append(r)
    for (pool_mode, clients), by_target in groups.items():
        med = {t: {k: median_of(runs, k) for k in ("rss_before_mb", "rss_mb", "kb_per_client")}
               for t, runs in by_target.items()}
        base = med.get("pgbouncer", {}).get("kb_per_client")
        for t in sorted(by_target, key=lambda t: TARGET_ORDER.index(t) if t in TARGET_ORDER else 99):
            m, runs = med[t], by_target[t]
            lines.append(
                f"| {pool_mode} · {clients:,} idle | {TARGET_NAMES.get(t, t)} | {fmt(m['rss_before_mb'], 1)} | "
                f"{fmt(m['rss_mb'], 1)} | {fmt(m['kb_per_client'], 2)} | {ratio(m['kb_per_client'], base)} | "
                f"{sum(r['errors'] for r in runs)} in {len(runs)} runs |"
            )
    return lines


def cmd_table(args):
    records = load(args.raw, "load")
    meta = {}
    with open(args.meta, encoding="utf-8") as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                meta[k] = v
    lines = [
        f"### Bench run {meta.get('date', '')}",
        "",
        f"- Machine: {meta.get('nproc', '?')} CPUs ({meta.get('cpu', '?')}), "
        f"{meta.get('mem', '?')} RAM, kernel {meta.get('kernel', '?')}; "
        f"load average (1, 5, 15 min) {meta.get('load', '?')}",
        f"- Software: PostgreSQL {meta.get('postgres', '?')}, PgBouncer {meta.get('pgbouncer', '?')}, "
        f"pgbench {meta.get('pgbench', '?')}, dbwarden {meta.get('dbwarden', '?')}"
        + (f", {meta['extra_versions']}" if meta.get("extra_versions") else ""),
        f"- Method: {meta.get('rounds', '?')} interleaved rounds × {meta.get('duration', '?')} s per run, "
        f"medians over rounds; pgbench -S, -j {meta.get('jobs', '?')}, scale {meta.get('scale', '?')}; "
        f"pool mode {meta.get('pool_mode', '?')}, pool size {meta.get('pool', '?')}",
        f"- Command: `{meta.get('command', '?')}`",
        "",
    ]
    if records:
        lines.append("| " + " | ".join(HEADER) + " |")
        lines.append("|" + "|".join("---" for _ in HEADER) + "|")
    for row in build_rows(records):
        lines.append("| " + " | ".join(row) + " |")
    if any(r["mode"] == "storm" for r in records):
        lines += ["", "Connect-storm rows: TPS is new connections (each with a SCRAM login) per second."]
    lines += build_idle_lines(load(args.raw, "idle"))
    if any(r["errors"] for r in records):
        lines += [
            "",
            "\\* Some runs of this row had errors (failed transactions, aborted clients or a "
            "proxy that died); its figures cover only what completed. The per-run file says which.",
        ]
    notes = [n for n in meta.get("skipped", "").split(";;") if n]
    if notes:
        lines.append("")
        for n in notes:
            lines.append(f"- Not measured — {n}")
    if meta.get("pool_note"):
        lines += ["", f"- {meta['pool_note']}"]
    # Sections each start with a blank line; never print two in a row.
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    print(text)


def cmd_check(args):
    bad = [r for r in load(args.raw) if r["errors"]]
    for r in bad:
        print(
            f"error: {r['target']} {r.get('mode', 'idle')} {r['clients']} clients round {r['round']}: "
            f"{r['errors']} errors (rc {r.get('rc', '—')}) {r.get('first_error') or ''}",
            file=sys.stderr,
        )
    sys.exit(1 if bad else 0)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)

    r = sub.add_parser("record")
    r.add_argument("--raw", required=True)
    r.add_argument("--round", type=int, required=True)
    r.add_argument("--pool-mode", required=True)
    r.add_argument("--mode", required=True)
    r.add_argument("--clients", type=int, required=True)
    r.add_argument("--pool", required=True)
    r.add_argument("--target", required=True)
    r.add_argument("--stdout", required=True)
    r.add_argument("--stderr", required=True)
    r.add_argument("--log-prefix", required=True)
    r.add_argument("--rc", type=int, required=True)
    r.add_argument("--cpu-ticks", type=int)
    r.add_argument("--clk-tck", type=int, default=os.sysconf("SC_CLK_TCK"))
    r.add_argument("--rss-kb", type=int)
    r.add_argument("--proxy-alive", type=int, default=1)
    r.set_defaults(func=cmd_record)

    t = sub.add_parser("table")
    t.add_argument("--raw", required=True)
    t.add_argument("--meta", required=True)
    t.set_defaults(func=cmd_table)

    i = sub.add_parser("record-idle")
    i.add_argument("--raw", required=True)
    i.add_argument("--round", type=int, required=True)
    i.add_argument("--pool-mode", required=True)
    i.add_argument("--target", required=True)
    i.add_argument("--clients", type=int, required=True)
    i.add_argument("--connected", type=int, required=True)
    i.add_argument("--rss-before-kb", type=int, required=True)
    i.add_argument("--rss-kb", type=int, required=True)
    i.add_argument("--proxy-alive", type=int, default=1)
    i.add_argument("--stderr", required=True)
    i.set_defaults(func=cmd_record_idle)

    c = sub.add_parser("check")
    c.add_argument("--raw", required=True)
    c.set_defaults(func=cmd_check)

    args = p.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
