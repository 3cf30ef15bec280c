"""Global search (DESIGN.md §1 search row, §6): one index fed by record events.

Apps write no indexing code. A resource that declares `search=(fields…)` is indexed: its
`title_field` (or first search field) becomes the hit's title, weighted above the other
search fields (the body). The index (`kernel_search`, kernel/models.py) is kept by an event
subscriber per searchable entity (`nexus.{app}.{entity}.*`): whatever the verb, it re-reads
the record in the event's org and upserts its entry, or removes it when the record is
deleted (soft or hard), so replays and reordering cannot leave it stale. `nexus search
reindex` rebuilds everything from the tables.

Back ends, created by the kernel migration 2b010160e693:
* SQLite: FTS5 over (title, body, scope), external content, unicode61 with diacritics folded,
  2/3-letter prefix indexes; bm25 with the title weighted 10:1; snippet()/highlight(). An
  entry's rowid is org code | sequence | type code | public bit (kernel_search_code holds the
  codes), so an org's entries are one rowid range (FTS5 seeks to it; a trigger refuses an id
  outside it), newest last, and hits are counted per type from rowids without reading rows.
* PostgreSQL: a `tsv` column — title (weight A) and body (B) folded here exactly as queries
  are (case, diacritics, word splitting), plus scope lexemes (`_o<org>`, `_apub`, …) that no
  query word can spell — GIN-indexed; ts_rank; ts_headline.

Who finds what. A query matches only entries of the caller's org, of the types the caller may
read (the API's one permission check, kernel.permissions.has_permission, per searchable
resource), and either public (`apub`: everyone who may read the resource) or naming one of the
caller's access tokens — all inside the index query, before ranking and paging, so a page
never holds a hit its reader could not open and never comes out short for having dropped one.

Record-level visibility (extension point): a Resource may carry
`search_visibility = fn(record) -> Iterable[str] | None`, returning None (the default: everyone
who may read the resource) or tokens `user:<user id>` / `role:<role name>` naming who may find
that record. The entry is re-scoped on every event of the record.

Queries. The words of `q` are extracted (as the index splits text) and quoted, so FTS5 and
tsquery syntax from users is never interpreted; all must match and the last is a prefix
(type-ahead) once it has two letters. Work per query is bounded whatever the index size: the
newest RANK_CANDIDATES matches are ranked (all of them, below that), and facets and `total`
count at most COUNT_CAP matches on SQLite, PG_CANDIDATES on PostgreSQL (`total_exact` is false
beyond, as with Elasticsearch's track_total_hits). On PostgreSQL, counting means visiting heap
rows; on SQLite it reads rowids only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import html
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from nexus.kernel.context import Principal
from nexus.kernel.errors import bad_request
from nexus.kernel.http.crud import query_params
from nexus.kernel.http.routing import RouteDef
from nexus.kernel.jsonutil import dumps, iso, utcnow
from nexus.kernel.permissions import has_permission
from nexus.kernel.records import UnitOfWork

if TYPE_CHECKING:
    from nexus.kernel.config import Settings
    from nexus.kernel.db import Conn, Database
    from nexus.kernel.http.app import Nexus
    from nexus.kernel.resources import Resource

MAX_Q = 200  # characters of q
MAX_TERMS = 16  # distinct words used from q; the rest are ignored
MAX_LIMIT = 100
DEFAULT_LIMIT = 20
RANK_CANDIDATES = 1000  # a broad query ranks its newest matches (benchmarks/search.py: p95 vs depth)
MAX_OFFSET = RANK_CANDIDATES  # paging ends with the ranked candidates; refine the query beyond
COUNT_CAP = 10_000  # SQLite: facets and total count at most this many matches
PG_CANDIDATES = RANK_CANDIDATES  # PostgreSQL: the newest matches that facets count and ranking ranks
TITLE_MAX = 1_000  # characters indexed and shown
BODY_MAX = 32_000
SNIPPET_WORDS = 24
BM25 = "bm25(kernel_search_fts, 10.0, 1.0, 0.0)"  # title, body, scope
PG_WEIGHTS = "{0.1, 0.2, 0.2, 1.0}"  # ts_rank weights for D, C, B (body), A (title)
PG_CONFIG = "simple"  # text is folded here, so no language stemming: the same on both back ends
# SQLite entry ids: org code (20 bits) | sequence in the org (28) | type code (14) | public (1)
PUBLIC_BIT = 1
TYPE_SHIFT, TYPE_MASK = 1, (1 << 14) - 1
SEQ_SHIFT = 15
ORG_SHIFT = 43  # also in the migration's tenancy guard
ORG_CODES = (1 << 20) - 1
PUBLIC = "apub"
OPEN, CLOSE = "\ue000", "\ue001"  # highlight sentinels, replaced by <mark> after HTML escaping
# ts_headline drops what its parser takes for XML tags and entities: it sees these stand-ins.
LT, AMP = "\ue002", "\ue003"
_STRIP = str.maketrans({OPEN: " ", CLOSE: " ", LT: " ", AMP: " ", "\x00": " "})
_UNHIDE = str.maketrans({LT: "<", AMP: "&"})
_WORD = re.compile(r"[^\W_]+")
PARAMS = frozenset({"q", "app", "type", "limit", "cursor"})

Visibility = Callable[[dict[str, Any]], Iterable[str] | None]


# -- text ---------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Lower case, compatibility forms and no diacritics: `Café ﬁle` → `cafe file`."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The words of a text as the index sees them (the FTS5 unicode61 tokenizer's rules)."""
    return _WORD.findall(fold(text))


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return " ".join(_as_text(v) for v in value)
    if isinstance(value, dict):
        return " ".join(_as_text(v) for v in value.values())
    return str(value)


