"""What an agent's conversation produced, kept outside free text: files changed, commands, errors.

`extract_artifacts(messages)` reads a conversation (either provider's JSON, or parsed `Message`s)
and returns an `Artifacts` record; `Artifacts.render(budget_tokens, tokenizer)` writes it as text
that fits the budget exactly. Compaction summaries and phase hand-offs use it.

- files changed: path and the last edit (editor create / str_replace / insert / undo_edit calls,
  Claude Code Edit / Write / MultiEdit, and shell redirections, `sed -i`, `tee`, `patch` where clear);
  edits the tool refused (an `ERROR:` answer) are not changes;
- files read: paths the agent viewed;
- commands run with their exit codes (`[Command finished with exit code N]` and the like);
- errors the agent hit: the exception line of a traceback, compiler / test failures, or a tool's
  own error, only in the output of something it ran (never the `raise` lines of a file it viewed);
- decisions, open questions and next steps stated by the assistant;
- the open task: the first user message.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tokenpilot._messages import Message, ToolCall, parse
from tokenpilot._tokens import Tokenizer

__all__ = ["Artifacts", "CommandRun", "ErrorHit", "FileEdit", "extract_artifacts"]

_EDITOR_TOOLS = {"str_replace_editor", "str_replace_based_edit_tool", "edit_file", "text_editor"}
_WRITE_TOOLS = {"Write": "create", "Edit": "str_replace", "MultiEdit": "str_replace", "NotebookEdit": "edit"}
_READ_TOOLS = {"Read", "read_file", "view_file", "open_file"}
_SHELL_TOOLS = {"execute_bash", "bash", "Bash", "shell", "run_shell_command", "execute_command", "terminal"}
_EDIT_COMMANDS = {"create", "str_replace", "insert", "undo_edit", "write", "edit"}

_EXIT = re.compile(
    r"exit code[:= ]+(-?\d+)|exit status[:= ]+(-?\d+)|returned non-zero exit status (\d+)|Exit code: (-?\d+)",
    re.I,
)
_TRACEBACK = "Traceback (most recent call last)"
_FRAME = re.compile(r'^\s*File "([^"]+)", line (\d+), in (\S+)')
_EXCEPTION_LINE = re.compile(
    r"^(?:E\s+)?([A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning|Failure))(?::\s?(.*))?$"
)
_FAILURE_LINE = re.compile(
    r"^(?:FAILED |ERROR |E\s{2,}\S|error(?:\[\w+\])?: |fatal: |.*: command not found$|"
    r".*: No such file or directory$|npm ERR! |panic: )"
)
_TOOL_ERROR = re.compile(r"^(?:ERROR:\s*|Error: )")
_PATHLIKE = re.compile(r"[\w./~+-]+")
_VIEWERS = {
    "cat",
    "head",
    "tail",
    "grep",
    "egrep",
    "rg",
    "sed",
    "nl",
    "less",
    "more",
    "find",
    "ls",
    "wc",
    "git",
}
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_DECISION = re.compile(
    r"\b(?:the (?:issue|problem|bug|root cause|cause|fix|solution) (?:is|was|seems|lies)|"
    r"we (?:need|should|must|will) |i(?:'ll| will) (?:modify|change|fix|update|add|use|implement)|"
    r"instead of|decid|the best (?:approach|way)|this means)",
    re.I,
)
_NEXT = re.compile(r"\b(?:next|then|still need|remaining|todo|to do|let's|let me|i'll|we need to)\b", re.I)
_LINE_CHARS = 200


@dataclass(frozen=True, slots=True)
class FileEdit:
    """A file the agent changed: its path, the last edit (`action`, a short `detail`) and how many."""

    path: str
    action: str
    detail: str
    edits: int = 1


@dataclass(frozen=True, slots=True)
class CommandRun:
    """A command the agent ran and its exit code (None when the output does not say)."""

    command: str
    exit_code: int | None


@dataclass(frozen=True, slots=True)
class ErrorHit:
    """An error in the output of something the agent ran: the tool call, the error, where."""

    source: str
    error: str
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Artifacts:
    """What a span of an agent's conversation produced; lists are in conversation order."""

    task: str
    files_changed: tuple[FileEdit, ...] = ()
    files_read: tuple[str, ...] = ()
    commands: tuple[CommandRun, ...] = ()
    errors: tuple[ErrorHit, ...] = ()
    decisions: tuple[str, ...] = ()
    open_questions: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()

    def sections(self) -> list[tuple[str, list[str]]]:
        """The record as titled lists of lines, most important section first (task excluded)."""
        changed = [
            f"{f.path} ({f.action}{f', {f.edits} edits' if f.edits > 1 else ''}): {f.detail}".rstrip(": ")
            for f in self.files_changed
        ]
        commands = _collapse(
            [
                f"{c.command} (exit {c.exit_code})" if c.exit_code is not None else c.command
                for c in self.commands
            ]
        )
        errors = _collapse(
            [f"{e.error} [{e.source}{f' at {e.location}' if e.location else ''}]" for e in self.errors]
        )
        return [
            ("Files changed (last edit)", changed),
            ("Errors hit", errors),
            ("Next steps", list(self.next_steps)),
            ("Open questions", list(self.open_questions)),
            ("Decisions", list(self.decisions)),
            ("Commands run", commands),
            ("Files read", list(self.files_read)),
        ]

    def render(self, budget_tokens: int, tokenizer: Tokenizer, *, task: bool = False) -> str:
        """The record as text of at most `budget_tokens` (counted with `tokenizer`); "" if none fits.

        Every section keeps its most recent lines first when cut, and says how many it left out.
        `task=True` puts the open task first (a hand-off that replaces the first user message).

        >>> from tokenpilot import tokenizer_for
        >>> record = Artifacts(task="Fix it", commands=(CommandRun("pytest -x", 1),))
        >>> print(record.render(100, tokenizer_for("gpt-4o")))
        Commands run:
        - pytest -x (exit 1)
        """
        blocks = [(title, lines) for title, lines in self.sections() if lines]
        if task and self.task:
            blocks.insert(0, ("Task", [_short(self.task, 2_000)]))
        return fit_sections(blocks, budget_tokens, tokenizer)


