"""A sub-agent's context within a budget: a JSON-able mapping in, a smaller one out.

The budget is counted exactly on the result's compact JSON (`separators=(",", ":")`, non-ASCII
kept) with the model's tokenizer. Required keys are kept as they are (byte-identical values); the
other keys are taken in priority order (the `priority` keys first, then the input's order): every
key that fits whole is kept whole, then the larger ones share the room left, each in turn getting
an equal share of what remains (what one does not use passes to the next), reduced to fit: long
strings keep their head and tail around a marker with the original size, long lists keep items
from both ends and a marker with the count, nested mappings are reduced the same way, key by key.
A key that cannot fit even reduced is left out; a `"[tokenpilot omitted]"` entry names what a
mapping lost. Every reduction is reported.

Per-agent field lists come from the config:

    [agents.reviewer]
    required = ["task", "diff"]
    priority = ["tests", "notes"]
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokenpilot._config import load_config
from tokenpilot._exceptions import BudgetError, ConfigError, InputError
from tokenpilot._models import get_model
from tokenpilot._tokens import Tokenizer, tokenizer_for

OMITTED_KEY = "[tokenpilot omitted]"


@dataclass(frozen=True, slots=True)
class Reduction:
    """One change: where (a JSON path like `files[2].text`), what (`string`, `list`, `mapping`,
    `dropped`), and the tokens of that value before and after."""

    path: str
    kind: str
    tokens_before: int
    tokens_after: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "tokens_before": self.tokens_before,
            "tokens_after": self.tokens_after,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class FitResult:
    """The fitted mapping (`context`), its exact token count, and every reduction made."""

    context: dict[str, Any]
    tokens: int
    budget: int
    tokenizer: str
    exact: bool
    tokens_before: int
    required: tuple[str, ...]
    kept: tuple[str, ...]
    dropped: tuple[str, ...]
    reductions: tuple[Reduction, ...]

    @property
    def json(self) -> str:
        """The fitted mapping as the compact JSON that was counted."""
        return dumps(self.context)

    def report(self) -> dict[str, Any]:
        """The JSON report: sizes, the keys kept and dropped, every reduction."""
        return {
            "tokens": self.tokens,
            "budget": self.budget,
            "tokenizer": self.tokenizer,
            "exact": self.exact,
            "tokens_before": self.tokens_before,
            "required": list(self.required),
            "kept": list(self.kept),
            "dropped": list(self.dropped),
            "reductions": [r.as_dict() for r in self.reductions],
        }


def dumps(value: Any) -> str:
    """Compact JSON, non-ASCII kept: the text a budget is counted on."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class _Fitter:
    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.reductions: list[Reduction] = []

    def tokens(self, value: Any) -> int:
        return self.tokenizer.count(dumps(value))

    # -- one value within `limit` tokens (its own JSON), or None --------------------------------

    def reduce(self, value: Any, limit: int, path: str) -> tuple[Any, bool]:
        """(a version of `value` within `limit` tokens, True) or (None, False) when none fits."""
        if limit <= 0:
            return None, False
        if self.tokens(value) <= limit:
            return value, True
        if isinstance(value, str):
            return self._string(value, limit, path)
        if isinstance(value, Mapping):
            fitted = self.mapping(value, limit, path, required=(), priority=())
            if fitted is None:
                return None, False
            kept = sum(1 for key in fitted if key != OMITTED_KEY)
            self._note(path, "mapping", value, fitted, f"kept {kept:,} of {len(value):,} keys")
            return fitted, True
        if isinstance(value, list | tuple):
            return self._list(list(value), limit, path)
        return None, False  # a number, bool or null that does not fit cannot be reduced

    def _string(self, text: str, limit: int, path: str) -> tuple[Any, bool]:
        def cut(keep: int) -> str:
            head, tail = (keep + 1) // 2, keep // 2
            marker = f" [... {len(text) - keep:,} of {len(text):,} characters omitted ...] "
            return text[:head] + marker + (text[len(text) - tail :] if tail else "")

        if self.tokens(cut(0)) > limit:
            return None, False
        low, high = 0, len(text) - 1
        while low < high:  # the most characters whose cut text fits
            mid = (low + high + 1) // 2
            if self.tokens(cut(mid)) <= limit:
                low = mid
            else:
                high = mid - 1
        out = cut(low)
        self._note(path, "string", text, out, f"kept {low:,} of {len(text):,} characters (head and tail)")
        return out, True

    def _list(self, items: list[Any], limit: int, path: str) -> tuple[Any, bool]:
        def assemble(head: list[Any], tail: list[Any]) -> list[Any]:
            omitted = len(items) - len(head) - len(tail)
            marker = [f"[... {omitted:,} of {len(items):,} items omitted ...]"] if omitted else []
            return [*head, *marker, *reversed(tail)]

        head: list[Any] = []
        tail: list[Any] = []
        left, right = 0, len(items) - 1
        from_head = True
        while left <= right:  # alternate ends: the first items and the last ones
            index = left if from_head else right
            trial_head, trial_tail = (
                ([*head, items[index]], tail) if from_head else (head, [*tail, items[index]])
            )
            if self.tokens(assemble(trial_head, trial_tail)) <= limit:
                head, tail = trial_head, trial_tail
                left, right = (left + 1, right) if from_head else (left, right - 1)
                from_head = not from_head
                continue
            if not head and not tail:  # not even one whole item: reduce the first one
                room = limit - self.tokens(assemble([""], []))
                reduced, ok = self.reduce(items[0], room, f"{path}[0]")
                if ok:
                    head = [reduced]
            break
        out = assemble(head, tail)
        while self.tokens(out) > limit and (head or tail):  # joins can cost a token more: back off
            if len(tail) >= len(head) and tail:
                tail = tail[:-1]
            else:
                head = head[:-1]
            out = assemble(head, tail)
        if self.tokens(out) > limit:
            return None, False
        kept = len(head) + len(tail)
        self._note(path, "list", items, out, f"kept {kept:,} of {len(items):,} items (first and last)")
        return out, True

    # -- a mapping: required keys whole, the others in priority order ------------------------

    def mapping(
        self,
        value: Mapping[str, Any],
        limit: int,
        path: str,
        *,
        required: Sequence[str],
        priority: Sequence[str],
    ) -> dict[str, Any] | None:
        position = {key: i for i, key in enumerate(value)}

        def ordered(items: Mapping[str, Any]) -> dict[str, Any]:
            # Counted in the order it comes out in: the input's (a marker last).
            return dict(sorted(items.items(), key=lambda item: position.get(item[0], len(position))))

        kept: dict[str, Any] = ordered({key: value[key] for key in required})
        if self.tokens(kept) > limit:
            return None
        order = [k for k in dict.fromkeys([*priority, *value]) if k in value and k not in kept]
        dropped: list[str] = []
        deferred: list[str] = []
        for key in order:  # first every key that fits whole, in priority order
            whole = ordered({**kept, key: value[key]})
            if self.tokens(whole) <= limit:
                kept = whole
            else:
                deferred.append(key)
        for n, key in enumerate(deferred):  # then the larger ones share what is left, in order
            child = f"{path}.{key}" if path else key
            left = limit - self.tokens(ordered({**kept, key: None})) + self.tokens(None)
            # An equal share of the room for each key still to come; what one leaves passes on.
            room = left // (len(deferred) - n)
            fitted: Any = None
            ok = False
            mark = len(self.reductions)
            while room > 0:
                del self.reductions[mark:]  # only the attempt that is kept is reported
                fitted, ok = self.reduce(value[key], room, child)
                if not ok:
                    break
                over = self.tokens(ordered({**kept, key: fitted})) - limit
                if over <= 0:
                    break
                room -= over  # joins cost a little: try a little smaller
                ok = False
            if ok:
                kept = ordered({**kept, key: fitted})
            else:
                del self.reductions[mark:]
                dropped.append(key)
                self.reductions.append(Reduction(child, "dropped", self.tokens(value[key]), 0, "did not fit"))
        if dropped:
            marker = ordered({**kept, OMITTED_KEY: f"{len(dropped)} keys: {', '.join(dropped)}"})
            if self.tokens(marker) <= limit:
                kept = marker
        return kept

    def _note(self, path: str, kind: str, before: Any, after: Any, detail: str) -> None:
        self.reductions.append(Reduction(path or "$", kind, self.tokens(before), self.tokens(after), detail))