def marked_html(text: str) -> str:
    """Highlight sentinels → <mark>…</mark>; everything else HTML-escaped."""
    return html.escape(text.translate(_UNHIDE)).replace(OPEN, "<mark>").replace(CLOSE, "</mark>")


def _token(prefix: str, value: str) -> str:
    v = value.lower()
    if v.isascii() and v.isalnum() and len(v) <= 40:
        return prefix + v
    return prefix + hashlib.sha256(value.encode()).hexdigest()[:24]


def org_token(org_id: str) -> str:
    return _token("o", org_id)


def access_token(name: str) -> str:
    """`user:<id>` / `role:<name>` (what search_visibility returns) as an index token."""
    kind, _, value = name.partition(":")
    if kind == "user":
        return _token("u", value)
    if kind == "role":
        return "r" + hashlib.sha256(value.encode()).hexdigest()[:24]
    return "x" + hashlib.sha256(name.encode()).hexdigest()[:24]


def scope_of(visible_to: Iterable[str] | None) -> str:
    """An entry's access tokens: `apub`, or those of whom search_visibility named."""
    if visible_to is None:
        return PUBLIC
    return " ".join(sorted({access_token(t) for t in visible_to}))


def tokens_of(p: Principal) -> list[str]:
    """The access tokens a caller holds besides `apub`: their user and roles."""
    return [access_token(f"user:{p.user_id}"), *(access_token(f"role:{r}") for r in p.roles)]


@dataclass(frozen=True, slots=True)
class Query:
    terms: tuple[str, ...]  # folded words, distinct, in order
    prefix: bool  # the last term is a prefix

    @classmethod
    def parse(cls, raw: str) -> Query:
        seen: dict[str, None] = {}
        for w in words(raw):
            seen.setdefault(w, None)
        terms = tuple(seen)[:MAX_TERMS]
        # Type-ahead: the word being typed is a prefix once it has two letters (a one-letter
        # prefix would match most of the index and rank nothing usefully).
        return cls(terms, bool(terms) and len(terms[-1]) >= 2)

    def fts5(self) -> str:
        """The terms as an FTS5 expression on title and body: every term a quoted string
        (never FTS5 syntax), all required."""
        parts = [f'"{t}"' for t in self.terms]
        if self.prefix:
            parts[-1] += "*"
        return "{title body} : (" + " ".join(parts) + ")"

    def tsquery(self) -> str:
        """A to_tsquery() input: quoted lexemes joined by &, the last with :* when a prefix."""
        parts = [f"'{t}'" for t in self.terms]
        if self.prefix:
            parts[-1] += ":*"
        return " & ".join(parts)


