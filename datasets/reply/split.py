"""Held-out split of the reply task's Bitext rows, fixed before any reply training (see README.md).

    python datasets/reply/split.py [--data-dir ../shared/data]    # writes bitext_heldout.txt, prints the counts

A row is held out when the SHA-256 of its lower-cased, whitespace-normalised customer text starts with 0 or 1 (about
one row in eight), so near-duplicate phrasings of one request land on the same side and the rule needs no seed.
The file lists held-out row numbers (0-based, CSV data rows), one per line; no Bitext text is copied here.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
CSV_NAME = "bitext/bitext_customer_support_sample_4514.csv"


def held_out(instruction: str) -> bool:
    key = " ".join(instruction.lower().split())
    return hashlib.sha256(key.encode()).hexdigest()[0] in "01"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=HERE.parents[2] / "shared" / "data")
    args = parser.parse_args()
    path = args.data_dir / CSV_NAME
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    ids = [i for i, row in enumerate(rows) if held_out(row["instruction"])]
    (HERE / "bitext_heldout.txt").write_text("".join(f"{i}\n" for i in ids))
    print(f"{path}: {len(rows)} rows, {len(ids)} held out, {len(rows) - len(ids)} for training")
    print("sha256", hashlib.sha256(path.read_bytes()).hexdigest())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
