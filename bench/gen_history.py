#!/usr/bin/env python3
# Copied unchanged from the shared generator ../shared/bench/gen_history.py (/work/shared/bench/gen_history.py),
# so that the repository is self-contained; only these header comment lines were added. Do not edit: update the
# shared generator and copy it again. bench/run.py caches generated files by a hash of this file's contents.
# ruff: noqa: E501, SIM115
"""Write a synthetic, realistic multi-patient injection history as CSV (see SPEC.md, History input).

Deterministic for a given --seed. Uses only site and drug names that SPEC.md requires the default
rules.yaml to have, so `tpi validate` can run on it with the default rules.

    python3 gen_history.py --rows 1000000 --out big.csv
    python3 gen_history.py --rows 200000 --sorted-by date --out by-date.csv
"""
import argparse
import csv
import random
import sys
from datetime import date, timedelta

SITES = ["trapezius", "levator-scapulae", "rhomboid", "infraspinatus", "supraspinatus",
         "sternocleidomastoid", "splenius-capitis", "erector-spinae", "quadratus-lumborum",
         "gluteus-medius", "piriformis", "interspinous-lumbar"]
STEROIDS = [("triamcinolone", ["10 mg", "20 mg", "40 mg"]), ("methylprednisolone", ["20 mg", "40 mg", "80 mg"]),
            ("dexamethasone", ["4 mg", "8 mg"]), ("betamethasone", ["3 mg", "6 mg"])]
ANESTHETICS = [("lidocaine", ["2 mL @ 1%", "3 mL @ 1%", "5 mL @ 1%", "40 mg"]),
               ("lidocaine-epinephrine", ["5 mL @ 1%"]), ("bupivacaine", ["4 mL @ 0.25%", "5 mL @ 0.5%"]),
               ("ropivacaine", ["5 mL @ 0.2%"])]
HEADER = ["patient_id", "date", "site", "side", "drug", "dose", "points", "weight_kg", "override"]


def patient_rows(rng: random.Random, pid: str, start: date, days: int):
    weight = rng.choice(["", str(rng.randint(45, 120))])
    n_visits = rng.randint(1, 12)
    visit_days = sorted(rng.sample(range(days), n_visits))
    for vd in visit_days:
        d = (start + timedelta(days=vd)).isoformat()
        # distinct sites within a visit, so that every row group is one injection (SPEC.md, History input)
        for site in rng.sample(SITES, rng.choice([1, 1, 1, 2, 3])):
            side = "" if site == "interspinous-lumbar" else rng.choice(["left", "right", "left", "right", "bilateral", ""])
            points = str(rng.randint(1, 4)) if rng.random() < 0.7 else ""
            kind = rng.random()
            if kind < 0.15:  # dry needling
                yield [pid, d, site, side, "", "", points, weight, ""]
                continue
            drug, doses = rng.choice(ANESTHETICS)
            yield [pid, d, site, side, drug, rng.choice(doses), points, weight, ""]
            if kind < 0.65:  # with a corticosteroid
                drug, doses = rng.choice(STEROIDS)
                override = "documented exception" if rng.random() < 0.01 else ""
                yield [pid, d, site, side, drug, rng.choice(doses), points, weight, override]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="about this many rows")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default="-")
    ap.add_argument("--sorted-by", choices=["patient", "date"], default="patient")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    start, days = date(2023, 1, 1), 4 * 365
    rows, k = [], 0
    while len(rows) < a.rows:
        k += 1
        rows.extend(patient_rows(rng, f"P{k:07d}", start, days))
    rows = rows[: a.rows]
    if a.sorted_by == "date":
        rows.sort(key=lambda r: r[1])
    out = sys.stdout if a.out == "-" else open(a.out, "w", newline="")
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(rows)
    if out is not sys.stdout:
        out.close()


if __name__ == "__main__":
    main()