def pg_scope_query(org_id: str, tokens: Sequence[str]) -> str:
    """The scope part of a PostgreSQL match, a tsquery literal. Scope lexemes start with `_`,
    which no word of a query can (words never hold `_`)."""
    return f"'_{org_token(org_id)}' & ( " + " | ".join(f"'_{t}'" for t in (PUBLIC, *tokens)) + " )"


# -- the index ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Entry:
    org_id: str
    app: str
    resource: str
    record_id: str
    scope: str
    updated_at: Any  # the driver's timestamp value
    title: str
    body: str

    @property
    def type(self) -> str:
        return f"{self.app}.{self.resource}"


_COLS = "org_id, app, resource, record_id, scope, updated_at, title, body"
_SET = ("scope = excluded.scope, updated_at = excluded.updated_at, title = excluded.title,"
        " body = excluded.body")
# SQLite: the id is the org's next sequence number (max in the org's range + 1) with the type
# code and public bit below it; an update keeps the sequence and type, and takes the new bit.
SQLITE_UPSERT = (
    f"INSERT INTO kernel_search (id, {_COLS}) VALUES ("
    f"((((SELECT coalesce(max(id), ?) FROM kernel_search WHERE id BETWEEN ? AND ?) >> {SEQ_SHIFT}) + 1)"
    f" << {SEQ_SHIFT}) | ?, ?,?,?,?,?,?,?,?)"
    " ON CONFLICT (org_id, app, resource, record_id) DO UPDATE SET"
    f" id = (kernel_search.id & ~{PUBLIC_BIT}) | (excluded.id & {PUBLIC_BIT}), {_SET}")
PG_UPSERT = (
    f"INSERT INTO kernel_search ({_COLS}, tsv) VALUES (?,?,?,?,?,?,?,?,"
    f" setweight(to_tsvector('{PG_CONFIG}', ?), 'A') || setweight(to_tsvector('{PG_CONFIG}', ?), 'B')"
    " || array_to_tsvector(?::text[]))"
    f" ON CONFLICT (org_id, app, resource, record_id) DO UPDATE SET {_SET}, tsv = excluded.tsv")
DELETE_ONE = "DELETE FROM kernel_search WHERE org_id = ? AND app = ? AND resource = ? AND record_id = ?"


def org_range(org_code: int) -> tuple[int, int]:
    """The first and last id of an org's entries (SQLite)."""
    return org_code << ORG_SHIFT, ((org_code + 1) << ORG_SHIFT) - 1


