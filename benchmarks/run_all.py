"""The whole benchmark suite in one command. It starts its own Dovecot on 127.0.0.1 (from
tests/dovecot.py, in a temporary folder), runs every part and prints one table with every
figure next to its target, after the machine it ran on.

    .venv/bin/python benchmarks/run_all.py            # the full sizes (about an hour)
    .venv/bin/python benchmarks/run_all.py --quick    # short sizes, a few minutes
    .venv/bin/python benchmarks/run_all.py --only latency,model --json out.json

Parts: latency (arrival → draft, IDLE and polling, and Dovecot's own IDLE delay), imapfilter
(side by side), backfill (--since over 50,000 mails), classification (one core, and training
on 10,000 mails: benchmarks/model.py and benchmarks/train.py), memory (RSS of `madoguchi run`
over 100,000 mails), model (file size and load time: benchmarks/model.py). Every loop is
bounded in count and time; nothing talks to any address but 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backfill, latency, memory, versus_imapfilter
from benchmarks.harness import EVAL, ROOT, TRAIN, Loopback, ensure_built, log_to, machine

PARTS = ("latency", "imapfilter", "backfill", "classification", "memory", "model")
FULL = {"latency_mails": 200, "vs_mails": 120, "vs_spacing": 2.5, "backfill_mails": 50_000, "backfill_cap": 900,
        "memory_mails": 100_000, "memory_round": 2500, "memory_cap": 2700}
QUICK = {"latency_mails": 30, "vs_mails": 20, "vs_spacing": 2.0, "backfill_mails": 3000, "backfill_cap": 120,
         "memory_mails": 5000, "memory_round": 1000, "memory_cap": 240}
POLL_SECONDS = 1


def offline(script: str, *args: str, timeout: float = 900) -> str:
    """benchmarks/model.py or train.py in a process of its own (model.py pins itself to one core)."""
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args], cwd=ROOT, capture_output=True,
                       text=True, timeout=timeout)
    if p.returncode:
        raise RuntimeError(f"{script} failed: {p.stderr[-2000:]}")
    return p.stdout


def number(text: str, pattern: str) -> float:
    found = re.search(pattern, text)
    return float(found.group(1)) if found else math.nan


def model_figures() -> dict:
    out = offline("model.py", str(EVAL))
    return {"classify_per_s": number(out, r"classify\s+([\d.]+)"), "parse_per_s": number(out, r"parse\s+([\d.]+)"),
            "size_mb": number(out, r"model file\s+([\d.]+)"), "load_s": number(out, r"model load\s+([\d.]+)"),
            "raw": out}


def train_figures() -> dict:
    out = offline("train.py", str(TRAIN), timeout=1800)
    return {"off_s": number(out, r"tuning off:\s+([\d.]+)"), "on_s": number(out, r"tuning on :\s+([\d.]+)"), "raw": out}


# --- the table ----------------------------------------------------------------------------------

def s3(x: float) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def trio(s: dict, unit: str = "s") -> str:
    return f"{s3(s['p50'])} / {s3(s['p95'])} / {s3(s['max'])} {unit} (n={s['n']})"


def verdict(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**NO**")


def table(r: dict) -> list[tuple[str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str]] = []
    if "latency" in r:
        lat = r["latency"]
        ex = lat["dovecot_exists"]
        rows.append(("1", "Dovecot's own IDLE delay, bare imapclient client (APPEND → EXISTS) p50 / p95 / max",
                     trio(ex), "(reference)", "—"))
        target = ex["p95"] + 0.1
        idle = lat["idle"]
        rows.append(("1", f"arrival → draft, IDLE, {idle['appended']} mails: p50 / p95 / max of the drafted ones",
                     trio(idle["drafted"]) + _lost(idle), f"p95 ≤ {target:.3f} s (Dovecot p95 + 0.1)",
                     verdict(idle["drafted"]["p95"] <= target and not idle["missing"])))
        poll = lat["poll"]
        ptarget = POLL_SECONDS + 0.1
        rows.append(("1", f"arrival → draft, polling (poll_seconds = {POLL_SECONDS}), {poll['appended']} mails",
                     trio(poll["drafted"]) + _lost(poll), f"p95 ≤ {ptarget:.1f} s (poll interval + 0.1; no IDLE target)",
                     verdict(poll["drafted"]["p95"] <= ptarget and not poll["missing"])))
    if "imapfilter" in r:
        vs = r["imapfilter"]
        m = vs["madoguchi"]
        label = {f"if{i}s": f"imapfilter become_daemon({i}, forever)" for i in vs["_run"]["intervals"]}
        label["ifidle"] = "imapfilter enter_idle() loop"
        for name in [*label, "madoguchi"]:
            v = vs[name]
            what = "flagged" if name != "madoguchi" else "drafted (on_filed)"
            rows.append(("2", f"{label.get(name, 'madoguchi (IDLE)')}: complaints caught; time until {what} "
                              "p50 / p95 / max",
                         f"{v['caught']}/{v['complaints']} caught, {v['false_alarms']}/{v['non_complaints']} false alarms; "
                         + trio(v["time"]), "—", "—"))
        for name in label:
            v = vs[name]
            rows.append(("2", f"ratio vs {label[name]}: median time imapfilter ÷ madoguchi; complaints caught "
                              "madoguchi ÷ imapfilter",
                         f"{v['time_ratio']:.1f}× slower; {m['caught']}/{v['caught']} = {v['catch_ratio']:.2f}×", "—", "—"))
    if "backfill" in r:
        b = r["backfill"]
        note = f" (stopped at the {b['time_cap_s']:.0f} s cap)" if b["capped"] else ""
        rows.append(("3", f"backfill --since over {b['mails']:,} mails ({b['marketplace']:,} marketplace): "
                          f"{b['screened']:,} screened in {b['seconds']:.0f} s{note}, {b['drafts']:,} drafts, "
                          f"{b['failed']} failed",
                     f"{b['mails_per_s']:,.0f} mails/s", "≥ 2,000 mails/s", verdict(b["mails_per_s"] >= 2000)))
    if "backfill_cli" in r:
        b = r["backfill_cli"]
        rows.append(("3", f"the same as a seller runs it, `madoguchi once --since` ({b['cores']} cores, start-up "
                          f"included): {b['screened']:,} screened in {b['seconds']:.0f} s, exit {b['exit']}",
                     f"{b['mails_per_s']:,.0f} mails/s", "≥ 2,000 mails/s", verdict(b["mails_per_s"] >= 2000)))
        rows.append(("3", "  its peak memory: the daemon's RSS; with its parsing processes (PSS)",
                     f"{b['peak_rss_mb']:.0f} MB; {b['peak_tree_pss_mb']:.0f} MB", "—", "—"))
    if "classification" in r:
        c = r["classification"]
        rows.append(("4", "classification, one core, batch (benchmarks/model.py)", f"{c['classify_per_s']:,.0f} mails/s",
                     "≥ 5,000 mails/s", verdict(c["classify_per_s"] >= 5000)))
        rows.append(("4", "parsing, one core (benchmarks/model.py; no target)", f"{c['parse_per_s']:,.0f} mails/s", "—", "—"))
        t = c["train"]
        rows.append(("4", "training on 10,000 mails, as `madoguchi train` does (threshold tuning on)", f"{t['on_s']:.1f} s",
                     "≤ 30 s", verdict(t["on_s"] <= 30)))
        rows.append(("4", "training on 10,000 mails, tuning off (benchmarks/train.py)", f"{t['off_s']:.1f} s", "—", "—"))
    if "memory" in r:
        mem = r["memory"]
        if "error" in mem:
            rows.append(("5", "RSS of `madoguchi run`", mem["error"], "≤ 120 MB, flat", "**NO**"))
        else:
            note = " (stopped at the time cap)" if mem["capped"] else ""
            note += f" (the daemon died: exit {mem['died']})" if mem["died"] is not None else ""
            rows.append(("5", f"RSS of `madoguchi run` over {mem['mails']:,} handled mails{note}: start / after warm-up "
                              f"({mem['warm_at']:,} mails) / end / max",
                         f"{mem['start_mb']:.0f} / {mem['warm_mb']:.0f} / {mem['end_mb']:.0f} / {mem['max_mb']:.0f} MB",
                         "≤ 120 MB", verdict(mem["max_mb"] <= 120)))
            rows.append(("5", "RSS flat after warm-up (end ≤ warm-up × 1.1 + 5 MB; slope)",
                         f"{'flat' if mem['flat'] else 'growing'}, {mem['slope_mb_per_10k']:+.1f} MB per 10,000 mails",
                         "flat", verdict(mem["flat"])))
    if "model" in r:
        mo = r["model"]
        rows.append(("6", "model file size (models/default.npz)", f"{mo['size_mb']:.1f} MB", "≤ 20 MB",
                     verdict(mo["size_mb"] <= 20)))
        rows.append(("6", "model load time", f"{mo['load_s']:.2f} s", "≤ 1 s", verdict(mo["load_s"] <= 1)))
    return rows


def _lost(mode: dict) -> str:
    extra = []
    if mode["missing"]:
        extra.append(f"{mode['missing']} never filed")
    if mode["failed"]:
        extra.append(f"{len(mode['failed'])} failed")
    return f"; {', '.join(extra)}" if extra else ""


def render(r: dict) -> str:
    lines = [f"madoguchi benchmarks — {r['date']} — {'quick' if r['quick'] else 'full'} run, {r['seconds']:.0f} s", ""]
    lines += [f"- {k}: {v}" for k, v in r["machine"].items()]
    lines += ["", "| # | figure | measured | target | met |", "|---|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in table(r)]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short sizes: a few minutes")
    ap.add_argument("--only", default=",".join(PARTS), help=f"comma-separated parts of {', '.join(PARTS)}")
    ap.add_argument("--json", type=Path, help="also write every figure (and the raw series) here")
    ap.add_argument("--profile-backfill", type=Path, help="write cProfile stats of the backfill pass here")
    args = ap.parse_args()
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        ap.error(f"unknown parts: {', '.join(sorted(unknown))}")
    size = QUICK if args.quick else FULL
    # SIGTERM unwinds like Ctrl-C: Dovecot, imapfilter and the daemon are stopped, the temp dir removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    r: dict = {"date": datetime.now().astimezone().isoformat(timespec="seconds"), "quick": args.quick,
               "machine": machine(), "sizes": size}
    ensure_built()
    with tempfile.TemporaryDirectory(prefix="madoguchi-bench-") as tmp:
        work = Path(tmp)
        log_to(Path(tmp) / "daemon-in-process.log")
        with Loopback(work / "server") as loop:
            if "latency" in parts:
                print("latency: arrival → draft (IDLE, then polling) …", flush=True)
                r["latency"] = latency.run(loop, work, size["latency_mails"], POLL_SECONDS)
            if "imapfilter" in parts:
                print("imapfilter side by side …", flush=True)
                r["imapfilter"] = versus_imapfilter.run(loop, work, size["vs_mails"], size["vs_spacing"])
            if "backfill" in parts:
                print("backfill …", flush=True)
                r["backfill"] = backfill.run(loop, work, size["backfill_mails"], profile=args.profile_backfill,
                                             time_cap=size["backfill_cap"])
                r["backfill_cli"] = backfill.run_cli(loop, work, size["backfill_mails"], time_cap=size["backfill_cap"])
            if "memory" in parts:
                print("memory …", flush=True)
                r["memory"] = memory.run(loop, work, size["memory_mails"], size["memory_round"],
                                         time_cap=size["memory_cap"])
    if "classification" in parts or "model" in parts:
        print("classification and model (benchmarks/model.py) …", flush=True)
        mo = model_figures()
        if "model" in parts:
            r["model"] = mo
        if "classification" in parts:
            print("training (benchmarks/train.py) …", flush=True)
            r["classification"] = {**mo, "train": train_figures()}
    r["machine"]["load average at the end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    r["seconds"] = time.monotonic() - started
    print()
    print(render(r))
    if args.json:
        args.json.write_text(json.dumps(r, ensure_ascii=False, indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
