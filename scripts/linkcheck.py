#!/usr/bin/env python3
"""Checks the links of the manual, offline.

  scripts/linkcheck.py [BOOK_DIR]    (default target/book, as `make docs` builds it)

For every page of the rendered book (one per docs/*.md named in
docs/SUMMARY.md) every relative link must resolve:
  - to a page or file of the book, and its #anchor to an id on that page;
  - or, for links that leave the book (`../deploy/...`, `../scripts/...`),
    to a file or directory of the repository, relative to the page's source.
Also: every docs/**/*.md is named in SUMMARY.md (no orphan page), and the
relative links of the top-level README.md resolve (anchors into docs/ pages
checked against the rendered ids).
No network: http(s) and mailto links are not followed.
Exit status 1 with one line per broken link.
"""
import html.parser
import pathlib
import re
import sys
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SKIP_PAGES = {"print.html", "404.html", "toc.html"}


class Page(html.parser.HTMLParser):
    """Ids and the hrefs/srcs of the page's main content."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.links = []  # (line, href)
        self.depth = 0  # inside <main>

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for key in ("id", "name"):
            if a.get(key):
                self.ids.add(a[key])
        if tag == "main":
            self.depth += 1
        if self.depth and tag in ("a", "img"):
            ref = a.get("href") if tag == "a" else a.get("src")
            if ref is not None:
                self.links.append((self.getpos()[0], ref))

    def handle_endtag(self, tag):
        if tag == "main":
            self.depth -= 1


def parse(path):
    p = Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


def external(ref):
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", ref) or ref.startswith("//")


def summary_pages():
    text = (DOCS / "SUMMARY.md").read_text(encoding="utf-8")
    return {m for m in re.findall(r"\]\(([^)]+\.md)\)", text)}


def main():
    book = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "target/book"
    if (book / "html").is_dir():  # several renderers: html/ is ours
        book = book / "html"
    errors = []
    if not (book / "index.html").exists():
        print(f"linkcheck: {book} has no index.html; run `make docs` (mdbook build docs) first", file=sys.stderr)
        return 2

    # Every page of docs/ is in the book.
    listed = summary_pages()
    for md in sorted(DOCS.rglob("*.md")):
        rel = md.relative_to(DOCS).as_posix()
        if rel == "SUMMARY.md":
            continue
        if rel not in listed:
            errors.append(f"docs/{rel}: not in docs/SUMMARY.md (add it, so the page is part of the manual)")

    cache = {}

    def ids_of(html_path):
        if html_path not in cache:
            cache[html_path] = parse(html_path).ids
        return cache[html_path]

    pages = 0
    for page in sorted(book.rglob("*.html")):
        rel = page.relative_to(book).as_posix()
        if rel in SKIP_PAGES:
            continue
        src = DOCS / (rel[: -len(".html")] + ".md")
        if rel == "index.html":  # mdBook renders README.md as index.html
            src = DOCS / "README.md"
        if not src.exists():
            continue  # theme pages
        pages += 1
        parsed = parse(page)
        cache[page] = parsed.ids
        for line, ref in parsed.links:
            if not ref or external(ref):
                continue
            path, _, frag = ref.partition("#")
            path = urllib.parse.unquote(path)
            frag = urllib.parse.unquote(frag)
            where = f"docs/{src.relative_to(DOCS).as_posix()} (rendered {rel}:{line})"
            if not path:
                if frag and frag not in parsed.ids:
                    errors.append(f"{where}: #{frag}: no such anchor on this page")
                continue
            target = (page.parent / path).resolve()
            if target.is_file() and target.suffix == ".html":
                if frag and frag not in ids_of(target):
                    errors.append(f"{where}: {ref}: no anchor #{frag} on {target.relative_to(book.resolve())}")
                continue
            if target.exists():
                continue
            # Leaves the book: resolve against the source tree.
            repo_target = (src.parent / path).resolve()
            if path.endswith(".html") and repo_target.with_suffix(".md").exists():
                errors.append(f"{where}: {ref}: page {repo_target.with_suffix('.md').relative_to(ROOT)} is not in docs/SUMMARY.md")
            elif not repo_target.exists():
                errors.append(f"{where}: {ref}: no such page or file")
    if pages == 0:
        errors.append(f"{book}: no rendered pages found")

    # The top-level README.md (shown by GitHub, not part of the book).
    readme = ROOT / "README.md"
    for n, line in enumerate(readme.read_text(encoding="utf-8").splitlines(), 1):
        for ref in re.findall(r"\]\(([^)\s]+)\)", line):
            if external(ref):
                continue
            path, _, frag = ref.partition("#")
            target = (ROOT / path).resolve() if path else readme
            if not target.exists():
                errors.append(f"README.md:{n}: {ref}: no such file")
                continue
            if frag and target.suffix == ".md" and DOCS in target.parents:
                html_page = book / target.relative_to(DOCS).with_suffix(".html")
                if html_page.exists() and frag not in ids_of(html_page):
                    errors.append(f"README.md:{n}: {ref}: no anchor #{frag}")

    for e in errors:
        print(e)
    print(f"linkcheck: {pages} pages, {len(errors)} broken link(s)", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
