"""Field content: loading and checking the Markdown topics in `content/`.

Topics are read once at start-up. A malformed file stops start-up with its
file name and the problem, because an officer must never meet a half-broken
card on a scene. A card over its length budget (content/README.md) fails
`content check` and cannot be signed off, but loads. Full-text search runs on
an in-memory SQLite FTS5 index built from the same topics, so the files stay
the one source of truth.
"""
import dataclasses
import hashlib
import json
import re
import sqlite3
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import click
from flask.cli import AppGroup
import frontmatter
import yaml
from flask import current_app
from markdown_it import MarkdownIt
from sqlite_utils import Database

KINDS = {
    "checklist": "Recognition checklists",
    "prompt": "De-escalation prompts",
    "resources": "Community resources",
    "phrases": "Phrases",
}
# `first:` is read before anything else on a scene: one breath's worth of words.
FIRST_BUDGET = 25
NEEDS_FIRST = ("checklist", "prompt")
# The length budget the content author set (content/README.md, "Length budget"): a checklist or
# prompt is read in about a minute on a scene, counted as first shown, with "More signs" collapsed.
SCENE_WORDS = 250  # first, summary, items and asks, say/do/avoid lines, body above "## More signs"
SCENE_ITEMS = 12  # checklist items, or say + do + avoid lines together
MORE_SIGNS = "## More signs"  # the exact line that opens the collapsed background signs
MORE_SIGNS_BULLETS = 8
MORE_SIGNS_WORDS = 80
# Resources and phrases are lookup lists, not read top to bottom.
LOOKUP_WORDS = {"resources": 600, "phrases": 400}
MAX_PHRASES = 20
# A card's own label above its title, in place of its kind's (a medical-danger prompt is no de-escalation prompt).
KICKER_MAX = 40
# Where a card leaves the agency's law or procedure to the agency: "[Your agency: ...]".
PLACEHOLDER_RE = re.compile(r"\[\s*Your agency\b[^\]]*\]", re.IGNORECASE)
# A heading that was meant to be "## More signs" but is not exactly that line.
NEAR_MORE_SIGNS_RE = re.compile(r"^\s{0,3}#{1,6}\s*more\s+signs\b", re.IGNORECASE)
# The parts of a card a sign-off's history names when a later version changes them.
SECTION_LABELS = {
    "title": "title", "summary": "summary", "first": "first step", "items": "items", "body": "body",
    "more_signs": "More signs", "sources": "sources", "related": "related cards", "settings": "kind and settings",
}
SLUG_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
PHONE_RE = re.compile(r"^\+?[0-9 ()\-]+$")
# Any mention of /reference/<slug>, in a Markdown link or as bare text.
INTERNAL_LINK_RE = re.compile(r"(?<![\w.])/reference/([a-z0-9-]+)")
BANNED_TERMS = ("excited delirium",)

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": True})


