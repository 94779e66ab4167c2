"""The docs stay true to the code.

Pages: README.md, docs/*.md, benchmarks/README.md and models/README.md. On each:

- every relative link resolves, inside the repository: the file or folder, and a ``#anchor`` among the
  GitHub-style slugs of the target page's headings;
- every ``python -m submission COMMAND`` (and, in code, ``shopbench COMMAND``) names a command of the
  command table (``submission.cli.COMMANDS``), and every ``python -m benchmarks.NAME`` or
  ``acceptance.NAME`` a module that exists;
- every flag shown for a command is one its argparse parser accepts (each command module's
  ``build_parser``; ``local_evaluation.py``'s too). A flag belongs to a command when it follows the command
  in the same inline code span, or on the same line of a code block (lines joined at a trailing ``\\``), up
  to ``&&``, ``||``, ``;`` or a pipe into another program. A table whose first header cell is "flag" lists
  flags of the commands named in its section (between the headings around it): each must be accepted by
  one of them. Flags in prose, or in inline code without a command, are as often another program's (vLLM's
  ``--gpu-memory-utilization``, Docker's ``--network``) as the kit's: they are not checked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_check import (
    FIXED_PAGES,
    LOCAL_PROGRAM,
    ROOT,
    Page,
    anchors,
    command_problems,
    flag_problems,
    flags_in,
    invocations,
    link_problems,
    link_targets,
    parse_page,
    read_page,
    slug,
)

# ---------------------------------------------------------------- the real pages


def doc_pages() -> list[Path]:
    return sorted(p for p in {ROOT / p for p in FIXED_PAGES} | set((ROOT / "docs").glob("*.md")) if p.is_file())


PAGES = [str(p.relative_to(ROOT)) for p in doc_pages()]


def test_every_page_the_docs_test_reads_exists():
    missing = [p for p in FIXED_PAGES if not (ROOT / p).is_file()]
    assert not missing, f"pages this test reads are missing: {missing}"


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_resolves(page):
    assert link_problems(read_page(ROOT / page)) == []


@pytest.mark.parametrize("page", PAGES)
def test_every_command_named_exists(page):
    assert command_problems(read_page(ROOT / page)) == []


@pytest.mark.parametrize("page", PAGES)
def test_every_flag_shown_is_accepted_by_its_command(page):
    assert flag_problems(read_page(ROOT / page)) == []


def test_the_pages_show_commands_and_flags_at_all():
    """The checks above see what the pages show (a parser that found nothing would pass them all)."""
    pages = [read_page(ROOT / page) for page in PAGES]
    named = {command for page in pages for code in page.code for command, _, _ in invocations(code.text) if command}
    assert {LOCAL_PROGRAM, "grade", "finetune", "docker run", "worker"} <= named
    assert sum(len(link_targets(page)) for page in pages) > len(pages)
    flags = [flag for page in pages for code in page.code for command, _, words in invocations(code.text)
             if command for flag in flags_in(words)]
    assert len(flags) > 50 and "--output-dir" in flags


# ---------------------------------------------------------------- the checks on a small fake page


FAKE = """# Fake page

## Running it: `python -m submission grade`