def fit_sections(
    blocks: Sequence[tuple[str, Sequence[str]]], budget_tokens: int, tokenizer: Tokenizer
) -> str:
    """Titled bullet lists as text within `budget_tokens`: sections in order, each cut to its most
    recent lines (a marker counts the rest) when all do not fit; exact on the final text."""
    if budget_tokens <= 0 or not blocks:
        return ""
    # Lines are admitted round-robin, most recent first, so that no section starves the others.
    order: list[tuple[int, int]] = []
    depth = max(len(lines) for _, lines in blocks)
    for rank in range(depth):
        for b, (_, lines) in enumerate(blocks):
            if rank < len(lines):
                order.append((b, len(lines) - 1 - rank))

    def text_of(k: int) -> str:
        chosen: dict[int, set[int]] = {}
        for b, i in order[:k]:
            chosen.setdefault(b, set()).add(i)
        out: list[str] = []
        for b, (title, lines) in enumerate(blocks):
            keep = chosen.get(b)
            if not keep:
                continue
            out.append(f"{title}:")
            left_out = len(lines) - len(keep)
            if left_out:
                out.append(f"- (... {left_out} earlier not shown)")
            out.extend(f"- {lines[i]}" for i in sorted(keep))
        return "\n".join(out)

    low, high = 0, len(order)
    if tokenizer.count(text_of(high)) <= budget_tokens:
        return text_of(high)
    while low < high:  # the largest k whose text fits
        mid = (low + high + 1) // 2
        if tokenizer.count(text_of(mid)) <= budget_tokens:
            low = mid
        else:
            high = mid - 1
    return text_of(low)


def _collapse(lines: list[str]) -> list[str]:
    """Repeated lines once, at their last place, with how many times they came."""
    counts: dict[str, int] = {}
    for line in lines:
        counts[line] = counts.pop(line, 0) + 1
    return [f"{line} (x{n})" if n > 1 else line for line, n in counts.items()]