class ContentError(Exception):
    """One or more content files are malformed; `problems` lists (file, message)."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__("\n".join(f"{name}: {message}" for name, message in problems))


@dataclasses.dataclass
class Topic:
    """One card of field content."""

    slug: str
    title: str
    kind: str
    summary: str
    sources: list
    body_html: str
    body_text: str  # the whole body, "More signs" included: what search reads
    path: str
    related: list = dataclasses.field(default_factory=list)
    pinned: bool = False
    order: int = 100
    items: list = dataclasses.field(default_factory=list)
    say: list = dataclasses.field(default_factory=list)
    do: list = dataclasses.field(default_factory=list)
    avoid: list = dataclasses.field(default_factory=list)
    entries: list = dataclasses.field(default_factory=list)
    language: str = ""
    phrases: list = dataclasses.field(default_factory=list)
    # The thing to do before reading on (checklists and prompts).
    first: str = ""
    # A card about the law, which the agency must write for its own state.
    agency_law: bool = False
    # Shipped as a placeholder: the agency has not filled it in yet.
    unfilled: bool = False
    # sha256 of the file as served: what a content sign-off vouches for.
    digest: str = ""
    # The label above the title, when the card's kind's label does not fit it.
    kicker: str = ""
    # The body above "## More signs", and the bullets under it (shown collapsed).
    body_main: str = ""
    more_signs: list = dataclasses.field(default_factory=list)
    # What `content check` finds wrong with the card's "More signs" section.
    more_signs_problems: list = dataclasses.field(default_factory=list)
    # A short hash of each part (SECTION_LABELS): a sign-off's history says which parts changed since.
    sections: dict = dataclasses.field(default_factory=dict)

    def words(self):
        """Every word a reader meets on this card, "More signs" included."""
        parts = [self.first, self.summary, self.body_text]
        parts += [i["text"] + " " + i.get("ask", "") for i in self.items]
        parts += self.say + self.do + self.avoid
        parts += [" ".join(str(v) for v in e.values()) for e in self.entries]
        parts += [" ".join(str(v) for v in p.values()) for p in self.phrases]
        return len(" ".join(parts).split())

    def scene_words(self):
        """The words of the card as first shown, "More signs" collapsed: the length budget's count."""
        parts = [self.first, self.summary, self.body_main]
        parts += [i["text"] + " " + i.get("ask", "") for i in self.items]
        parts += self.say + self.do + self.avoid
        return len(" ".join(parts).split())

    def scene_items(self):
        """Checklist items, or say + do + avoid lines together."""
        return len(self.items) + len(self.say) + len(self.do) + len(self.avoid)

    def placeholders(self):
        """Every "[Your agency: ...]" line left on the card, in order, once each."""
        texts = [self.title, self.summary, self.first, self.body_text, *self.say, *self.do, *self.avoid]
        texts += [i["text"] + " " + i.get("ask", "") for i in self.items]
        texts += [" ".join(str(v) for v in e.values()) for e in self.entries]
        texts += [" ".join(str(v) for v in p.values()) for p in self.phrases]
        found = [m.group(0) for text in texts for m in PLACEHOLDER_RE.finditer(text)]
        return list(dict.fromkeys(found))

    def item(self, item_id):
        """Checklist item `item_id` ({id, text, ask?, protective?}), or None."""
        return next((i for i in self.items if i["id"] == item_id), None)


def _item_id(text, taken):
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40].strip("-") or "item"
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    taken.add(candidate)
    return candidate


def _strings(meta, key, problems):
    value = meta.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.append(f"'{key}' must be a list of non-empty strings")
        return []
    return [v.strip() for v in value]