See [the other page](other.md), [its section](other.md#the-section), [here](#fake-page) and
[the layout](../README.md).

```bash
python -m submission grade --image team:v1 --track T \\
    --truth t.json --output-dir out && python local_evaluation.py --no-limits --sample 5   # a comment --bogus
python -m submission -v docker build --save img.tar | gzip -c
```

`python -m submission compare runs/a runs/b --resamples 100`, `shopbench leaderboard --results DIR`.
The table's flags are `python -m submission finetune`'s.

| flag | meaning |
|---|---|
| `--max-steps N`, `--seed S` | steps |
"""


@pytest.fixture
def fake(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("# Kit\n")
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## The section\n")

    def make(text: str) -> Page:
        path = tmp_path / "docs" / "fake.md"
        path.write_text(text)
        return read_page(path)

    return make, tmp_path


def test_a_page_that_is_right_passes_every_check(fake):
    make, root = fake
    page = make(FAKE)
    assert link_problems(page, root) == []
    assert command_problems(page) == []
    assert flag_problems(page) == []
    commands = [command for code in page.code for command, _, _ in invocations(code.text) if command]
    assert commands == ["grade", "grade", LOCAL_PROGRAM, "docker build", "compare", "leaderboard",
                        "finetune"]


@pytest.mark.parametrize("link, expected", [
    ("[gone](missing.md)", "no such file"),
    ("[section](other.md#no-such-section)", "no heading whose anchor is '#no-such-section'"),
    ("[here](#nowhere)", "no heading"),
    ("[out](../../outside.md)", "leaves the repository"),
])
def test_a_broken_link_is_found(fake, link, expected):
    make, root = fake
    problems = link_problems(make(FAKE + f"\nAnd {link}.\n"), root)
    assert len(problems) == 1 and expected in problems[0] and "fake.md:" in problems[0]


def test_links_in_code_and_to_the_web_are_not_files(fake):
    make, root = fake
    page = make("# P\n\n`[x](nothing.md)` and [web](https://example.com/x.md)\n\n```\n[y](gone.md)\n```\n")
    assert link_problems(page, root) == []


@pytest.mark.parametrize("code, expected", [
    ("`python -m submission grde --track T`", "unknown command 'grde'"),
    ("```\npython -m submission docker push --tag x\n```", "unknown command 'docker push' (known: docker build"),
    ("`shopbench leaderbord DIR`", "unknown command 'leaderbord'"),
    ("`python -m benchmarks.no_such_benchmark`", "no such module"),
])
def test_an_unknown_command_is_found(fake, code, expected):
    make, _ = fake
    problems = command_problems(make(FAKE + f"\n{code}\n"))
    assert len(problems) == 1 and expected in problems[0]


def test_an_unknown_command_in_prose_is_found(fake):
    make, _ = fake
    problems = command_problems(make(FAKE + "\nThen run python -m submission\ngrades on every track.\n"))
    assert len(problems) == 1 and "unknown command 'grades'" in problems[0]


@pytest.mark.parametrize("code, expected", [
    ("```\npython -m submission grade --image x --trak T\n```", "grade has no flag --trak"),
    ("```\npython -m submission check \\\n    --no-smoke --smoke-image x\n```", "check has no flag --smoke-image"),
    ("`python local_evaluation.py --no-limit`", "local_evaluation.py has no flag --no-limit"),
    ("`python -m submission docker run [--repo PATH] [--imag TAG]`", "docker run has no flag --imag"),
    ("`python -m submission compare A B --resamples=10 --output-file x`", "compare has no flag --output-file"),
])
def test_an_unknown_flag_is_found(fake, code, expected):
    make, _ = fake
    problems = flag_problems(make(FAKE + f"\n{code}\n"))
    assert len(problems) == 1 and expected in problems[0]


def test_a_flags_table_is_checked_against_the_commands_of_its_section(fake):
    make, _ = fake
    page = make(FAKE + "\n## Fine-tuning\n\n`python -m submission finetune`\n\n| flag | meaning |\n|---|---|\n"
                "| `--max-steps N` | ok |\n| `--max-step N` | a typo |\n")
    problems = flag_problems(page)
    assert len(problems) == 1 and "--max-step in a flags table: not a flag of finetune" in problems[0]


def test_flags_of_other_programs_are_not_the_kits(fake):
    make, _ = fake
    page = make("# P\n\n`vllm serve M --tensor-parallel-size 4` and `--gpu-memory-utilization`\n\n"
                "```\ndocker run --network none img && pip install --no-deps x\n```\n")
    assert flag_problems(page) == [] and command_problems(page) == []


@pytest.mark.parametrize("heading, expected", [
    ("Served models: vLLM, SGLang, llama.cpp, `transformers serve`",
     "served-models-vllm-sglang-llamacpp-transformers-serve"),
    ("Grader limits: profiles, verdicts, resume", "grader-limits-profiles-verdicts-resume"),
    ("local_evaluation.py", "local_evaluationpy"),
    ("Reports: how sure is a score, and where are the points lost?",
     "reports-how-sure-is-a-score-and-where-are-the-points-lost"),
    ("The [run folder](run-folder.md) and **results.json**", "the-run-folder-and-resultsjson"),
])
def test_heading_anchors_are_githubs(heading, expected):
    assert slug(heading) == expected


def test_a_repeated_heading_gets_a_numbered_anchor(tmp_path):
    page = parse_page(tmp_path / "p.md", "# A\n\n## Notes\n\n## Notes\n\n```\n# not a heading\n```\n")
    assert anchors(page) == {"a", "notes", "notes-1"}


def test_the_docs_index_links_every_page_of_docs():
    index = read_page(ROOT / "docs" / "README.md")
    linked = {(index.path.parent / target.partition("#")[0]).resolve() for _, target in link_targets(index)}
    pages = {p.resolve() for p in (ROOT / "docs").glob("*.md") if p.name != "README.md"}
    assert sorted(p.name for p in pages - linked) == []
