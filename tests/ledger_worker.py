"""A separate process for the reliability tests: races reservations, or holds one and waits to die.

python ledger_worker.py race URL SCOPE COUNT SEED GO_FILE   -> prints {"ok": n, "refused": m}
python ledger_worker.py hold URL SCOPE TTL                   -> prints "held", then sleeps
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import tokenpilot as tp


def race(url: str, scope: str, count: int, seed: int, go_file: str) -> None:
    acct = tp.open_ledger(url)
    rng = random.Random(seed)
    while not Path(go_file).exists():  # start together so the reservations really race
        time.sleep(0.005)
    ok = refused = 0
    for i in range(count):
        try:
            with acct.reserve(
                scope, model="gpt-4o", input_tokens=10, max_output_tokens=10, agent=str(seed)
            ) as r:
                r.settle(input_tokens=10, output_tokens=rng.randint(0, 10), request_id=f"{seed}-{i}")
            ok += 1
        except tp.BudgetExceeded:
            refused += 1
    acct.close()
    print(json.dumps({"ok": ok, "refused": refused}), flush=True)


def hold(url: str, scope: str, ttl: float) -> None:
    acct = tp.open_ledger(url, ttl=ttl)
    acct.reserve(scope, model="gpt-4o", input_tokens=600, max_output_tokens=400)
    print("held", flush=True)
    time.sleep(600)


if __name__ == "__main__":
    if sys.argv[1] == "race":
        race(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    else:
        hold(sys.argv[2], sys.argv[3], float(sys.argv[4]))