class SearchIndex:
    """The index of one process's loaded resources, its writer and its query path."""

    def __init__(self, nx: Nexus) -> None:
        self.nx = nx
        self.db: Database = nx.db
        self.resources: dict[str, Resource] = {
            k: r for k, r in nx.all_resources.items() if r.search and r.spec.tenant}
        self.by_entity: dict[str, Resource] = {f"nexus.{r.app}.{r.entity}": r for r in self.resources.values()}
        # SQLite: codes of types ("app.resource") and orgs, from kernel_search_code
        self.type_codes: dict[str, int] = {}
        self.type_names: dict[int, str] = {}
        self.org_codes: dict[str, int] = {}
        self._readable: dict[frozenset[str], dict[str, tuple[str, ...]]] = {}

    # -- codes (SQLite) -----------------------------------------------------------------
    async def _code(self, conn: Conn, kind: str, name: str, *, create: bool) -> int | None:
        sql = "SELECT code FROM kernel_search_code WHERE kind = ? AND name = ?"
        code = await conn.fetchval(sql, [kind, name])
        if code is None and create:
            await conn.execute("INSERT INTO kernel_search_code (kind, name, code) SELECT ?, ?, coalesce(max(code), 0)"
                               " + 1 FROM kernel_search_code WHERE kind = ? ON CONFLICT (kind, name) DO NOTHING",
                               [kind, name, kind])
            code = await conn.fetchval(sql, [kind, name])
            limit = ORG_CODES if kind == "org" else TYPE_MASK
            if code is not None and code > limit:
                raise RuntimeError(f"the search index holds at most {limit} {kind}s on SQLite")
        return None if code is None else int(code)

    async def _load_types(self, conn: Conn) -> None:
        rows = await conn.fetch("SELECT name, code FROM kernel_search_code WHERE kind = 'type'")
        self.type_codes = {name: int(code) for name, code in rows}
        self.type_names = {c: n for n, c in self.type_codes.items()}

    async def register_types(self, conn: Conn) -> None:
        """Give every searchable resource a code (inside the caller's write transaction)."""
        if self.db.dialect != "sqlite" or all(k in self.type_codes for k in self.resources):
            return
        for key in self.resources:
            await self._code(conn, "type", key, create=True)
        await self._load_types(conn)

    async def org_code(self, conn: Conn, org_id: str, *, create: bool) -> int | None:
        code = self.org_codes.get(org_id)
        if code is None:
            code = await self._code(conn, "org", org_id, create=create)
            if code is not None:
                if len(self.org_codes) > 100_000:
                    self.org_codes.clear()
                self.org_codes[org_id] = code
        return code

    async def startup(self) -> None:
        if self.db.dialect == "sqlite":
            async with self.db.transaction() as conn:
                await self.register_types(conn)

    # -- writing ------------------------------------------------------------------------
    def entry(self, r: Resource, record: dict[str, Any]) -> Entry:
        fields = r.search
        title_field = r.title_field or fields[0]
        title = _as_text(record.get(title_field)).translate(_STRIP).strip()[:TITLE_MAX]
        body = "\n".join(t for t in (_as_text(record.get(f)).translate(_STRIP).strip()
                                     for f in fields if f != title_field) if t)[:BODY_MAX]
        visibility: Visibility | None = getattr(r, "search_visibility", None)
        scope = scope_of(None if visibility is None else visibility(record))
        updated = record.get("updated_at") or utcnow()
        updated = self.db.ts(self.db.read_ts(updated) if isinstance(updated, str) else updated)
        return Entry(str(record["org_id"]), r.app, r.name, str(record["id"]), scope, updated, title, body)

    async def write(self, conn: Conn, entries: Sequence[Entry]) -> None:
        """Upsert entries (in the caller's write transaction)."""
        if not entries:
            return
        rows: list[list[Any]] = []
        if self.db.dialect == "postgresql":
            sql = PG_UPSERT
            for e in entries:
                lexemes = ["_" + org_token(e.org_id), *("_" + t for t in e.scope.split())]
                rows.append([e.org_id, e.app, e.resource, e.record_id, e.scope, e.updated_at, e.title, e.body,
                             " ".join(words(e.title)), " ".join(words(e.body)), lexemes])
        else:
            sql = SQLITE_UPSERT
            await self.register_types(conn)
            for e in entries:
                org = await self.org_code(conn, e.org_id, create=True)
                assert org is not None
                lo, hi = org_range(org)
                low = (self.type_codes[e.type] << TYPE_SHIFT) | (PUBLIC_BIT if e.scope == PUBLIC else 0)
                rows.append([lo, lo, hi, low, e.org_id, e.app, e.resource, e.record_id, e.scope, e.updated_at,
                             e.title, e.body])
        if len(rows) == 1:
            await conn.execute(sql, rows[0])
        else:
            await conn.executemany(sql, rows)

    async def on_event(self, uow: UnitOfWork, event: dict[str, Any]) -> None:
        """Index the record an event is about, as it is now (so order and replays don't matter)."""
        r = self.by_entity.get(event["type"].rpartition(".")[0])
        if r is None:
            return
        data = event.get("data")
        record_id = (data.get("id") if isinstance(data, dict) else None) or event.get("subject")
        if not isinstance(record_id, str):
            return
        record = await uow.get(r.spec, record_id)
        if record is None:  # deleted (soft or hard)
            await uow.conn.execute(DELETE_ONE, [uow.ctx.org_id, r.app, r.name, record_id])
            return
        await self.write(uow.conn, [self.entry(r, record)])

    async def reindex(self, *, batch: int = 500, echo: Callable[[str], None] | None = None) -> dict[str, int]:
        """Rebuild the index from every searchable resource's table, in batches; then drop
        entries whose record is gone and entries of resources that are no longer searchable."""
        db = self.db
        counts: dict[str, int] = {}
        for key, r in self.resources.items():
            spec = r.spec
            live = " AND deleted_at IS NULL" if spec.soft_delete else ""
            sql = f"SELECT {spec.select_list} FROM {spec.name} WHERE id > ?{live} ORDER BY id LIMIT ?"
            last, n = "", 0
            while True:
                async with db.reader() as conn:
                    rows = await conn.fetch(sql, [last, batch])
                if not rows:
                    break
                records = [spec.to_dict(db.dialect, row) for row in rows]
                async with db.transaction() as conn:
                    await self.write(conn, [self.entry(r, rec) for rec in records])
                last = records[-1]["id"]
                n += len(records)
            async with db.transaction() as conn:
                await conn.execute(
                    f"DELETE FROM kernel_search WHERE app = ? AND resource = ? AND NOT EXISTS (SELECT 1 FROM"
                    f" {spec.name} t WHERE t.id = kernel_search.record_id AND t.org_id = kernel_search.org_id{live})",
                    [r.app, r.name])
            counts[key] = n
            if echo:
                echo(f"{key:<32} {n:>9}")
        known, args = _types_clause(_group(self.resources.values()), alias="kernel_search")
        async with db.transaction() as conn:
            await conn.execute(f"DELETE FROM kernel_search WHERE NOT {known}", args)
        return counts

    # -- reading ------------------------------------------------------------------------
    def readable(self, p: Principal) -> dict[str, tuple[str, ...]]:
        """{app: (resource, …)} of the searchable resources p may read."""
        got = self._readable.get(p.permissions)
        if got is None:
            got = _group(r for r in self.resources.values() if has_permission(p, r.permission("read")))
            if len(self._readable) > 4096:
                self._readable.clear()
            self._readable[p.permissions] = got
        return got

    async def search(self, p: Principal, q: str, *, apps: Sequence[str] = (), types: Sequence[str] = (),
                     limit: int = DEFAULT_LIMIT, offset: int = 0) -> dict[str, Any]:
        """Ranked hits for p (arguments already validated): the API's response body without
        next_cursor, plus `more` (whether another page follows)."""
        query = Query.parse(q)
        readable = self.readable(p)
        result: dict[str, Any] = {"items": [], "facets": {"app": {}, "type": {}}, "total": 0,
                                  "total_exact": True, "more": False}
        if not query.terms or not readable:
            return result
        wanted = {a: tuple(n for n in names if (not apps or a in apps) and (not types or f"{a}.{n}" in types))
                  for a, names in readable.items()}
        wanted = {a: names for a, names in wanted.items() if names}
        if self.db.dialect == "postgresql":
            counts, rows, more = await self._pg(query, p, readable, wanted, limit, offset)
        else:
            counts, rows, more = await self._sqlite(query, p, readable, wanted, limit, offset)
        facets_app: dict[str, int] = {}
        total = 0
        for key, n in counts.items():
            app, _, res = key.partition(".")
            facets_app[app] = facets_app.get(app, 0) + n
            if res in wanted.get(app, ()):
                total += n
        items = []
        for app, res, rid, title, updated, score, title_hl, snippet in rows:
            items.append({
                "app": app, "resource": res, "type": f"{app}.{res}", "id": rid, "title": title,
                "title_highlight": marked_html(title_hl or title),
                "snippet": marked_html(snippet) if snippet else marked_html(title_hl or title),
                "score": round(float(score), 6), "path": f"/api/v1/{app}/{res}/{rid}",
                "updated_at": iso(updated) if isinstance(updated, datetime) else updated,
            })
        cap = PG_CANDIDATES if self.db.dialect == "postgresql" else COUNT_CAP
        result.update(items=items, facets={"app": facets_app, "type": dict(sorted(counts.items()))}, total=total,
                      total_exact=sum(counts.values()) < cap, more=more)
        return result

    async def _sqlite(self, query: Query, p: Principal, readable: dict[str, tuple[str, ...]],
                      wanted: dict[str, tuple[str, ...]], limit: int,
                      offset: int) -> tuple[dict[str, int], list[Any], bool]:
        match = query.fts5()
        async with self.db.reader() as conn:
            if any(k not in self.type_codes for k in self.resources):
                await self._load_types(conn)
            org = await self.org_code(conn, p.org_id, create=False)
            if org is None:
                return {}, [], False
            lo, hi = org_range(org)
            # Restricted entries (no public bit) only where one of the caller's tokens is in scope.
            access = " OR ".join(f'"{t}"' for t in tokens_of(p))
            acl = (f" AND ((rowid & {PUBLIC_BIT}) = {PUBLIC_BIT} OR rowid IN (SELECT rowid FROM kernel_search_fts"
                   " WHERE kernel_search_fts MATCH ? AND rowid BETWEEN ? AND ?))")
            acl_args = [f"scope : ({access})", lo, hi]

            def of_types(keys: dict[str, tuple[str, ...]]) -> tuple[str, list[int]]:
                codes = sorted(self.type_codes[f"{a}.{n}"] for a, names in keys.items() for n in names
                               if f"{a}.{n}" in self.type_codes)
                return f" AND ((rowid >> {TYPE_SHIFT}) & {TYPE_MASK}) IN ({','.join('?' * len(codes))})", codes

            # Matches per type, read from rowids alone (of the newest COUNT_CAP).
            readable_sql, readable_codes = of_types(readable)
            counted = await conn.fetch(
                f"SELECT code, count(*) FROM (SELECT (rowid >> {TYPE_SHIFT}) & {TYPE_MASK} AS code"
                " FROM kernel_search_fts WHERE kernel_search_fts MATCH ? AND rowid BETWEEN ? AND ?"
                f"{readable_sql}{acl} ORDER BY rowid DESC LIMIT ?) GROUP BY code",
                [match, lo, hi, *readable_codes, *acl_args, COUNT_CAP])
            counts = {self.type_names[code]: n for code, n in counted if code in self.type_names}
            wanted_sql, wanted_codes = of_types(wanted)
            if not any(self.type_names.get(c) in counts for c in wanted_codes):
                return counts, [], False
            # Rank the newest RANK_CANDIDATES matches (all of them, below that).
            ranked = await conn.fetch(
                f"SELECT id, r FROM (SELECT rowid AS id, {BM25} AS r FROM kernel_search_fts"
                f" WHERE kernel_search_fts MATCH ? AND rowid BETWEEN ? AND ?{wanted_sql}{acl}"
                " ORDER BY rowid DESC LIMIT ?) ORDER BY r, id DESC LIMIT ? OFFSET ?",
                [match, lo, hi, *wanted_codes, *acl_args, RANK_CANDIDATES, limit + 1, offset])
            page = ranked[:limit]
            if not page:
                return counts, [], False
            ids = [row[0] for row in page]
            # Highlights for the page only; `+rowid` keeps SQLite from probing the index per id.
            detail = {row[0]: row[1:] for row in await conn.fetch(
                "SELECT s.id, s.app, s.resource, s.record_id, s.title, s.updated_at,"
                " highlight(kernel_search_fts, 0, ?, ?),"
                f" snippet(kernel_search_fts, 1, ?, ?, '…', {SNIPPET_WORDS})"
                " FROM kernel_search_fts CROSS JOIN kernel_search s ON s.id = kernel_search_fts.rowid"
                " WHERE kernel_search_fts MATCH ? AND kernel_search_fts.rowid BETWEEN ? AND ?"
                f" AND +kernel_search_fts.rowid IN ({','.join('?' * len(ids))}) AND s.org_id = ?",
                [OPEN, CLOSE, OPEN, CLOSE, match, min(ids), max(ids), *ids, p.org_id])}
        rows = []
        for rowid, r in page:
            d = detail.get(rowid)
            if d is not None:  # (None: removed between the two reads)
                app, res, rid, title, upd, title_hl, snip = d
                rows.append((app, res, rid, title, upd, -r, title_hl, snip))
        return counts, rows, len(ranked) > limit

    async def _pg(self, query: Query, p: Principal, readable: dict[str, tuple[str, ...]],
                  wanted: dict[str, tuple[str, ...]], limit: int,
                  offset: int) -> tuple[dict[str, int], list[Any], bool]:
        """One statement: the newest PG_CANDIDATES matches (facets are counted on them), the
        wanted ones ranked, the page's headlines."""
        tsq = query.tsquery()
        match = (f"s.tsv @@ (to_tsquery('{PG_CONFIG}', ?) && ?::tsquery) AND s.org_id = ?")
        match_args = [tsq, pg_scope_query(p.org_id, tokens_of(p)), p.org_id]
        readable_sql, readable_args = _types_clause(readable)
        ranked_from, ranked_args = "m", []  # rank the candidates facets counted, unless filtered:
        if wanted != readable:
            wanted_sql, wanted_args = _types_clause(wanted)
            ranked_from = f"(SELECT s.id FROM kernel_search s WHERE {match} AND {wanted_sql} ORDER BY s.id DESC LIMIT ?)"
            ranked_args = [*match_args, *wanted_args, PG_CANDIDATES]
        title_opts = f'HighlightAll=true, StartSel="{OPEN}", StopSel="{CLOSE}"'
        body_opts = (f'StartSel="{OPEN}", StopSel="{CLOSE}", MaxWords={SNIPPET_WORDS}, MinWords=8,'
                     ' MaxFragments=2, FragmentDelimiter=" … "')
        sql = (
            f"WITH m AS MATERIALIZED (SELECT s.id, s.app, s.resource FROM kernel_search s"
            f" WHERE {match} AND {readable_sql} ORDER BY s.id DESC LIMIT ?),"
            f" r AS (SELECT c.id, ts_rank('{PG_WEIGHTS}', s.tsv, to_tsquery('{PG_CONFIG}', ?)) AS r"
            f" FROM {ranked_from} c JOIN kernel_search s ON s.id = c.id"
            " ORDER BY r DESC, c.id DESC LIMIT ? OFFSET ?)"
            " SELECT (SELECT json_object_agg(k, n) FROM (SELECT app || '.' || resource AS k, count(*) AS n"
            " FROM m GROUP BY app, resource) f), p.*"
            " FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT s.app, s.resource, s.record_id, s.title, s.updated_at,"
            f" r.r, ts_headline('{PG_CONFIG}', translate(s.title, '<&', ?), q, ?),"
            f" ts_headline('{PG_CONFIG}', translate(s.body, '<&', ?), q, ?)"
            f" FROM r JOIN kernel_search s ON s.id = r.id, to_tsquery('{PG_CONFIG}', ?) q"
            " ORDER BY r.r DESC, r.id DESC) p ON true")
        args = [*match_args, *readable_args, PG_CANDIDATES, tsq, *ranked_args, limit + 1, offset,
                LT + AMP, title_opts, LT + AMP, body_opts, tsq]
        async with self.db.transaction() as conn:
            # Plan with the actual words: a cached generic plan cannot tell "the" from "zebra".
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            rows = await conn.fetch(sql, args)
        facets = rows[0][0] if rows else None
        counts = {k: int(n) for k, n in (facets or {}).items()}
        page = [tuple(row[1:]) for row in rows if row[1] is not None]
        return counts, page[:limit], len(page) > limit


