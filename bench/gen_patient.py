#!/usr/bin/env python3
"""Write a synthetic one-patient injection history as CSV: a given number of injections over many years.

Deterministic for a given --seed. Sites, drugs and doses are those of gen_history.py (imported from it, so the two
generators never drift apart), with the same mix: 15% dry needling, a local anesthetic alone or with a
corticosteroid in the same row group, distinct sites within a visit, so that every row group (patient, date, site,
side) is one injection. Visits are spread evenly over --years from --start.

    python3 gen_patient.py --injections 20000 --years 50 --out one-patient.csv   # the scaling test (~32,000 rows)
    python3 gen_patient.py --injections 24 --years 3 --start 2023-01-01 --out desk.csv   # a desk check history

20,000 injections cannot be spread as thinly as a real patient's (a few a year): over 50 years they come every
day or two, so each 12-month window holds a few hundred injections. That makes the file a stress test of the
per-rule windows: an engine that rescans the window (or the whole history) per injection shows up here.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from typing import TextIO

from gen_history import ANESTHETICS, HEADER, SITES, STEROIDS

SITES_PER_VISIT = [1, 1, 1, 2, 3]  # as in gen_history.py
MEAN_SITES_PER_VISIT = sum(SITES_PER_VISIT) / len(SITES_PER_VISIT)


def visit_rows(rng: random.Random, pid: str, day: date, weight: str, n_sites: int) -> Iterator[list[str]]:
    """The rows of one visit: n_sites distinct sites, each one injection (one or two rows)."""
    d = day.isoformat()
    for site in rng.sample(SITES, n_sites):
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


def patient_rows(rng: random.Random, pid: str, injections: int, start: date, years: float) -> Iterator[list[str]]:
    """Exactly `injections` injections; visit gaps drawn so that the visits span about `years` years."""
    expected_visits = max(1.0, injections / MEAN_SITES_PER_VISIT)
    mean_gap = max(1.0, years * 365.25 / expected_visits)
    max_gap = max(1, round(2 * mean_gap) - 1)  # uniform on 1..max_gap has mean ~ mean_gap
    weight_kg = rng.randint(55, 100)
    day, left = start, injections
    while left > 0:
        if rng.random() < 0.02:  # the weight drifts, and is not always written down
            weight_kg = min(140, max(40, weight_kg + rng.choice([-2, -1, 1, 2])))
        weight = "" if rng.random() < 0.2 else str(weight_kg)
        n_sites = min(left, rng.choice(SITES_PER_VISIT))
        yield from visit_rows(rng, pid, day, weight, n_sites)
        left -= n_sites
        day += timedelta(days=rng.randint(1, max_gap))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--injections", type=int, default=20_000, help="exactly this many injections (row groups)")
    ap.add_argument("--years", type=float, default=50.0, help="spread the visits over about this many years")
    ap.add_argument("--start", type=date.fromisoformat, default=date(1976, 1, 1), help="first visit (YYYY-MM-DD)")
    ap.add_argument("--patient", default="S0000001", help="the patient_id")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", default="-")
    a = ap.parse_args()
    if a.injections < 1 or a.years <= 0:
        ap.error("--injections and --years must be positive")
    rng = random.Random(a.seed)
    rows = patient_rows(rng, a.patient, a.injections, a.start, a.years)
    if a.out == "-":
        write(sys.stdout, rows)
    else:
        with open(a.out, "w", newline="", encoding="utf-8") as out:
            write(out, rows)


def write(out: TextIO, rows: Iterator[list[str]]) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(rows)


if __name__ == "__main__":
    main()
