"""Reading the docs against the code: links, commands and flags (what tests/test_docs.py checks; its
docstring says the rules)."""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parents[1]
FIXED_PAGES = ("README.md", "docs/README.md", "benchmarks/README.md", "models/README.md")

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CODE_SPAN = re.compile(r"(`+)((?:(?!\n[ \t]*\n).)+?)\1", re.S)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?", re.M)
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
KIT = re.compile(r"(?<![^\s/(\[])(?:python3?\s+-m\s+submission|shopbench)(?=\s|$)")
KIT_IN_PROSE = re.compile(r"python3?\s+-m\s+submission(?=\s|$)")
LOCAL = re.compile(r"(?<![^\s/(\[])local_evaluation\.py(?=[\s'`]|$)")
MODULE = re.compile(r"python3?\s+-m\s+((?:benchmarks|acceptance)\.[A-Za-z_][\w.]*)")
SEPARATOR = re.compile(r"\s(?:&&|\|\||;)\s|\s\|\s(?!\s*[-(\[])")
WORD = re.compile(r"^[a-z][a-z0-9_-]*$")
FLAG = re.compile(r"^--?[A-Za-z][\w-]*$")
LOCAL_PROGRAM = "local_evaluation.py"


@dataclass(frozen=True)
class Code:
    line: int
    text: str  # one inline span, or one logical line of a code block, whitespace collapsed
    inline: bool


@dataclass(frozen=True)
class Page:
    path: Path
    prose: str  # the text with code blocks and inline code blanked (line numbers kept)
    code: tuple[Code, ...]
    headings: tuple[tuple[int, str], ...]  # (line, heading text)
    lines: tuple[str, ...]

    @property
    def name(self) -> str:
        """The page as problems name it: its path in the repository (or its file name outside it)."""
        path = self.path.resolve()
        return str(path.relative_to(ROOT)) if ROOT in path.parents else path.name


# ---------------------------------------------------------------- reading a page


def parse_page(path: Path, text: str) -> Page:
    lines = text.splitlines()
    prose, code, headings, block, fenced = [], [], [], [], False
    for number, line in enumerate(lines, 1):
        if FENCE.match(line):
            fenced = not fenced
            prose.append("")
            continue
        if fenced:
            block.append((number, line))
            prose.append("")
            continue
        prose.append(line)
        heading = HEADING.match(line)
        if heading:
            headings.append((number, heading.group(2)))
    code += block_lines(block)
    joined = "\n".join(prose)
    for span in CODE_SPAN.finditer(joined):
        code.append(Code(joined.count("\n", 0, span.start()) + 1, " ".join(span.group(2).split()), True))
    blanked = CODE_SPAN.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), joined)
    return Page(path, blanked, tuple(sorted(code, key=lambda c: c.line)), tuple(headings), tuple(lines))


def block_lines(block: list[tuple[int, str]]) -> list[Code]:
    """A code block's logical lines: a line ending with a backslash continues on the next."""
    logical, start, parts = [], None, []
    for number, line in block:
        start = number if start is None else start
        parts.append(line.rstrip().removesuffix("\\"))
        if not line.rstrip().endswith("\\"):
            logical.append(Code(start, " ".join(" ".join(parts).split()), False))
            start, parts = None, []
    if parts:
        logical.append(Code(start, " ".join(" ".join(parts).split()), False))
    return logical


def read_page(path: Path) -> Page:
    return parse_page(path, path.read_text(encoding="utf-8"))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lowercased, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(page: Page) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for _, heading in page.headings:
        base = slug(heading)
        found.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return found


def line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


# ---------------------------------------------------------------- links


def link_targets(page: Page) -> list[tuple[int, str]]:
    found = [(line_of(page.prose, m.start()), m.group(1)) for m in LINK.finditer(page.prose)]
    found += [(line_of(page.prose, m.start()), m.group(1)) for m in REFERENCE.finditer(page.prose)]
    return [(line, target) for line, target in found if target and not SCHEME.match(target)]


def link_problems(page: Page, root: Path = ROOT) -> list[str]:
    problems = []
    for line, target in link_targets(page):
        where = f"{page.name}:{line}: link '{target}'"
        path_part, _, anchor = target.partition("#")
        target_path = (page.path.parent / unquote(path_part)).resolve() if path_part else page.path
        if root.resolve() not in (target_path, *target_path.parents):
            problems.append(f"{where} leaves the repository")
        elif not target_path.exists():
            problems.append(f"{where}: no such file or folder {target_path}")
        elif anchor and target_path.suffix == ".md" and unquote(anchor) not in anchors(read_page(target_path)):
            problems.append(f"{where}: {target_path.name} has no heading whose anchor is '#{anchor}'")
    return problems


# ---------------------------------------------------------------- commands and their parsers


@functools.lru_cache(maxsize=1)
def parsers() -> dict[str, object]:
    """Every command's argparse parser, built by its own module; and local_evaluation.py's."""
    from submission.cli import COMMANDS, PROG

    built = {c.name: importlib.import_module(f"submission.cli.{c.module}").build_parser(f"{PROG} {c.name}")
             for c in COMMANDS}
    built[LOCAL_PROGRAM] = importlib.import_module("local_evaluation").build_parser()
    return built


