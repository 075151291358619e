"""The documentation stands on its own: no server needed.

* Every relative link in README.md, docs/*.md, bench/README.md and
  test/e2e/README.md points at a file or directory inside the repository,
  and a link's #anchor names a heading of the linked Markdown file.
* Every `docs/<page>.md#anchor` cited by a comment anywhere in the
  repository (src/, lua/, test/, conf/, bench/, the Makefile) resolves the
  same way, so a citation cannot outlive the section it names.
* No file depends on a specification outside the repository: none mentions
  the name of the spec dtmd was first written from, nor a path into
  the directory beside the repository it came from.
* docs/configuration.md lists exactly the keys of src/config_keys.c's table.
* README.md stays a front page (under 10 KB).

The checker itself is tested on a made-up tree, so a checker that cannot
find a dangling link fails here too.
"""

import os
import re
import subprocess
from pathlib import Path

from dtmtest import REPO

DOCS = ["README.md", "bench/README.md", "test/e2e/README.md"] + sorted(
    str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))

# Spelled in two parts so that this file does not mention them itself.
FORBIDDEN = ["PROTOCOL" + ".md", "../" + "shared"]

FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
CITATION = re.compile(r"\bdocs/([A-Za-z0-9_-]+\.md)(#[A-Za-z0-9_-]+)?")


def prose_lines(text):
    """The lines of a Markdown text outside fenced and indented code blocks,
    with inline code spans blanked: (line number, line)."""
    in_fence = False
    prev_blank = True
    in_indented = False
    for n, line in enumerate(text.splitlines(), 1):
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        blank = not line.strip()
        if line.startswith("    ") and (prev_blank or in_indented):
            in_indented = True
            prev_blank = blank
            continue
        if not blank:
            in_indented = False
        prev_blank = blank
        yield n, INLINE_CODE.sub(lambda m: " " * len(m.group(0)), line)


def slug(heading):
    """GitHub's anchor of a heading: link text kept, Markdown punctuation and
    everything but letters, digits, spaces, '-' and '_' dropped, spaces -> '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = text.strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(path):
    """Every anchor the headings of a Markdown file define."""
    seen = {}
    out = set()
    in_fence = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if FENCE.match(line):
            in_fence = not in_fence
            continue
        m = None if in_fence else HEADING.match(line)
        if not m:
            continue
        s = slug(m.group(2))
        k = seen.get(s, 0)
        seen[s] = k + 1
        out.add(s if k == 0 else "%s-%d" % (s, k))
    return out


def links(path):
    """(line number, target) of every inline link, image and reference
    definition in a Markdown file."""
    for n, line in prose_lines(path.read_text(encoding="utf-8")):
        for m in LINK.finditer(line):
            yield n, m.group(1)
        m = REF_DEF.match(line)
        if m:
            yield n, m.group(1)


def check_target(root, base, target):
    """Why target (relative to directory base) does not resolve inside root,
    or None when it does. External and mail links are not followed."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target):
        return None
    path_part, _, anchor = target.partition("#")
    root = Path(root).resolve()
    dest = (base / path_part).resolve() if path_part else None
    if dest is not None:
        if dest != root and root not in dest.parents:
            return "points outside the repository"
        if not dest.exists():
            return "no such file"
    if anchor:
        page = dest if dest is not None else None
        if page is None:
            return "anchor without a page"
        if page.is_file() and page.suffix == ".md" and anchor not in anchors(page):
            return "no heading #%s in %s" % (anchor, page.relative_to(root))
    return None


def dangling_links(root, files):
    """Every link of the given Markdown files (relative to root) that does not
    resolve: ["file:line: target (why)"]."""
    root = Path(root)
    bad = []
    for rel in files:
        path = root / rel
        for n, target in links(path):
            if target.startswith("#"):
                target = path.name + target
            why = check_target(root, path.parent, target)
            if why:
                bad.append("%s:%d: %s (%s)" % (rel, n, target, why))
    return bad


