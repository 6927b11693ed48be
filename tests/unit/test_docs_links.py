"""Every relative link of the README and of docs/ resolves, anchors included, and every test a document cites exists.

The checker (``docs_check``) is tested here too, on temporary documents, so that a broken link or a citation of a
test that does not exist is shown to fail it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from .docs_check import anchors, base_slug, document_problems, documents, heading_text

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_documents_checked_include_the_readme_and_every_page_of_docs() -> None:
    checked = {path.relative_to(REPO_ROOT).as_posix() for path in documents(REPO_ROOT)}
    assert {"README.md", "examples/subscriber/README.md"} <= checked
    assert {f"docs/{page.name}" for page in (REPO_ROOT / "docs").glob("*.md")} <= checked


@pytest.mark.parametrize("document", documents(REPO_ROOT), ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_relative_link_resolves_and_every_cited_test_exists(document: Path) -> None:
    assert document_problems(document, REPO_ROOT) == []


# --- the checker itself ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("heading", "slug"),
    [
        ("Found by these tests, and fixed", "found-by-these-tests-and-fixed"),
        ("Sample events and `sam local`", "sample-events-and-sam-local"),
        ("Routing, and who validates what", "routing-and-who-validates-what"),
        ("After the first deploy: the signing secret", "after-the-first-deploy-the-signing-secret"),
        ("`make deploy`", "make-deploy"),
        ("The `event_id` and **replays**", "the-event_id-and-replays"),
        ("Issue 11: before and after", "issue-11-before-and-after"),
        ("[Linked](x.md) heading", "linked-heading"),
        ("Ça marche — vraiment", "ça-marche--vraiment"),
    ],
)
def test_slugs_are_githubs(heading: str, slug: str) -> None:
    assert base_slug(heading_text(heading)) == slug


def test_repeated_headings_get_numbered_anchors_and_code_blocks_hold_none() -> None:
    markdown = '# Tests\n## Tests\n```bash\n# not a heading\n```\n### Tests\n<a id="custom"></a>\n'
    assert anchors(markdown) == {"tests", "tests-1", "tests-2", "custom"}


def write_repo(root: Path, readme: str) -> Path:
    (root / "docs").mkdir()
    (root / "docs" / "topic.md").write_text("# Topic\n\n## A section\n\n## A section\n")
    (root / "tests" / "unit").mkdir(parents=True)
    (root / "tests" / "unit" / "test_thing.py").write_text(
        "def test_thing_works():\n    pass\n\nclass TestGroup:\n    def test_in_a_class(self):\n        pass\n"
    )
    (root / "README.md").write_text(readme)
    return root / "README.md"


def test_links_and_citations_that_resolve_pass(tmp_path: Path) -> None:
    readme = write_repo(
        tmp_path,
        "# Top\n\nSee [the topic](docs/topic.md), [its section](docs/topic.md#a-section), its second "
        "[copy](docs/topic.md#a-section-1), [the top](#top), [a folder](docs/), [AWS](https://aws.amazon.com).\n"
        "Held by `tests/unit/test_thing.py::test_thing_*`, `tests/unit/test_thing.py::TestGroup::test_in_a_class`, "
        "tests/unit/test_thing.py::test_thing_works and `tests/unit`.\n"
        "```\n[not a link](missing.md) in a code block\n```\n`[not a link](missing.md)` in a code span.\n",
    )
    assert document_problems(readme, tmp_path) == []


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[gone](docs/missing.md)", "README.md:3: link 'docs/missing.md': docs/missing.md does not exist"),
        ("[gone](docs/topic.md#no-such-section)", "no heading of topic.md has the anchor #no-such-section"),
        ("[gone](docs/topic.md#a-section-2)", "no heading of topic.md has the anchor #a-section-2"),
        ("[gone](#nowhere)", "no heading of README.md has the anchor #nowhere"),
        ("[ref]: docs/absent.md", "link 'docs/absent.md': docs/absent.md does not exist"),
        ("![image](docs/absent.png)", "docs/absent.png does not exist"),
        ("[out](../../outside.md)", "leaves the repository"),
        ("`tests/unit/test_missing.py`", "cited test tests/unit/test_missing.py does not exist"),
        ("`tests/unit/test_thing.py::test_other_*`", "tests/unit/test_thing.py defines no test_other_*"),
        ("`tests/unit/test_thing.py::test_thing`", "tests/unit/test_thing.py defines no test_thing"),
        ("`test_thing.py::test_thing_works`", "test 'test_thing.py' cited without its path"),
        ("`test_thing_*`", "test 'test_thing_*' cited without its path"),
    ],
)
def test_a_broken_link_or_a_missing_cited_test_fails_the_check(tmp_path: Path, line: str, problem: str) -> None:
    readme = write_repo(tmp_path, f"# Top\n\n{line}\n")
    problems = document_problems(readme, tmp_path)
    assert len(problems) == 1, problems
    assert problems[0].startswith("README.md:3: ")
    assert problem in problems[0]