def _short(text: str, limit: int = _LINE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _as_messages(messages: Sequence[Any]) -> Sequence[Message]:
    if all(isinstance(m, Message) for m in messages):
        return messages
    return parse(list(messages)).messages


def _exit_code(output: str, is_error: bool) -> int | None:
    # The last exit-code line is the command's own.
    found = next(reversed(list(_EXIT.finditer(output[-400:]))), None)
    if found is not None:
        return int(next(g for g in found.groups() if g is not None))
    return 1 if is_error else None


def _errors_in(output: str, source: str) -> list[ErrorHit]:
    """The errors an output shows: a traceback's exception and innermost frame, failure lines."""
    hits: list[ErrorHit] = []
    lines = output.splitlines()
    location: str | None = None
    in_traceback = False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith(_TRACEBACK):
            in_traceback, location = True, None
            continue
        frame = _FRAME.match(line)
        if frame:
            location = f"{frame.group(1)}:{frame.group(2)} in {frame.group(3)}"
            continue
        exception = _EXCEPTION_LINE.match(stripped)
        if exception and (in_traceback or stripped.startswith("E ") or exception.group(2) is not None):
            hits.append(ErrorHit(source, _short(stripped), location if in_traceback else None))
            in_traceback, location = False, None
        elif _FAILURE_LINE.match(stripped):
            hits.append(ErrorHit(source, _short(stripped)))
    unique: dict[tuple[str, str | None], ErrorHit] = {}
    for hit in hits:
        unique.setdefault((hit.error, hit.location), hit)
    # A long failing test run repeats itself: its last errors are the ones that matter.
    return list(unique.values())[-6:]


def _words(command: str) -> list[str]:
    """The shell words of a command's first line (a heredoc's body is data, not the command)."""
    lexer = shlex.shlex(command.split("\n", 1)[0], posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:
        return command.split()


def _looks_like_path(word: str) -> bool:
    return bool(_PATHLIKE.fullmatch(word)) and ("/" in word or "." in word) and not word.startswith("/dev/")


def _shell_writes(command: str) -> list[tuple[str, str]]:
    """(path, how) of files a shell command clearly writes: redirections, sed -i, tee, patch."""
    writes: list[tuple[str, str]] = []
    words = _words(command)
    for i, word in enumerate(words):
        following = words[i + 1] if i + 1 < len(words) else ""
        if word in (">", ">>") and _looks_like_path(following) and (i == 0 or not words[i - 1].isdigit()):
            writes.append((following, "shell redirect"))
        elif word == "sed" and any(w.startswith("-i") for w in words[i + 1 : i + 4]):
            args = list(_until_separator(words[i + 1 :]))
            files = [w for w in args[1:] if not w.startswith("-") and _looks_like_path(w)]
            if files:
                writes.append((files[-1], "sed -i"))
        elif word == "tee":
            target = next((w for w in _until_separator(words[i + 1 :]) if not w.startswith("-")), None)
            if target and _looks_like_path(target):
                writes.append((target, "tee"))
        elif word == "patch" or (word == "apply" and i > 0 and words[i - 1] == "git"):
            target = next((w for w in words[i + 1 : i + 6] if w.endswith((".patch", ".diff"))), None)
            writes.append((target or "(patch)", "patch"))
        elif word == "rm" and (i == 0 or words[i - 1] in ("&&", ";", "|")):
            writes.extend((w, "deleted") for w in _until_separator(words[i + 1 :]) if _looks_like_path(w))
    return writes


def _until_separator(words: Sequence[str]) -> Sequence[str]:
    for n, word in enumerate(words):
        if word in ("|", ";", "&&", "||", "&", "<", "<<"):
            return words[:n]
    return words


def _only_reads(command: str) -> bool:
    """A command that only shows files (cat, grep, sed -n…): what it prints is their text, not errors."""
    words = _words(command)
    programs = {words[0]} | {words[n + 1] for n, w in enumerate(words[:-1]) if w in ("|", "&&", ";")}
    return bool(words) and programs <= _VIEWERS and not any(w.startswith("-i") for w in words)


def _edit_detail(values: dict[str, Any], action: str) -> str:
    if action in ("create", "write"):
        text = values.get("file_text") or values.get("content") or ""
        count = len(str(text).splitlines())
        return f"{count} lines: {_short(str(text), 120)}" if text else ""
    if action == "insert":
        return f"after line {values.get('insert_line')}: {_short(str(values.get('new_str', '')), 160)}"
    if action == "str_replace":
        edits = values.get("edits")
        if isinstance(edits, list) and edits and isinstance(edits[-1], dict):
            values = edits[-1]
        old = values.get("old_str", values.get("old_string", ""))
        new = values.get("new_str", values.get("new_string", ""))
        return f"{_short(str(old), 80)!r} -> {_short(str(new), 160)!r}"
    return ""


def _refused(output: str, is_error: bool) -> bool:
    head = output.lstrip()[:200]
    return is_error or bool(_TOOL_ERROR.match(head)) or head.startswith(("No replacement", "Invalid `"))


def _sentences(text: str) -> list[str]:
    return [s.strip(" -*\t") for s in _SENTENCE.split(text) if len(s.strip()) >= 12]


def extract_artifacts(messages: Sequence[Any]) -> Artifacts:
    """The `Artifacts` of a conversation (OpenAI or Anthropic JSON, a request body, or `Message`s).

    >>> record = extract_artifacts([
    ...     {"role": "user", "content": "Fix the parser."},
    ...     {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
    ...      "function": {"name": "execute_bash", "arguments": '{"command": "pytest -q"}'}}]},
    ...     {"role": "tool", "tool_call_id": "c1",
    ...      "content": "E   KeyError: 'x'\\n[Command finished with exit code 1]"}])
    >>> record.commands, record.errors[0].error
    ((CommandRun(command='pytest -q', exit_code=1),), "E KeyError: 'x'")
    """
    if isinstance(messages, dict):
        items: Sequence[Message] = parse(messages).messages
    else:
        items = _as_messages(messages)
    results = {r.call_id: r for m in items for r in m.tool_results}
    task = next((m.text for m in items if m.role == "user" and m.text.strip()), "")
    changed: dict[str, FileEdit] = {}
    read: dict[str, None] = {}
    commands: list[CommandRun] = []
    errors: list[ErrorHit] = []
    decisions: list[str] = []
    questions: list[str] = []
    last_text = ""
    for message in items:
        if message.role != "assistant":
            continue
        if message.text.strip():
            last_text = message.text
            for sentence in _sentences(message.text):
                if sentence.endswith("?"):
                    questions.append(_short(sentence))
                elif _DECISION.search(sentence):
                    decisions.append(_short(sentence))
        for call in message.tool_calls:
            _read_call(call, results, changed, read, commands, errors)
    next_steps = [_short(s) for s in _sentences(last_text) if _NEXT.search(s) and not s.endswith("?")]
    asked_last = [_short(s) for s in _sentences(last_text) if s.endswith("?")]
    return Artifacts(
        task=task,
        files_changed=tuple(changed.values()),
        files_read=tuple(p for p in read if p not in changed),
        commands=tuple(commands),
        errors=tuple(errors),
        decisions=tuple(dict.fromkeys(decisions)),
        # Questions asked earlier and not at the end may have been answered since: the last few only.
        open_questions=tuple(dict.fromkeys(asked_last or questions[-3:])),
        next_steps=tuple(dict.fromkeys(next_steps[-6:])),
    )


def _read_call(
    call: ToolCall,
    results: dict[str, Any],
    changed: dict[str, FileEdit],
    read: dict[str, None],
    commands: list[CommandRun],
    errors: list[ErrorHit],
) -> None:
    values = call.argument_values()
    result = results.get(call.id)
    output = result.text if result is not None else ""
    is_error = bool(result.is_error) if result is not None else False
    path = values.get("path") or values.get("file_path") or values.get("notebook_path")
    command = values.get("command")
    if call.name in _EDITOR_TOOLS or call.name in _WRITE_TOOLS or call.name in _READ_TOOLS:
        if not isinstance(path, str) or not path:
            return
        action = _WRITE_TOOLS.get(call.name) or (command if isinstance(command, str) else "view")
        if call.name in _READ_TOOLS or action == "view":
            read.setdefault(path, None)
            return
        if action not in _EDIT_COMMANDS:
            return
        if result is not None and _refused(output, is_error):
            first = next(
                (ln for ln in output.strip().splitlines() if ln.strip() and ln.strip() != "ERROR:"), ""
            )
            errors.append(ErrorHit(f"{call.name} {action} {path}", _short(first)))
            return
        previous = changed.pop(path, None)
        edits = (previous.edits if previous else 0) + 1
        changed[path] = FileEdit(path, action, _edit_detail(values, action), edits)
        return
    if not isinstance(command, str) or not command.strip():
        return
    if call.name not in _SHELL_TOOLS and "command" not in values:
        return
    text = _short(command, 160)
    code = _exit_code(output, is_error)
    commands.append(CommandRun(text, code))
    if not _only_reads(command):
        errors.extend(_errors_in(output, text))
    for target, how in _shell_writes(command):
        previous = changed.pop(target, None)
        edits = (previous.edits if previous else 0) + 1
        changed[target] = FileEdit(target, how, text, edits)
