"""Property tests: whatever sequence of calls agents make, budgets hold and the books balance."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tokenpilot as tp
from tokenpilot import BudgetExceeded, ConfigError

step = st.tuples(
    st.sampled_from(["a", "a/x", "a/y", "a/x/deep", "b"]),
    st.integers(0, 400),  # input tokens
    st.integers(0, 400),  # max output tokens
    st.sampled_from(["settle", "release", "hold"]),
    st.floats(0, 1),  # share of the reservation actually used
)


@settings(max_examples=25, deadline=None)
@given(st.lists(step, max_size=25), st.integers(200, 3_000), st.integers(100, 1_500))
def test_spent_plus_reserved_never_exceeds_any_limit_when_calls_use_what_they_reserve(
    steps: list[tuple[str, int, int, str, float]], outer: int, inner: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp, tp.open_ledger(str(Path(tmp) / "l.db")) as acct:
        acct.set_budget("a", tokens=outer)
        acct.set_budget("a/x", tokens=inner)
        held: list[tp.Reservation] = []
        settled = 0
        for scope, inp, out, action, share in steps:
            try:
                r = acct.reserve(scope, model="gpt-4o", input_tokens=inp, max_output_tokens=out)
            except BudgetExceeded as refused:
                assert refused.spent + refused.reserved + refused.requested > refused.limit
                continue
            if action == "settle":
                r.settle(input_tokens=inp, output_tokens=int(out * share))
                settled += 1
            elif action == "release":
                r.release()
            else:
                held.append(r)
            for name, limit in (("a", outer), ("a/x", inner)):
                usage = acct.usage(name)
                assert usage.spent + usage.reserved <= limit
        assert acct.usage("a").reserved == sum(r.tokens for r in held if r.scope.startswith("a"))
        ok = [rec for rec in acct.records() if rec.status == "ok"]
        assert len(ok) == settled
        assert acct.usage("a").spent == sum(rec.total_tokens for rec in ok if rec.scope.startswith("a"))


def test_ledger_config_table_supplies_url_and_rejects_unknown_keys(tmp_path: Path) -> None:
    import os

    config = Path(os.environ["XDG_CONFIG_HOME"]) / "tokenpilot" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    target = tmp_path / "configured.db"
    config.write_text(f'[ledger]\nurl = "{target}"\nreservation_ttl = 30\n')
    with tp.open_ledger() as acct:
        assert acct.url == str(target) and acct.ttl == 30
    config.write_text("[ledger]\nttl = 30\n")
    with pytest.raises(ConfigError, match="ttl"):
        tp.open_ledger()