def repo_files():
    """The repository's files: tracked ones and new ones not ignored."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=str(REPO), capture_output=True, check=True).stdout
        names = [n for n in out.decode().split("\0") if n]
    except (OSError, subprocess.CalledProcessError):
        names = []
        for d, dirs, files in os.walk(REPO):
            dirs[:] = [x for x in dirs if not x.startswith(".") and not x.startswith("build")]
            names += [os.path.relpath(os.path.join(d, f), REPO) for f in files]
    return [n for n in names if (REPO / n).is_file()]


def text_of(name):
    data = (REPO / name).read_bytes()
    if b"\0" in data[:8192]:
        return None
    return data.decode("utf-8", "replace")


# --------------------------------------------------------------------------

def test_every_doc_link_resolves():
    assert len(DOCS) >= 10, DOCS
    bad = dangling_links(REPO, DOCS)
    assert not bad, "dangling links:\n" + "\n".join(bad)


def test_every_docs_citation_in_the_repository_resolves():
    bad = []
    for name in repo_files():
        if name.endswith(".md") and name in DOCS:
            continue  # checked as links above
        text = text_of(name)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            for m in CITATION.finditer(line):
                page, anchor = m.group(1), m.group(2)
                why = check_target(REPO, REPO / "docs", page + (anchor or ""))
                if why:
                    bad.append("%s:%d: docs/%s%s (%s)" % (name, n, page, anchor or "", why))
    assert not bad, "citations of docs/ that do not resolve:\n" + "\n".join(bad)


def test_no_file_depends_on_a_spec_outside_the_repository():
    bad = []
    for name in repo_files():
        text = text_of(name)
        if text is None:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            for word in FORBIDDEN:
                if word in line:
                    bad.append("%s:%d: %s" % (name, n, line.strip()[:120]))
    assert not bad, "files citing a document outside the repository:\n" + "\n".join(bad)


def test_configuration_doc_lists_exactly_the_config_table():
    src = (REPO / "src" / "config_keys.c").read_text()
    table = src[src.index("keys[] = {"):]
    table = table[:table.index("};")]
    keys = set(re.findall(r'^\s*\{"([A-Za-z][A-Za-z.]*)",\s*K_', table, re.M))
    assert len(keys) > 30, keys
    documented = set()
    for line in (REPO / "docs" / "configuration.md").read_text().splitlines():
        if line.startswith("| `"):
            first = line.split("|")[1]
            documented |= set(re.findall(r"`([A-Z][A-Za-z.]*)`", first))
    assert keys - documented == set(), "keys of src/config_keys.c missing from docs/configuration.md"
    assert documented - keys == set(), "docs/configuration.md lists keys src/config_keys.c does not have"


def test_readme_is_a_front_page():
    size = (REPO / "README.md").stat().st_size
    assert size < 10 * 1024, "README.md is %d bytes; move details to docs/" % size


def test_checker_finds_dangling_links(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text(
        "# Page A\n\n## Some `code` section\n\n"
        "[ok](b.md) [ok](b.md#the-b-part) [ok](#some-code-section) [web](https://x.invalid/y)\n"
        "[gone](missing.md) [bad anchor](b.md#nope) [out](../../etc/passwd)\n"
        "`[in code](missing-too.md)`\n\n    [indented code](missing-three.md)\n\n"
        "```\n[fenced](missing-four.md)\n```\n[ref]: gone-ref.md\n")
    (tmp_path / "docs" / "b.md").write_text("# B\n\n## The B part\n")
    bad = dangling_links(tmp_path, [os.path.join("docs", "a.md")])
    assert len(bad) == 4, bad
    assert any("missing.md" in b and "no such file" in b for b in bad), bad
    assert any("b.md#nope" in b for b in bad), bad
    assert any("../../etc/passwd" in b and "outside" in b for b in bad), bad
    assert any("gone-ref.md" in b for b in bad), bad
