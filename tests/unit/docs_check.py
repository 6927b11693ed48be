"""Checks the repository's Markdown documents the way a reader on GitHub follows them.

Two kinds of problem are reported, each as ``<document>:<line>: <what is wrong>``:

- a relative link that does not resolve: its file or folder is missing, or its ``#anchor`` names no heading of the
  target document (anchors are GitHub's heading slugs, computed as github-slugger computes them);
- a cited test that does not exist: a path ``tests/...`` that is missing, a ``path::test_name`` whose file defines no
  such function (a trailing ``*`` or ``…`` makes the name a prefix), or a test cited by a bare name, which no
  reader (and no check) can find without its path from the repository root.

Plain functions over text and paths, so that the unit tests run them on the repository and on temporary files.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:
    from pathlib import Path

#: A fenced code block's opening or closing line (``` or ~~~, up to three spaces of indent).
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
#: An ATX heading (``## Title``), with optional closing hashes.
ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
#: An inline code span (the same number of backticks opens and closes it).
CODE_SPAN = re.compile(r"(`+)(.+?)(?<!`)\1(?!`)")
#: An inline link or image: ``[text](target "title")``; the text may hold one level of brackets.
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^()\s]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)")
#: A reference definition: ``[label]: target``.
REFERENCE_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
#: An HTML link or anchor written inline.
HTML_HREF = re.compile(r"<a\s[^>]*\bhref=\"([^\"]*)\"", re.IGNORECASE)
HTML_ANCHOR = re.compile(r"<a\s[^>]*\b(?:id|name)=\"([^\"]*)\"", re.IGNORECASE)
#: A URL with a scheme (https:, mailto:) or protocol-relative: not a file of this repository.
EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")
#: A test cited by its path from the repository root, with an optional ``::name`` (or ``::Class::name``).
CITED_PATH = re.compile(r"(?<![\w./-])(tests/[\w./-]*[\w/])(?:::([\w*…]+(?:::[\w*…]+)?))?")
#: A test (file or function) named without its path, inside a code span.
BARE_TEST = re.compile(r"(?<![\w/:.*-])\*?test_[\w*…]*(?:\.py)?")


@dataclass(frozen=True)
class Line:
    """One line of a document, with its number and whether it is inside a fenced code block."""

    number: int
    text: str
    in_fence: bool


def lines_of(markdown: str) -> list[Line]:
    lines: list[Line] = []
    fence = ""
    for number, text in enumerate(markdown.splitlines(), start=1):
        opening = FENCE.match(text)
        if fence:
            closes = opening is not None and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence)
            lines.append(Line(number, text, True))
            if closes:
                fence = ""
        elif opening:
            fence = opening.group(1)
            lines.append(Line(number, text, True))
        else:
            lines.append(Line(number, text, False))
    return lines


def heading_text(raw: str) -> str:
    """The text GitHub renders for a heading's source: code spans keep their content, links their text."""
    text = CODE_SPAN.sub(lambda m: m.group(2).strip(), raw)
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    return text.replace("*", "")


