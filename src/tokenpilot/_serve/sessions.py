"""Conversations the proxy follows: one entry per conversation, bounded in number and memory.

A conversation is keyed by the client's session header when it sends one, else by a hash of its
system prompt and first user message (what stays the same while an agent's history grows). Entries
idle for longer than `idle_seconds` expire; past `max_sessions` or `max_bytes` the least recently
used go first.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


def conversation_key(api: str, body: Mapping[str, Any], session_key: str | None = None) -> str:
    """The key of the conversation `body` belongs to: the session header, else a hash of its
    system prompt and first user message.

    >>> a = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "task"}]}
    >>> b = {"messages": [*a["messages"], {"role": "assistant", "content": "ok"}]}
    >>> conversation_key("openai_chat", a) == conversation_key("openai_chat", b)
    True
    >>> conversation_key("openai_chat", a, "run-7")
    'session:run-7'
    """
    if session_key:
        return f"session:{session_key}"
    items = body.get("input") if api == "openai_responses" else body.get("messages")
    system: Any = body.get("system") or body.get("instructions")
    first_user: Any = None
    if isinstance(items, str):
        first_user = items
    elif isinstance(items, Sequence):
        for item in items:
            if not isinstance(item, Mapping):
                continue
            role = item.get("role")
            if role in ("system", "developer") and system is None:
                system = item.get("content")
            elif role == "user":
                first_user = item.get("content")
                break
    seed = json.dumps([api, system, first_user], sort_keys=True, default=str, ensure_ascii=False)
    return "hash:" + hashlib.blake2b(seed.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


@dataclass(slots=True)
class _Slot(Generic[T]):
    value: T
    size: int
    seen: float
    lock: threading.Lock = field(default_factory=threading.Lock)


class SessionStore(Generic[T]):
    """Per-conversation state, least recently used first out, idle entries expired.

    Written by hand rather than with `cachetools`: an entry's size grows while it is held (the
    history gets longer), and the store re-weighs it after every call.

    >>> store: SessionStore[list[int]] = SessionStore(max_sessions=2)
    >>> with store.use("a", list) as (value, _):
    ...     value.append(1)
    >>> store.get("a")
    [1]
    """

    def __init__(
        self,
        *,
        max_sessions: int = 256,
        max_bytes: int = 512 * 1024 * 1024,
        idle_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._slots: OrderedDict[str, _Slot[T]] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._slots)

    @property
    def bytes(self) -> int:
        """The estimated memory the entries hold."""
        return sum(slot.size for slot in self._slots.values())

    def get(self, key: str) -> T | None:
        slot = self._slots.get(key)
        return None if slot is None else slot.value

    def use(self, key: str, create: Callable[[], T]) -> _Use[T]:
        """A context manager holding the conversation's entry (created when new) and its lock:
        `with store.use(key, make) as (value, resize): ...; resize(bytes)`."""
        now = self._clock()
        with self._lock:
            self._expire(now)
            slot = self._slots.get(key)
            if slot is None:
                slot = _Slot(create(), 0, now)
                self._slots[key] = slot
            else:
                self._slots.move_to_end(key)
                slot.seen = now
        return _Use(self, key, slot)

    def _resize(self, key: str, slot: _Slot[T], size: int) -> None:
        with self._lock:
            slot.size = size
            slot.seen = self._clock()
            self._shrink(keep=key)

    def _expire(self, now: float) -> None:
        while self._slots:
            key, slot = next(iter(self._slots.items()))
            if now - slot.seen <= self.idle_seconds:
                break
            del self._slots[key]
            self.evicted += 1

    def _shrink(self, keep: str) -> None:
        total = sum(slot.size for slot in self._slots.values())
        while self._slots and (len(self._slots) > self.max_sessions or total > self.max_bytes):
            key = next(iter(self._slots))
            if key == keep:  # the entry in use goes last; alone it may exceed the memory bound
                if len(self._slots) == 1:
                    break
                self._slots.move_to_end(key)
                continue
            total -= self._slots.pop(key).size
            self.evicted += 1


class _Use(Generic[T]):
    def __init__(self, store: SessionStore[T], key: str, slot: _Slot[T]) -> None:
        self._store, self._key, self._slot = store, key, slot

    def __enter__(self) -> tuple[T, Callable[[int], None]]:
        self._slot.lock.acquire()
        return self._slot.value, self._resize

    def _resize(self, size: int) -> None:
        self._store._resize(self._key, self._slot, size)

    def __exit__(self, *exc: object) -> None:
        self._slot.lock.release()