def parse_topic(path):
    """Read one topic file; return (Topic or None, [problems])."""
    path = Path(path)
    problems = []
    slug = path.stem
    if not SLUG_RE.match(slug):
        return None, [f"the file name must be a slug (lowercase letters, digits, hyphens), not {slug!r}"]
    try:
        post = frontmatter.load(path)
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as e:
        return None, [f"the front matter does not parse: {e}".splitlines()[0]]
    meta = post.metadata
    if not meta:
        return None, ["there is no YAML front matter"]
    # `reviewed:` and `reviewer:` from older agency files are ignored: a review is
    # recorded by sign-offs in the app (reference/content_review.py), never claimed in a file.
    for key in ("title", "kind", "summary", "sources"):
        if key not in meta or meta[key] in (None, "", []):
            problems.append(f"missing field '{key}'")
    kind = meta.get("kind")
    if kind is not None and kind not in KINDS:
        problems.append(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    first = meta.get("first")
    if first is not None and not isinstance(first, str):
        problems.append("'first' must be text")
        first = None
    first = (first or "").strip()
    if kind in NEEDS_FIRST and not first:
        problems.append(f"missing field 'first': a {kind} opens with what to do first, in {FIRST_BUDGET} words or fewer")
    elif len(first.split()) > FIRST_BUDGET:
        problems.append(f"'first' has {len(first.split())} words; keep it to {FIRST_BUDGET} or fewer")
    for flag in ("agency_law", "unfilled"):
        if not isinstance(meta.get(flag, False), bool):
            problems.append(f"'{flag}' must be true or false")
    kicker = meta.get("kicker") or ""
    if not isinstance(kicker, str) or "\n" in kicker.strip() or len(kicker.strip()) > KICKER_MAX:
        problems.append(f"'kicker' must be one line of text, {KICKER_MAX} characters or fewer")
        kicker = ""
    kicker = kicker.strip()
    sources = meta.get("sources") or []
    if not isinstance(sources, list):
        problems.append("'sources' must be a list")
        sources = []
    for n, source in enumerate(sources, 1):
        if not isinstance(source, dict) or not all(source.get(k) for k in ("title", "publisher", "year", "url")):
            problems.append(f"source {n} needs title, publisher, year and url")
        elif not str(source["url"]).startswith("https://"):
            problems.append(f"source {n} url must start with https://")
        elif urlsplit(str(source["url"])).path in ("", "/") and not urlsplit(str(source["url"])).query:
            problems.append(f"source {n} url {source['url']} is a site's home page; cite the page that supports this card")
    related = meta.get("related", [])
    if not isinstance(related, list):
        problems.append("'related' must be a list of slugs")
        related = []

    items = []
    taken = set()
    if kind == "checklist":
        raw_items = meta.get("items")
        if not isinstance(raw_items, list) or not raw_items:
            problems.append("a checklist needs at least one item")
            raw_items = []
        for n, item in enumerate(raw_items, 1):
            if isinstance(item, str):
                item = {"text": item}
            if not isinstance(item, dict) or not str(item.get("text") or "").strip():
                problems.append(f"checklist item {n} has no text")
                continue
            entry = {"text": str(item["text"]).strip(), "id": _item_id(str(item["text"]), taken)}
            if item.get("ask"):
                entry["ask"] = str(item["ask"]).strip()
            if not isinstance(item.get("protective", False), bool):
                problems.append(f"checklist item {n}: 'protective' must be true or false")
            elif item.get("protective"):
                # A protective sign (a reason to live, support nearby) is sent apart from the risks.
                entry["protective"] = True
            items.append(entry)
    say = _strings(meta, "say", problems)
    do = _strings(meta, "do", problems)
    avoid = _strings(meta, "avoid", problems)
    if kind == "prompt" and not (say or do or avoid):
        problems.append("a prompt card needs at least one of 'say', 'do' or 'avoid'")

    entries = []
    if kind == "resources":
        raw_entries = meta.get("entries")
        if not isinstance(raw_entries, list) or not raw_entries:
            problems.append("a resources file needs at least one entry")
            raw_entries = []
        for n, entry in enumerate(raw_entries, 1):
            if not isinstance(entry, dict):
                problems.append(f"resource {n} must be a mapping")
                continue
            for key in ("name", "phone", "hours", "takes", "scope"):
                if not entry.get(key):
                    problems.append(f"resource {n} is missing '{key}'")
            phone = str(entry.get("phone", ""))
            digits = re.sub(r"\D", "", phone)
            if phone and (not PHONE_RE.match(phone) or not 3 <= len(digits) <= 15):
                problems.append(f"resource {n} has a malformed phone number {phone!r}")
            if entry.get("scope") not in (None, "national", "example"):
                problems.append(f"resource {n} scope must be 'national' or 'example'")
            entries.append({k: str(v) for k, v in entry.items()} | {"tel": "+" + digits if phone.startswith("+") else digits})

    phrases = []
    if kind == "phrases":
        raw_phrases = meta.get("phrases")
        if not isinstance(raw_phrases, list) or not raw_phrases:
            problems.append("a phrases card needs at least one phrase")
            raw_phrases = []
        for n, phrase in enumerate(raw_phrases, 1):
            if not isinstance(phrase, dict) or not all(phrase.get(k) for k in ("text", "say", "means")):
                problems.append(f"phrase {n} needs text, say and means")
            else:
                phrases.append({k: str(phrase[k]) for k in ("text", "say", "means")})

    body = post.content.strip()
    body_main, more_text, more_signs, more_signs_problems = split_more_signs(body)
    lowered = (body + " " + str(meta)).lower()
    for term in BANNED_TERMS:
        if term in lowered:
            problems.append(f"uses the term {term!r}, which we do not use")
    if problems:
        return None, problems
    topic = Topic(
        slug=slug,
        title=str(meta["title"]).strip(),
        kind=kind,
        summary=str(meta["summary"]).strip(),
        sources=sources,
        body_html=render_body(body_main, more_text),
        body_text=body,
        path=str(path),
        related=[str(r) for r in related],
        pinned=bool(meta.get("pinned", False)),
        order=int(meta.get("order", 100)),
        items=items,
        say=say,
        do=do,
        avoid=avoid,
        entries=entries,
        language=str(meta.get("language", "")),
        phrases=phrases,
        first=first,
        agency_law=meta.get("agency_law", False),
        unfilled=meta.get("unfilled", False),
        digest=hashlib.sha256(path.read_bytes()).hexdigest(),
        kicker=kicker,
        body_main=body_main,
        more_signs=more_signs,
        more_signs_problems=more_signs_problems,
    )
    topic.sections = section_hashes(topic, meta)
    return topic, []


def split_more_signs(body):
    """(body above "## More signs", the section's text, its bullets, [problems]) for one card's body.

    The section starts at the exact line "## More signs" and runs to the end of
    the body. Only a bullet list goes under it: one observable sign a bullet,
    no asks, links or instructions (content/README.md).
    """
    lines = body.splitlines()
    starts = [n for n, line in enumerate(lines) if line.rstrip() == MORE_SIGNS]
    problems = [
        f"the heading {line.strip()!r} must be exactly {MORE_SIGNS!r} to be shown collapsed"
        for line in lines if NEAR_MORE_SIGNS_RE.match(line) and line.rstrip() != MORE_SIGNS
    ]
    if not starts:
        return body, "", [], problems
    if len(starts) > 1:
        problems.append(f"{MORE_SIGNS!r} appears {len(starts)} times; a card has one, at the end of its body")
    main = "\n".join(lines[:starts[0]]).strip()
    bullets = []
    for line in lines[starts[0] + 1:]:
        if not line.strip() or line.rstrip() == MORE_SIGNS:
            continue
        if re.match(r"^[-*+] \S", line):
            bullets.append(line[2:].strip())
        elif line.startswith((" ", "\t")) and bullets:
            bullets[-1] += " " + line.strip()  # a bullet's text wrapped onto the next line
        else:
            problems.append(f"under {MORE_SIGNS!r} goes only a bullet list, one sign a bullet: {line.strip()[:60]!r}")
    if not bullets:
        problems.append(f"{MORE_SIGNS!r} has no bullets under it")
    for bullet in bullets:
        if "](" in bullet or "/reference/" in bullet or "http" in bullet.lower():
            problems.append(f"no links under {MORE_SIGNS!r} (a sign that needs one is a checklist item): {bullet[:60]!r}")
        if re.search(r"\bask\b\s*[:\"“]", bullet, re.IGNORECASE):
            problems.append(f"no asks under {MORE_SIGNS!r} (a sign that needs an ask is a checklist item): {bullet[:60]!r}")
    if len(bullets) > MORE_SIGNS_BULLETS:
        problems.append(f"{MORE_SIGNS!r} has {len(bullets)} bullets; keep it to {MORE_SIGNS_BULLETS} or fewer")
    words = len(" ".join(bullets).split())
    if words > MORE_SIGNS_WORDS:
        problems.append(f"{MORE_SIGNS!r} has {words} words; keep it to {MORE_SIGNS_WORDS} or fewer")
    more_text = "\n".join(line for line in lines[starts[0] + 1:] if line.rstrip() != MORE_SIGNS).strip()
    return main, more_text, bullets, problems


def render_body(main, more_text):
    """The body's HTML: the text above "More signs", then that section collapsed in a <details>.

    Background signs round out the picture without changing what the officer
    does next, so they wait behind one tap and the card stays short on a scene.
    """
    html = _markdown.render(main)
    if more_text:
        html += f'<details class="more-signs"><summary>More signs</summary>\n{_markdown.render(more_text)}</details>\n'
    return html


def section_hashes(topic, meta):
    """A short hash of each part of the card (SECTION_LABELS), to say which parts a new version changed."""
    parts = {
        "title": topic.title,
        "summary": topic.summary,
        "first": topic.first,
        "items": [topic.items, topic.say, topic.do, topic.avoid, topic.entries, topic.phrases],
        "body": topic.body_main,
        "more_signs": topic.more_signs,
        "sources": topic.sources,
        "related": topic.related,
        "settings": {k: meta.get(k) for k in ("kind", "kicker", "pinned", "order", "agency_law", "unfilled", "language")},
    }
    return {
        name: hashlib.sha256(json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()).hexdigest()[:16]
        for name, value in parts.items()
    }


def budget_problems(topic):
    """What puts one loaded card over its length budget or breaks the "More signs" rules, as messages.

    `content check` fails on these and a card with any cannot be signed off,
    but the card still loads: an agency's long card must never take the
    reference down after an upgrade (a malformed card does stop start-up).
    """
    problems = list(topic.more_signs_problems)
    if topic.kind in NEEDS_FIRST:
        words, items = topic.scene_words(), topic.scene_items()
        if words > SCENE_WORDS:
            problems.append(f"{words} words above {MORE_SIGNS!r} is over the {SCENE_WORDS}-word budget for a"
                            f" {topic.kind}; cut, or move background signs under {MORE_SIGNS!r}")
        if items > SCENE_ITEMS:
            what = "checklist items" if topic.kind == "checklist" else "say, do and avoid lines"
            problems.append(f"{items} {what} is over the budget of {SCENE_ITEMS}")
    else:
        if topic.words() > LOOKUP_WORDS[topic.kind]:
            problems.append(f"{topic.words()} words is over the {LOOKUP_WORDS[topic.kind]}-word budget for {topic.kind}")
        if len(topic.phrases) > MAX_PHRASES:
            problems.append(f"{len(topic.phrases)} phrases is over the budget of {MAX_PHRASES}")
    return problems


def check_problems(topics):
    """(file, message) for every loaded card over its budget or breaking the "More signs" rules."""
    return [(t.path, m) for t in sorted(topics.values(), key=lambda t: t.slug) for m in budget_problems(t)]


def content_dirs(app):
    """Our content folder first, then the agency's own folders, which override ours."""
    dirs = [Path(app.config["CONTENT_DIR"])]
    extra = app.config.get("CONTENT_DIRS") or ""
    if isinstance(extra, str):
        extra = [d for d in extra.split(":") if d]
    return dirs + [Path(d) for d in extra]


def load_topics(dirs):
    """Load every topic under `dirs`; raise ContentError listing every problem found."""
    topics, problems = {}, []
    for directory in dirs:
        if not directory.is_dir():
            problems.append((str(directory), "content folder not found"))
            continue
        for path in sorted(directory.glob("*.md")):
            if path.name.lower() == "readme.md":
                continue
            topic, file_problems = parse_topic(path)
            problems += [(str(path), p) for p in file_problems]
            if topic:
                topics[topic.slug] = topic
    for topic in topics.values():
        for target in topic.related:
            if target not in topics:
                problems.append((topic.path, f"related topic {target!r} does not exist"))
        for target in INTERNAL_LINK_RE.findall(topic.body_text):
            if target and target not in topics:
                problems.append((topic.path, f"broken internal link /reference/{target}"))
    if problems:
        raise ContentError(problems)
    return topics


def warnings(topics):
    """(file, message) for each card that loads but is not ready for the field: the check prints them and passes."""
    return [
        (t.path, "not filled in: your agency must write this card and add it through FIELDAPP_CONTENT_DIRS")
        for t in sorted(topics.values(), key=lambda t: t.slug)
        if t.unfilled
    ]


class Library:
    """The loaded topics, their search index and a hash that versions them."""

    def __init__(self, topics):
        self.topics = topics
        self.version = hashlib.sha256(
            "".join(Path(t.path).read_text(encoding="utf-8") for t in sorted(topics.values(), key=lambda t: t.slug)).encode()
        ).hexdigest()[:12]
        # An in-memory FTS5 index: content is read-only while the process runs.
        self._lock = threading.Lock()
        self._index = Database(sqlite3.connect(":memory:", check_same_thread=False))
        table = self._index["topics"]
        table.create({"slug": str, "title": str, "kind": str, "summary": str, "text": str}, pk="slug")
        table.insert_all(
            (
                {
                    "slug": t.slug,
                    "title": t.title,
                    "kind": t.kind,
                    "summary": t.summary,
                    "text": " ".join([t.first, t.body_text] + [i["text"] + " " + i.get("ask", "") for i in t.items] + t.say + t.do + t.avoid),
                }
                for t in topics.values()
            ),
        )
        table.enable_fts(["title", "summary", "text"], tokenize="porter", create_triggers=False)

    def get(self, slug):
        """The topic called `slug`, or None."""
        return self.topics.get(slug)

    def by_kind(self):
        """[(kind, label, [topics])] in display order, skipping empty kinds."""
        groups = []
        for kind, label in KINDS.items():
            members = sorted((t for t in self.topics.values() if t.kind == kind), key=lambda t: (t.order, t.title))
            if members:
                groups.append((kind, label, members))
        return groups

    def pinned(self):
        """Topics flagged for the officer's home screen."""
        return sorted((t for t in self.topics.values() if t.pinned), key=lambda t: (t.order, t.title))

    def search(self, query, limit=20):
        """Topics matching `query`, best first; words are matched as prefixes."""
        words = re.findall(r"\w+", query.lower())
        if not words:
            return []
        # Quote every word so user input can never be FTS5 syntax.
        fts_query = " ".join(f'"{w}"*' for w in words)
        with self._lock:
            rows = list(self._index["topics"].search(fts_query, columns=["slug"], limit=limit))
        return [self.topics[r["slug"]] for r in rows]


def get_library():
    """The running app's content library."""
    return current_app.extensions["fieldapp.content"]


@click.group("content", cls=AppGroup)
def content_cli():
    """Field content commands."""


@content_cli.command("check")
def content_check():
    """Validate every content file (ours and the agency's) without serving."""
    try:
        topics = load_topics(content_dirs(current_app))
    except ContentError as e:
        for name, message in e.problems:
            click.echo(f"{name}: {message}", err=True)
        raise click.ClickException(f"{len(e.problems)} problem(s) in the content.")
    for name, message in warnings(topics):
        click.echo(f"warning: {name}: {message}", err=True)
    problems = check_problems(topics)
    if problems:
        for name, message in problems:
            click.echo(f"{name}: {message}", err=True)
        raise click.ClickException(f"{len(problems)} problem(s) in the content.")
    click.echo(f"{len(topics)} topics OK.")


def init_app(app):
    """Load and check the content; a bad file stops start-up here."""
    app.cli.add_command(content_cli)
    try:
        topics = load_topics(content_dirs(app))
    except ContentError as e:
        # `flask content check` must still get to run and list the problems;
        # Flask's CLI builds the app before it knows which command it runs.
        if sys.argv[-2:] == ["content", "check"]:
            app.logger.error("Content problems:\n%s", e)
            topics = {}
        else:
            raise
    for name, message in warnings(topics):
        app.logger.warning("%s: %s", name, message)
    for name, message in check_problems(topics):
        app.logger.error("%s: %s (content check fails: the card is served, and cannot be signed off)", name, message)
    app.extensions["fieldapp.content"] = Library(topics)
