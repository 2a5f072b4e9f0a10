"""Ranking: the files a task points at come first."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tokenpilot._pack.features import file_features
from tokenpilot._pack.rank import rank
from tokenpilot._pack.terms import identifier_terms, task_mentions, without_reports


def _rank(files: dict[str, str], task: str, **kwargs: object) -> list[str]:
    paths = sorted(files)
    scores = rank(paths, [file_features(files[p]) for p in paths], task, task_mentions(task), **kwargs)  # type: ignore[arg-type]
    return [s.path for s in sorted(scores, key=lambda s: (-s.score, s.path))]


FILES = {
    "pkg/http/adapters.py": "class HTTPAdapter:\n    def send(self, request):\n        return self.retries\n",
    "pkg/models.py": "class Request:\n    def prepare_body(self, data):\n        return data\n",
    "pkg/utils.py": "def parse_header_links(value):\n    return value.split(',')\n",
    "tests/test_adapters.py": "def test_send():\n    HTTPAdapter().send(None)\n    HTTPAdapter().send(1)\n",
    "docs/adapters.rst": "HTTPAdapter send retries HTTPAdapter send retries\n",
}


def test_identifier_terms_split_snake_and_camel_case() -> None:
    assert identifier_terms("parse_expr") == ("parse_expr", "parse", "expr")
    assert identifier_terms("HTTPAdapter") == ("httpadapter", "http", "adapter")


def test_task_mentions_find_paths_dotted_names_and_identifiers() -> None:
    mentions = task_mentions("In `pkg/models.py`, Request.prepare_body fails; see parse_header_links()")
    assert "pkg/models.py" in mentions.paths
    assert "Request.prepare_body" in mentions.dotted
    assert {"prepare_body", "parse_header_links"} <= set(mentions.identifiers)


def test_file_named_by_path_in_task_ranks_first() -> None:
    assert (
        _rank(FILES, "something is off in pkg/utils.py with retries in the adapter when it sends")[0]
        == "pkg/utils.py"
    )


def test_file_defining_a_mentioned_identifier_ranks_first() -> None:
    assert _rank(FILES, "prepare_body() drops the data")[0] == "pkg/models.py"


def test_tests_and_docs_count_less_than_source_unless_named() -> None:
    order = _rank(FILES, "HTTPAdapter send ignores retries")
    assert order[0] == "pkg/http/adapters.py"
    assert order.index("tests/test_adapters.py") > 0 and order.index("docs/adapters.rst") > 0
    named = _rank(FILES, "tests/test_adapters.py fails on HTTPAdapter send")
    assert named[0] == "tests/test_adapters.py"


def test_focus_glob_lifts_a_file_and_include_glob_puts_it_first() -> None:
    task = "HTTPAdapter send ignores retries"
    assert _rank(FILES, task, include=["pkg/utils.py"])[0] == "pkg/utils.py"
    plain = _rank(FILES, task)
    focused = _rank(FILES, task, focus=["pkg/models.py"])
    assert focused.index("pkg/models.py") <= plain.index("pkg/models.py")


@given(st.text(max_size=200))
def test_rank_scores_every_file_with_a_finite_non_negative_score(task: str) -> None:
    paths = sorted(FILES)
    scores = rank(paths, [file_features(FILES[p]) for p in paths], task, task_mentions(task))
    assert [s.path for s in scores] == paths
    assert all(0.0 <= s.score < float("inf") for s in scores)


def test_files_that_are_not_source_code_count_less_than_code() -> None:
    files = {
        "pkg/http/adapters.py": FILES["pkg/http/adapters.py"],
        "locale/fr/messages.po": 'msgid "HTTPAdapter send retries"\nmsgstr "HTTPAdapter envoi"\n' * 20,
        "CHANGES": "HTTPAdapter send retries fixed\n" * 20,
    }
    assert _rank(files, "HTTPAdapter send ignores retries")[0] == "pkg/http/adapters.py"


def test_a_translation_catalog_compiled_to_javascript_counts_less_like_other_translations() -> None:
    catalog = 'Documentation.addTranslations({"messages": {"cross-reference %s": "Querverweis %s"}});\n' * 30
    code = "def resolve_xref(node):\n    return node.cross_reference\n"
    task = "cross-reference messages are not resolved"

    def catalog_score(path: str) -> float:
        paths = ["pkg/domains/python.py", path]
        scores = rank(paths, [file_features(code), file_features(catalog)], task, task_mentions(task))
        return scores[1].score

    assert catalog_score("pkg/locale/de/LC_MESSAGES/pkg.js") < 0.5 * catalog_score("pkg/static/catalog.js")


def test_absolute_traceback_path_names_the_repository_file_it_ends_with() -> None:
    task = (
        "Traceback (most recent call last):\n"
        '  File "/home/me/src/project/tests/test_adapters.py", line 2, in test_send\n'
        "ValueError: HTTPAdapter send"
    )
    # named, the test file is not counted down as tests are
    assert _rank(FILES, task)[0] == "tests/test_adapters.py"


def test_link_to_a_file_on_a_forge_names_that_file() -> None:
    task = "The split at https://github.com/o/r/blob/0123abc/pkg/utils.py#L10-L12 drops the last value"
    assert _rank(FILES, task)[0] == "pkg/utils.py"


def test_a_mentioned_path_names_the_longest_repository_path_it_ends_with() -> None:
    files = {"pkg/utils.py": "x = 1\n", "utils.py": "x = 1\n", "other/utils.py": "x = 1\n"}
    task = "see /srv/app/pkg/utils.py for the bug"
    assert _rank(files, task)[0] == "pkg/utils.py"


def test_links_add_no_query_terms_or_identifiers() -> None:
    mentions = task_mentions("Broken since https://github.com/o/r/pull/12 (see docs.example.org/api.html)")
    assert "github" not in {m.lower() for m in mentions.identifiers}
    files = {"pkg/github.py": "github = 'github'\n", "pkg/core.py": "def broken(): pass\n"}
    assert _rank(files, "broken, see https://github.com/o/r/pull/12")[0] == "pkg/core.py"


VERSIONS_PRINTER = {
    "pkg/core.py": "def weighted_mean(values, weights):\n    return sum(values) / sum(weights)\n",
    "pkg/print_versions.py": (
        "def show_versions():\n"
        "    for name in ('numpy', 'pandas', 'scipy', 'netCDF4', 'dask', 'matplotlib', 'setuptools'):\n"
        "        print(name, version(name))\n"
    ),
}
REPORT = (
    "weighted mean is wrong when weights are boolean\n"
    "<!-- Please describe the bug: what you did, what you expected -->\n"
    "#### Output of show_versions()\n"
    "<details>\n"
    "python: 3.8.1\nnumpy: 1.18.1\npandas: 1.0.3\nscipy: 1.4.1\nnetCDF4: None\ndask: 2.16.0\n"
    "matplotlib: 3.2.1\nsetuptools: 46.1.3\n"
    "</details>\n"
)


def test_environment_reports_and_html_comments_do_not_steer_the_ranking() -> None:
    # the package names of a pasted version listing match the file that prints versions
    assert _rank(VERSIONS_PRINTER, REPORT)[0] == "pkg/core.py"
    cleaned = without_reports(REPORT)
    assert "numpy" not in cleaned and "Please describe" not in cleaned
    assert cleaned.startswith("weighted mean is wrong")


def test_a_bare_run_of_version_lines_is_dropped_but_ordinary_lines_stay() -> None:
    text = 'parse() fails\nnumpy==1.2\nscipy: 1.4\n"pandas": "1.0",\ndask: None\nzarr: 2.1\nstill here: yes\n'
    cleaned = without_reports(text)
    assert cleaned.splitlines() == ["parse() fails", "still here: yes"]
    # four such lines are not a report: a task may well say `timeout: 30`
    short = "retry: 3\ntimeout: 30\nbackoff: 2\nlimit: 5\n"
    assert without_reports(short) == short


@given(st.text(max_size=400))
def test_without_reports_only_removes_text(task: str) -> None:
    cleaned = without_reports(task)
    remaining = iter(task)
    # every character left is in the task, in order (a subsequence)
    assert all(ch in remaining for ch in cleaned)


def test_issue_templates_count_less_than_the_code_a_report_matches() -> None:
    files = {
        ".github/ISSUE_TEMPLATE/bug_report.md": "Describe the bug\nTo Reproduce\nExpected behavior\nparse\n",
        "pkg/parser.py": "def parse(text):\n    return text.split()\n",
    }
    task = "Describe the bug\nparse drops the last word\nTo Reproduce\ncall parse\nExpected behavior\nall"
    assert _rank(files, task)[0] == "pkg/parser.py"


def test_a_file_containing_the_message_the_task_quotes_ranks_first() -> None:
    files = {
        "pkg/loader.py": "def load(path):\n    raise OSError('the archive header is truncated here')\n",
        "pkg/archive.py": "def read_all(archive):\n"
        + "    # opening an archive reads every archive header; a truncated header fails\n" * 3
        + "    return archive.header\n",
    }
    task = 'Opening an archive fails: "the archive header is truncated here" for every archive header'
    from tokenpilot._pack.slices import task_clues

    mentions = task_mentions(task)
    clues = task_clues(task, mentions.identifiers, mentions.dotted)
    paths = sorted(files)
    plain = _rank(files, task)
    assert plain[0] == "pkg/archive.py"  # the words alone favour the other file
    scores = rank(
        paths,
        [file_features(files[p]) for p in paths],
        task,
        mentions,
        messages=clues.messages,
        text_of=lambda i: files[paths[i]],
    )
    assert max(scores, key=lambda s: s.score).path == "pkg/loader.py"


def test_the_tasks_title_weighs_more_than_a_word_its_body_repeats() -> None:
    files = {
        "pkg/parse.py": "def parse(text):\n    return text.split()\n",
        "pkg/render.py": "def render(tree):\n    return str(tree)\n",
    }
    assert _rank(files, "parse drops the last word\nrender shows it; render is fine")[0] == "pkg/parse.py"
    assert (
        _rank(files, "a word is dropped\nparse is called, render shows it; render is fine")[0]
        == "pkg/render.py"
    )


def test_names_only_the_tasks_example_code_uses_weigh_less_than_names_its_prose_says() -> None:
    files = {
        "pkg/widget.py": "class Widget:\n    def show(self):\n        return self\n",
        "pkg/layout.py": "def layout_rows(rows):\n    return rows\n",
    }
    prose = "layout_rows loses a row\n```\nw = Widget()\nw.show()\nlayout_rows(w.rows)\n```"
    code_only = "a row is lost\n```\nw = Widget()\nw.show()\nlayout_rows(w.rows)\n```"
    assert _rank(files, prose)[0] == "pkg/layout.py"
    assert _rank(files, code_only)[0] == "pkg/widget.py"  # the class the example builds, named twice


def test_a_file_defining_the_names_the_task_describes_ranks_above_one_that_only_says_the_words() -> None:
    from tokenpilot._pack import rank as ranking

    files = {
        "pkg/printing/latex.py": "class LatexPrinter:\n    def print_power(self, e):\n        return e\n",
        "pkg/notes.py": "def helper(x):\n"
        + "    # the latex printer prints a power; latex power printer\n" * 4,
    }
    task = "the latex printer drops parentheses around a negative power"
    assert _rank(files, task)[0] == "pkg/printing/latex.py"
    saved = ranking.W_NAMES_FIELD
    try:
        ranking.W_NAMES_FIELD = 0.0
        assert _rank(files, task)[0] == "pkg/notes.py"  # without the names field the words win
    finally:
        ranking.W_NAMES_FIELD = saved


def test_one_hop_lifts_what_the_best_files_import_in_proportion_to_both_scores() -> None:
    from tokenpilot._pack.rank import HOP_TOP, W_HOP, one_hop

    texts = {
        "pkg/printer.py": "from pkg.power import fmt_pow\nfrom . import unrelated\nimport pkg.other as o\n",
        "pkg/power.py": "def fmt_pow(e):\n    return e\n",
        "pkg/other.py": "def fmt_other(e):\n    return e\n",
        "pkg/unrelated.py": "X = 1\n",
        "pkg/alone.py": "def fmt_alone(e):\n    return e\n",
    }
    paths = sorted(texts)
    base = {"pkg/printer.py": 2.0, "pkg/power.py": 1.0, "pkg/other.py": 0.5, "pkg/unrelated.py": 0.0}
    scores = [base.get(p, 1.0) for p in paths]  # pkg/alone.py matches as well as power.py
    assert HOP_TOP >= 1
    gain = {paths[i]: g for i, g in one_hop(paths, scores, lambda i: texts[paths[i]]).items()}
    assert gain["pkg/power.py"] == W_HOP * 1.0 * 0.5
    assert gain["pkg/other.py"] == W_HOP * 1.0 * 0.25
    assert gain.get("pkg/unrelated.py", 0.0) == 0.0  # imported, but the task says nothing of it
    assert "pkg/alone.py" not in gain  # as relevant, but nothing among the best imports it


def test_a_path_mention_that_names_many_files_lifts_none_of_them_out_of_the_tests() -> None:
    files = {f"tests/roots/case{k}/index.rst": "toctree genindex search\n" for k in range(6)}
    files["pkg/toctree.py"] = "def resolve_toctree(entries):\n    return [e for e in entries if e]\n"
    files["pkg/other.py"] = "def unrelated():\n    return 1\n"
    task = "toctree contains reference to nonexisting document 'genindex' in .../index.rst:30"
    assert "index.rst" in task_mentions(task).paths
    order = _rank(files, task)
    assert order[0] == "pkg/toctree.py"  # six test files share the mention: none of them is named
    only = {
        "tests/roots/case0/index.rst": files["tests/roots/case0/index.rst"],
        **{p: files[p] for p in ("pkg/toctree.py", "pkg/other.py")},
    }
    assert _rank(only, task)[0] == "tests/roots/case0/index.rst"  # one file matches: it is named


def test_call_hop_lifts_the_files_the_best_part_of_a_best_file_uses_by_an_imported_name() -> None:
    from tokenpilot._pack.features import file_parts
    from tokenpilot._pack.rank import W_CALL_HOP, call_hop

    texts = {
        "pkg/printer.py": (
            "from pkg.fmt import render_tuple\nfrom pkg import other\nimport pkg.strong as strong\n\n"
            "def unrelated_thing():\n    return other.value()\n\n"
            "def print_tuple(node):\n    # tuple elements printed without the trailing comma\n"
            "    return render_tuple(node.elements) + strong.mark()\n"
        ),
        "pkg/fmt.py": "def render_tuple(items):\n    return ', '.join(items)\n",
        "pkg/other.py": "def value():\n    return 1\n",
        "pkg/strong.py": "def mark():\n    return '!'\n",
    }
    paths = sorted(texts)
    base = {"pkg/printer.py": 2.0, "pkg/fmt.py": 0.0, "pkg/other.py": 0.0, "pkg/strong.py": 2.0}
    scores = [base[p] for p in paths]
    query = {"tuple": 2.0, "comma": 1.0, "elements": 1.0}
    gain = {
        paths[i]: g
        for i, g in call_hop(
            paths,
            scores,
            lambda i: texts[paths[i]],
            query,
            lambda ix: [file_parts(texts[paths[i]]) for i in ix],
        ).items()
    }
    assert gain["pkg/fmt.py"] == W_CALL_HOP  # used in the best part, and no word of the task in it
    assert "pkg/other.py" not in gain  # imported, but used only in a part the task is not about
    assert gain.get("pkg/strong.py", 0.0) == 0.0  # used there, but already as good as the best


def test_call_hop_brings_the_second_file_of_a_fix_into_the_best_files() -> None:
    import tokenpilot._pack.rank as ranking

    files = {
        "pkg/printer.py": (
            "from pkg.fmt import render_items\n\n"
            "def print_tuple(node):\n    # one element tuple loses its trailing comma when printed\n"
            "    return render_items(node.elements)\n"
        ),
        "pkg/fmt.py": "def render_items(items):\n    return ', '.join(items)\n",
        **{f"pkg/noise{k}.py": f"def noise{k}():\n    return 'printed element tuple'\n" for k in range(4)},
    }
    task = "one element tuple printed without its trailing comma"
    texts = lambda i: files[sorted(files)[i]]  # noqa: E731
    with_hop = _rank(files, task, text_of=texts)
    saved = ranking.W_CALL_HOP
    try:
        ranking.W_CALL_HOP = 0.0
        without = _rank(files, task, text_of=texts)
    finally:
        ranking.W_CALL_HOP = saved
    assert with_hop[0] == "pkg/printer.py"
    assert with_hop.index("pkg/fmt.py") < without.index("pkg/fmt.py")
    assert with_hop.index("pkg/fmt.py") == 1
