"""Prompt tiers: a registry of system-prompt sections with conditions, assembled deterministically.

A section with no conditions is core and always included. A section with conditions (`when`) is
included in the *minimal* tier only when every condition holds (`edits_files = true`,
`complexity = ["high"]`, …); the *full* tier includes every section. Sections are joined in
(`order`, registration) order with a blank line between them, so the same registry and conditions
give the same bytes, and the core sections (usually first) keep the provider's prompt cache warm.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tokenpilot._exceptions import InputError
from tokenpilot._plan._settings import CONDITIONS, PlanSettings
from tokenpilot._tokens import tokenizer_for

TIERS = ("minimal", "full")
SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class PromptSection:
    """One part of a system prompt and when it is needed (empty `when`: always)."""

    name: str
    text: str
    when: Mapping[str, Any] = field(default_factory=dict)
    order: int = 0


@dataclass(frozen=True, slots=True)
class PromptConditions:
    """What the call will do, which the sections' conditions are tested against."""

    creates_files: bool = False
    edits_files: bool = False
    runs_tests: bool = False
    complexity: str = "medium"
    task_type: str = "unknown"


@dataclass(frozen=True, slots=True)
class AssembledPrompt:
    """A system prompt built from a registry, and what the tier left out."""

    tier: str
    text: str
    included: tuple[str, ...]
    left_out: tuple[str, ...]
    tokens: int
    full_tokens: int

    @property
    def tokens_saved(self) -> int:
        """Tokens this prompt saves against the full one."""
        return self.full_tokens - self.tokens


def _holds(when: Mapping[str, Any], conditions: PromptConditions) -> bool:
    for name, wanted in when.items():
        actual = getattr(conditions, name)
        if name in ("complexity", "task_type"):
            allowed = [wanted] if isinstance(wanted, str) else list(wanted)
            if actual not in allowed:
                return False
        elif bool(actual) != bool(wanted):
            return False
    return True


class PromptRegistry:
    """System-prompt sections, assembled per call into a minimal or full prompt.

    >>> registry = PromptRegistry([
    ...     PromptSection("core", "You are a careful coding agent."),
    ...     PromptSection("tests", "Run pytest before you finish.", when={"runs_tests": True}),
    ... ])
    >>> prompt = registry.assemble(PromptConditions(runs_tests=False), model="gpt-4o")
    >>> prompt.included, prompt.left_out, prompt.tokens_saved > 0
    (('core',), ('tests',), True)
    """

    def __init__(self, sections: Iterable[PromptSection] = ()) -> None:
        self._sections: list[PromptSection] = []
        for section in sections:
            self.add(section)

    def add(self, section: PromptSection) -> None:
        """Register a section; names are unique and conditions must be known ones."""
        if any(s.name == section.name for s in self._sections):
            raise InputError(f"prompt section {section.name!r} is registered twice")
        unknown = sorted(set(section.when) - set(CONDITIONS))
        if unknown:
            raise InputError(
                f"prompt section {section.name!r}: unknown condition {unknown[0]!r} "
                f"(known: {', '.join(CONDITIONS)})"
            )
        self._sections.append(section)

    @property
    def sections(self) -> tuple[PromptSection, ...]:
        """The sections in assembly order."""
        indexed = sorted(enumerate(self._sections), key=lambda item: (item[1].order, item[0]))
        return tuple(section for _, section in indexed)

    def __len__(self) -> int:
        return len(self._sections)

    @classmethod
    def from_settings(cls, settings: PlanSettings) -> PromptRegistry:
        """The registry of `[[plan.prompt_sections]]`."""
        return cls(PromptSection(s.name, s.text, dict(s.when), s.order) for s in settings.prompt_sections)

    def assemble(
        self, conditions: PromptConditions, *, tier: str = "minimal", model: str | None = None
    ) -> AssembledPrompt:
        """The system prompt of `tier` for `conditions`, with its token count for `model`."""
        if tier not in TIERS:
            raise InputError(f"unknown prompt tier {tier!r} (known: {', '.join(TIERS)})")
        ordered = self.sections
        chosen = [s for s in ordered if tier == "full" or _holds(s.when, conditions)]
        text = SEPARATOR.join(s.text for s in chosen)
        tokenizer = tokenizer_for(model)
        full_text = SEPARATOR.join(s.text for s in ordered)
        return AssembledPrompt(
            tier=tier,
            text=text,
            included=tuple(s.name for s in chosen),
            left_out=tuple(s.name for s in ordered if s not in chosen),
            tokens=tokenizer.count(text),
            full_tokens=tokenizer.count(full_text),
        )