def _group(resources: Iterable[Resource]) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for r in resources:
        out.setdefault(r.app, []).append(r.name)
    return {a: tuple(sorted(v)) for a, v in sorted(out.items())}


def _types_clause(types: dict[str, tuple[str, ...]], alias: str = "s") -> tuple[str, list[Any]]:
    parts: list[str] = []
    args: list[Any] = []
    for app, names in types.items():
        parts.append(f"({alias}.app = ? AND {alias}.resource IN ({','.join('?' * len(names))}))")
        args += [app, *names]
    if not parts:
        return "1 = 0", []
    return "(" + " OR ".join(parts) + ")", args


# -- HTTP -----------------------------------------------------------------------------------


def _one(params: dict[str, list[str]], key: str) -> str | None:
    values = params.get(key)
    if not values:
        return None
    if len(values) > 1:
        raise bad_request(f"Parameter {key!r} is given more than once.", pointer=f"/query/{key}")
    return values[0]


async def search_endpoint(req: Request) -> Response:
    """Search every app: ranked hits the caller may open, with highlights and facets."""
    nx: Nexus = req.scope["nexus"]
    p = await nx.principal(req)
    index: SearchIndex = nx.state["search"]
    params = query_params(req)
    for key in params:
        if key not in PARAMS:
            raise bad_request(f"{key[:64]!r} is not a parameter of search. Parameters: q, app, type, limit,"
                              " cursor.", pointer=f"/query/{key[:64]}")
    q = (_one(params, "q") or "").strip()
    if not q:
        raise bad_request("q is required: the words to search for.", pointer="/query/q")
    if len(q) > MAX_Q:
        raise bad_request(f"q is limited to {MAX_Q} characters.", pointer="/query/q")
    apps = tuple(sorted({a.strip() for a in (_one(params, "app") or "").split(",") if a.strip()}))
    known_apps = {r.app for r in index.resources.values()}
    for a in apps:
        if a not in known_apps:
            raise bad_request(f"{a[:64]!r} is not an app with searchable records. Apps: "
                              f"{', '.join(sorted(known_apps))}.", pointer="/query/app")
    types = tuple(sorted({t.strip() for t in (_one(params, "type") or "").split(",") if t.strip()}))
    for t in types:
        if t not in index.resources:
            raise bad_request(f"{t[:64]!r} is not a searchable type (app.resource). Types: "
                              f"{', '.join(sorted(index.resources))}.", pointer="/query/type")
    limit = DEFAULT_LIMIT
    raw_limit = _one(params, "limit")
    if raw_limit is not None:
        try:
            limit = int(raw_limit)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise bad_request(f"limit must be an integer from 1 to {MAX_LIMIT}.", pointer="/query/limit")
    fingerprint = hashlib.sha256(f"search|{q}|{','.join(apps)}|{','.join(types)}".encode()).hexdigest()[:16]
    offset = 0
    cursor = _one(params, "cursor")
    if cursor:
        values = nx.cursors.decode(cursor, fingerprint)
        if len(values) != 1 or not isinstance(values[0], int) or not 0 <= values[0] <= MAX_OFFSET:
            raise bad_request("The cursor is invalid; start again without one.", pointer="/query/cursor")
        offset = values[0]
    result = await index.search(p, q, apps=apps, types=types, limit=limit, offset=offset)
    more = result.pop("more")
    nxt = offset + limit
    result["next_cursor"] = nx.cursors.encode(fingerprint, [nxt]) if more and nxt <= MAX_OFFSET else None
    return Response(dumps(result), media_type="application/json")