def agent_fields(name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`(required, priority)` of `[agents.NAME]` in the config; a `ConfigError` when it is not there."""
    config = load_config()
    agents = config.section("agents")
    spec = agents.get(name)
    if not isinstance(spec, Mapping):
        known = ", ".join(sorted(agents)) or "none configured"
        raise ConfigError(f"no [agents.{name}] table (known: {known})", source="config")
    out: list[tuple[str, ...]] = []
    for key in ("required", "priority"):
        fields = spec.get(key, [])
        if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
            raise ConfigError(
                "must be a list of key names",
                source=config.source_of("agents", name),
                key=f"agents.{name}.{key}",
            )
        out.append(tuple(fields))
    unknown = set(spec) - {"required", "priority"}
    if unknown:
        raise ConfigError(
            f"unknown key(s) {sorted(unknown)} (known: required, priority)",
            source=config.source_of("agents", name),
            key=f"agents.{name}",
        )
    return out[0], out[1]


def _names(values: Iterable[Any], what: str) -> tuple[str, ...]:
    if isinstance(values, str):
        values = (values,)
    names = tuple(values)
    if not all(isinstance(v, str) for v in names):
        raise InputError(f"{what} must be key names (strings)")
    return names


def fit_context(
    context: Mapping[str, Any],
    budget: int,
    *,
    model: str | None = None,
    required: Sequence[str] = (),
    priority: Sequence[str] = (),
) -> FitResult:
    """`context` fitted to `budget` tokens of compact JSON: required keys whole, the rest by priority.

    >>> context = {"task": "Review the diff", "diff": "+ x = 1\\n" * 400, "notes": list(range(300))}
    >>> result = fit_context(context, 160, model="gpt-4o", required=("task",), priority=("notes",))
    >>> result.tokens <= 160, result.context["task"], [(r.path, r.kind) for r in result.reductions]
    (True, 'Review the diff', [('notes', 'list'), ('diff', 'string')])
    >>> result.context["notes"][15:18]
    [15, '[... 269 of 300 items omitted ...]', 285]
    """
    if not isinstance(context, Mapping) or not all(isinstance(k, str) for k in context):
        raise InputError("the context must be a JSON object (a mapping with string keys)")
    if not isinstance(budget, int) or isinstance(budget, bool) or budget <= 0:
        raise InputError(f"budget must be a positive number of tokens, got {budget!r}")
    required = _names(required, "required")
    priority = _names(priority, "priority")
    missing = [key for key in required if key not in context]
    if missing:
        raise InputError(f"required key(s) not in the context: {', '.join(missing)}")
    try:
        original = dumps(context)
    except (TypeError, ValueError) as exc:
        raise InputError(f"the context is not JSON-able: {exc}") from None
    info = get_model(model)
    tokenizer = tokenizer_for(info.name)
    allowed = tokenizer.safe_budget(budget)
    fitter = _Fitter(tokenizer)
    tokens_before = tokenizer.count(original)
    data = json.loads(original)  # plain JSON values from here on (tuples are lists, and so on)
    # counted in the order they come out in (the input's), as `mapping` counts them
    needed = fitter.tokens({key: data[key] for key in data if key in required})
    if needed > allowed:
        raise BudgetError(
            f"the required keys ({', '.join(required)}) alone need {needed:,} tokens, "
            f"over the budget of {allowed:,}"
        )
    fitted = fitter.mapping(data, allowed, "", required=required, priority=priority)
    assert fitted is not None  # the required keys fit, so the mapping does
    tokens = fitter.tokens(fitted)
    top = [
        r.path for r in fitter.reductions if r.kind == "dropped" and "." not in r.path and "[" not in r.path
    ]
    return FitResult(
        context=fitted,
        tokens=tokens,
        budget=budget,
        tokenizer=tokenizer.name,
        exact=tokenizer.exact,
        tokens_before=tokens_before,
        required=required,
        kept=tuple(k for k in fitted if k != OMITTED_KEY),
        dropped=tuple(top),
        reductions=tuple(fitter.reductions),
    )