def base_slug(text: str) -> str:
    """github-slugger's slug: lower case, every character but letters, digits, marks, ``-``, ``_`` and spaces
    dropped, each space a hyphen."""
    kept = "".join(ch for ch in text.lower() if ch in "-_ " or unicodedata.category(ch)[0] in ("L", "N", "M"))
    return kept.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every anchor a document offers: its headings' slugs (a repeated slug gets ``-1``, ``-2``, … as GitHub does)
    and the ids of inline ``<a id=…>``/``<a name=…>`` elements."""
    found: set[str] = set()
    occurrences: dict[str, int] = {}
    for line in lines_of(markdown):
        if line.in_fence:
            continue
        found.update(HTML_ANCHOR.findall(line.text))
        heading = ATX_HEADING.match(line.text)
        if heading is None:
            continue
        original = slug = base_slug(heading_text(heading.group(2)))
        while slug in occurrences:
            occurrences[original] += 1
            slug = f"{original}-{occurrences[original]}"
        occurrences[slug] = 0
        found.add(slug)
    return found


def links(markdown: str) -> list[tuple[int, str]]:
    """Every link target outside code: inline links and images, reference definitions, HTML hrefs."""
    found: list[tuple[int, str]] = []
    for line in lines_of(markdown):
        if line.in_fence:
            continue
        text = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line.text)
        targets = [m.group(1) for m in INLINE_LINK.finditer(text)] + HTML_HREF.findall(text)
        definition = REFERENCE_DEFINITION.match(text)
        if definition:
            targets.append(definition.group(1))
        found.extend((line.number, target.strip("<>")) for target in targets)
    return found


def link_problem(document: Path, target: str, repo_root: Path) -> str | None:
    """Why a link of ``document`` does not resolve, or None when it does (external links are not followed)."""
    if EXTERNAL.match(target):
        return None
    path_part, _, anchor = target.partition("#")
    resolved = (document.parent / unquote(path_part)).resolve() if path_part else document.resolve()
    if not resolved.is_relative_to(repo_root.resolve()):
        return f"link {target!r} leaves the repository"
    if not resolved.exists():
        return f"link {target!r}: {resolved.relative_to(repo_root.resolve())} does not exist"
    if not anchor:
        return None
    markdown_file = resolved / "README.md" if resolved.is_dir() else resolved
    if markdown_file.suffix.lower() != ".md":
        return None  # an anchor into source (#L12) is GitHub's line anchor, not a heading
    if not markdown_file.is_file():
        return f"link {target!r}: {resolved.name} has no README.md to hold the anchor"
    if unquote(anchor) not in anchors(markdown_file.read_text(encoding="utf-8")):
        return f"link {target!r}: no heading of {markdown_file.name} has the anchor #{anchor}"
    return None


def test_names(source_file: Path) -> set[str]:
    """The names of every function (methods included) and class that ``source_file`` defines."""
    tree = ast.parse(source_file.read_text(encoding="utf-8"))
    return {
        node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    }


def name_matches(cited: str, defined: set[str]) -> bool:
    if cited.endswith(("*", "…")):
        prefix = cited.rstrip("*…")
        return any(name.startswith(prefix) for name in defined)
    return cited in defined


def citation_problems(markdown: str, repo_root: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for line in lines_of(markdown):
        for match in CITED_PATH.finditer(line.text):
            path, names = match.group(1), match.group(2)
            cited = repo_root / path
            if not cited.exists():
                found.append((line.number, f"cited test {path} does not exist"))
            elif names:
                if cited.suffix != ".py" or not cited.is_file():
                    found.append((line.number, f"cited test {match.group(0)}: {path} is not a Python file"))
                    continue
                defined = test_names(cited)
                missing = [name for name in names.split("::") if not name_matches(name, defined)]
                if missing:
                    found.append((line.number, f"cited test {match.group(0)}: {path} defines no {missing[0]}"))
        if line.in_fence:
            continue
        for span in CODE_SPAN.finditer(line.text):
            for bare in BARE_TEST.finditer(span.group(2)):
                name = bare.group(0)
                found.append((line.number, f"test {name!r} cited without its path (write tests/<tier>/…{name})"))
    return found


def document_problems(document: Path, repo_root: Path) -> list[str]:
    """Every broken link and missing cited test of one document, as ``path:line: problem``."""
    markdown = document.read_text(encoding="utf-8")
    name = document.resolve().relative_to(repo_root.resolve())
    problems = [
        (number, problem)
        for number, target in links(markdown)
        if (problem := link_problem(document, target, repo_root)) is not None
    ]
    problems += citation_problems(markdown, repo_root)
    return [f"{name}:{number}: {problem}" for number, problem in sorted(problems)]


def documents(repo_root: Path) -> list[Path]:
    """The documents a reader follows: the README, every page of docs/, the example's README, the changelog."""
    candidates = [repo_root / "README.md", *sorted((repo_root / "docs").glob("*.md"))]
    candidates += [repo_root / "examples" / "subscriber" / "README.md", repo_root / "CHANGELOG.md"]
    return [path for path in candidates if path.is_file()]