_HIT = {"type": "object", "properties": {
    "app": {"type": "string"}, "resource": {"type": "string"}, "type": {"type": "string"},
    "id": {"type": "string"}, "title": {"type": "string"},
    "title_highlight": {"type": "string", "description": "HTML: the title escaped, matches in <mark>"},
    "snippet": {"type": "string", "description": "HTML: an escaped excerpt, matches in <mark>"},
    "score": {"type": "number"}, "path": {"type": "string"},
    "updated_at": {"type": "string", "format": "date-time"}}}
RESPONSE_SCHEMA = {"type": "object", "properties": {
    "items": {"type": "array", "items": _HIT},
    "facets": {"type": "object", "properties": {
        "app": {"type": "object", "additionalProperties": {"type": "integer"}},
        "type": {"type": "object", "additionalProperties": {"type": "integer"}}}},
    "total": {"type": "integer"},
    "total_exact": {"type": "boolean", "description": "false when total and facets stopped counting"},
    "next_cursor": {"type": ["string", "null"]}}}


def install(nx: Nexus) -> None:
    index = SearchIndex(nx)
    nx.state["search"] = index
    nx.router.add(RouteDef("GET", "/api/v1/search", search_endpoint, tags=("search",),
                           summary="Search every app (q, app, type, limit, cursor)",
                           response_schema=RESPONSE_SCHEMA))
    nx.on("startup", index.startup)
    for prefix, r in index.by_entity.items():
        nx.events.subscribe(f"kernel.search:{r.key}", prefix + ".*", index.on_event)


# -- command line -------------------------------------------------------------------------


def register_cli(sub: Any) -> None:
    """`nexus search reindex`."""
    search = sub.add_parser("search", help="the global search index")
    commands = search.add_subparsers(dest="search_command", required=True)
    reindex = commands.add_parser("reindex", help="rebuild the search index from every searchable resource")
    reindex.add_argument("--batch", type=int, default=500, help="records per transaction (default 500)")
    reindex.set_defaults(handler=reindex_command)


async def reindex_command(settings: Settings, args: argparse.Namespace) -> int:
    from nexus.kernel import migrate
    from nexus.kernel.http.app import Nexus

    await asyncio.to_thread(migrate.upgrade, settings)
    nx = Nexus(settings, run_background=False)
    await nx.db.open()
    try:
        index: SearchIndex = nx.state["search"]
        counts = await index.reindex(batch=max(1, int(getattr(args, "batch", 500))), echo=print)
    finally:
        await nx.db.close()
    print(f"search index rebuilt: {sum(counts.values())} records of {len(counts)} resources")
    return 0