def accepts(command: str, flag: str) -> bool:
    return flag in parsers()[command]._option_string_actions


def kit_command(words: list[str]) -> tuple[str | None, str | None, list[str]]:
    """(command, problem, the words after it) for the words after ``python -m submission``."""
    from submission.cli import GLOBAL_FLAGS, find_command

    while words and words[0] in GLOBAL_FLAGS:
        words = words[1:]
    if not words or not WORD.match(words[0]):
        return None, None, words  # no command named: --help, a placeholder (COMMAND, <command>, ...)
    command, rest = find_command(words)
    if command is not None:
        return command.name, None, rest
    group = sorted(name for name in parsers() if name.split()[0] == words[0] and " " in name)
    if group and (len(words) == 1 or not WORD.match(words[1])):
        return None, None, words[1:]  # a group named alone ("the docker commands")
    shown = " ".join(words[:2]) if group else words[0]
    return None, f"unknown command '{shown}'" + (f" (known: {', '.join(group)})" if group else ""), words


def invocations(text: str) -> list[tuple[str | None, str | None, list[str]]]:
    """(command, problem, its arguments) for each kit command or local_evaluation.py in a piece of code."""
    text = re.sub(r"(^|\s)#.*$", "", text)
    found = []
    for segment in SEPARATOR.split(text):
        kit, local = KIT.search(segment), LOCAL.search(segment)
        if local and (not kit or local.start() < kit.start()):
            found.append((LOCAL_PROGRAM, None, segment[local.end():].split()))
        elif kit:
            found.append(kit_command(segment[kit.end():].split()))
    return found


def flags_in(words: list[str]) -> list[str]:
    flags = []
    for word in words:
        for part in word.strip("[](){}|,.;:`'\"").split("/"):
            part = part.split("=")[0].strip("[](){}|,.;:`'\"")
            if FLAG.match(part):
                flags.append(part)
    return flags


def command_problems(page: Page) -> list[str]:
    problems = []
    for code in page.code:
        for _, problem, _ in invocations(code.text):
            if problem:
                problems.append(f"{page.name}:{code.line}: {problem} in `{code.text}`")
    prose = " ".join(page.prose.split())
    for match in KIT_IN_PROSE.finditer(prose):
        _, problem, _ = kit_command(prose[match.end():].split()[:2])
        if problem:
            problems.append(f"{page.name}: {problem} in the prose '{prose[match.start():match.end() + 30]}'")
    for code in page.code:
        for module in MODULE.findall(code.text):
            if not module.split(".")[-1].isupper() and not module_exists(module):
                problems.append(f"{page.name}:{code.line}: python -m {module}: no such module")
    return problems


def module_exists(module: str) -> bool:
    path = ROOT.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__main__.py").is_file()


def flag_problems(page: Page) -> list[str]:
    problems = []
    for code in page.code:
        for command, _, words in invocations(code.text):
            for flag in flags_in(words) if command else []:
                if not accepts(command, flag):
                    problems.append(f"{page.name}:{code.line}: {command} has no flag {flag} (`{code.text}`)")
    for line, commands, flags in flag_tables(page):
        for flag in flags:
            if not any(accepts(command, flag) for command in commands):
                problems.append(f"{page.name}:{line}: {flag} in a flags table: not a flag of "
                                f"{', '.join(sorted(commands))}")
    return problems


# ---------------------------------------------------------------- flags tables


def flag_tables(page: Page) -> list[tuple[int, set[str], list[str]]]:
    """(line, the commands named in the section, the flags in its first cell) of each row of a flags table."""
    tables = []
    prose = page.prose.split("\n")
    for number, line in enumerate(page.lines, 1):
        cells = [c.strip().strip("`").lower() for c in line.strip().strip("|").split("|")]
        in_prose = bool(prose[number - 1])  # not a table inside a code block
        if in_prose and line.lstrip().startswith("|") and cells[0] in ("flag", "flags"):
            rows = rows_after(page, number)
            commands = commands_in_section(page, number) or set(parsers())
            tables += [(row, commands, flags_in(first_cell_code(page.lines[row - 1]).split())) for row in rows]
    return tables


def rows_after(page: Page, header: int) -> list[int]:
    rows = []
    for number in range(header + 2, len(page.lines) + 1):
        if not page.lines[number - 1].lstrip().startswith("|"):
            break
        rows.append(number)
    return rows


def first_cell_code(row: str) -> str:
    cell = row.strip().strip("|").split("|")[0]
    return " ".join(span.group(2) for span in CODE_SPAN.finditer(cell))


def commands_in_section(page: Page, line: int) -> set[str]:
    starts = [number for number, _ in page.headings]
    start = max([n for n in starts if n <= line], default=1)
    end = min([n for n in starts if n > line], default=len(page.lines) + 1)
    named = set()
    for code in page.code:
        if start <= code.line < end:
            named |= {command for command, _, _ in invocations(code.text) if command}
    return named
