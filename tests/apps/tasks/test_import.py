"""CSV import of tasks: atomic and partial modes, dry runs, limits and bad files."""

from __future__ import annotations

import httpx

from nexus.kernel.http.app import Nexus
from nexus.kernel.jsonutil import parse_dt
from tests.factories import TASKS, list_all, new_org

IMPORT = f"{TASKS}/import"
CSV = {"Content-Type": "text/csv"}

GOOD = (
    "title,priority,labels,due_date,status\n"
    "Buy milk,2,home;errand,2031-03-10,todo\n"
    "File taxes,4,admin,2031-04-15,in_progress\n"
    "Old chore,0,,,done\n"
)


async def _titles(actor) -> set[str]:
    return {t["title"] for t in await list_all(actor, TASKS)}


async def test_import_csv_creates_tasks(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await owner.post(IMPORT, content=GOOD.encode(), headers=CSV)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["rows"] == 3 and body["created"] == 3 and body["errors"] == [] and body["committed"] is True
    tasks = {t["title"]: t for t in await list_all(owner, TASKS)}
    assert set(tasks) == {"Buy milk", "File taxes", "Old chore"}
    milk = tasks["Buy milk"]
    assert milk["priority"] == 2 and milk["labels"] == ["home", "errand"] and milk["all_day"] is True
    assert milk["due_date"] == "2031-03-10" and parse_dt(milk["due_at"]).date().isoformat() == "2031-03-10"
    assert tasks["File taxes"]["status"] == "in_progress"
    assert tasks["Old chore"]["status"] == "done" and tasks["Old chore"]["completed_at"] is not None
    assert set(body["ids"]) == {t["id"] for t in tasks.values()}
    labels = {lab["name"] for lab in await list_all(owner, "/api/v1/tasks/labels")}
    assert labels == {"home", "errand", "admin"}


async def test_atomic_import_with_a_bad_row_creates_nothing(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    text = (
        "title,priority,labels,due_date,status\n"
        "Good one,1,a,2031-03-10,todo\n"
        "Bad priority,9,,,todo\n"
        "Bad date,1,,2031-02-30,todo\n"
        ",1,,,todo\n"
        "Fine too,2,b,,done\n"
    )
    r = await owner.post(IMPORT, content=text.encode(), headers=CSV)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["committed"] is False and body["created"] == 0 and body["ids"] == []
    by_row = {e["row"]: {x["pointer"] for x in e["errors"]} for e in body["errors"]}
    assert by_row == {3: {"/priority"}, 4: {"/due_date"}, 5: {"/title"}}  # file line numbers, header is line 1
    assert await list_all(owner, TASKS) == []
    assert await list_all(owner, "/api/v1/tasks/labels") == []  # labels of the good rows rolled back too


async def test_service_rule_errors_are_reported_per_row(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    text = (
        "title,due_date,recurrence\n"
        "Weekly,2031-03-10,FREQ=WEEKLY\n"
        "Never due,,FREQ=WEEKLY\n"
    )
    r = await owner.post(IMPORT, content=text.encode(), headers=CSV)
    assert r.status_code == 422
    assert [(e["row"], e["errors"][0]["pointer"]) for e in r.json()["errors"]] == [(3, "/recurrence")]
    assert await list_all(owner, TASKS) == []


async def test_partial_import_creates_the_good_rows(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    text = "title,priority\nKeep me,1\nNot me,7\nMe too,3\n"
    r = await owner.post(IMPORT, params={"mode": "partial"}, content=text.encode(), headers=CSV)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 2 and body["error_count"] == 1 and body["errors"][0]["row"] == 3
    assert await _titles(owner) == {"Keep me", "Me too"}


async def test_dry_run_creates_nothing(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    r = await owner.post(IMPORT, params={"dry_run": "true"}, content=GOOD.encode(), headers=CSV)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["dry_run"] is True and body["valid"] == 3 and body["created"] == 0 and body["committed"] is False
    assert await list_all(owner, TASKS) == []
    assert await list_all(owner, "/api/v1/tasks/labels") == []
    r = await owner.post(IMPORT, params={"dry_run": "true"}, content=b"title,priority\nx,11\n", headers=CSV)
    assert r.status_code == 422 and r.json()["errors"][0]["row"] == 2


async def test_too_many_rows_is_413(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    limit = nx.settings.max_import_rows
    assert limit == 2000
    text = "title\n" + "".join(f"task {i}\n" for i in range(limit + 1))
    r = await owner.post(IMPORT, content=text.encode(), headers=CSV)
    assert r.status_code == 413, r.text
    assert await list_all(owner, TASKS, limit=500) == []
    r = await owner.post(IMPORT, content=b"title\n" + b"x" * (nx.settings.max_import_bytes + 1), headers=CSV)
    assert r.status_code == 413


async def test_exactly_the_row_limit_imports(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    limit = nx.settings.max_import_rows
    text = "title,labels\n" + "".join(f"task {i},bulk\n" for i in range(limit))
    r = await owner.post(IMPORT, content=text.encode(), headers=CSV)
    assert r.status_code == 200, r.text
    assert r.json()["created"] == limit
    assert len(await list_all(owner, TASKS, limit=500)) == limit


async def test_bad_files_are_400_or_415(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    cases = [
        (b"title,colour\nx,red\n", CSV, 400),  # unknown column
        (b"title,title\nx,y\n", CSV, 400),  # a column twice
        (b"title\n\xff\xfe broken\n", CSV, 400),  # not UTF-8
        (b"title\nnul\x00here\n", CSV, 400),
        (b"", CSV, 400),  # empty file
        (b"title\nx\n", {"Content-Type": "text/plain"}, 415),
    ]
    for content, headers, status in cases:
        r = await owner.post(IMPORT, content=content, headers=headers)
        assert r.status_code == status, (content[:30], r.status_code, r.text)
        assert r.headers["content-type"] == "application/problem+json"
        assert "Traceback" not in r.text
    for params in ({"mode": "sometimes"}, {"format": "xml", "dry_run": "yes", "bogus": "1"}):
        r = await owner.post(IMPORT, params=params, content=GOOD.encode(), headers=CSV)
        assert r.status_code == 400, (params, r.text)
    assert await list_all(owner, TASKS) == []


async def test_import_needs_permission_and_stays_in_the_org(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    viewer = await owner.add_user(["viewer"])
    r = await viewer.post(IMPORT, content=GOOD.encode(), headers=CSV)
    assert r.status_code == 403
    other = await new_org(client, nx)
    assert (await other.post(IMPORT, content=GOOD.encode(), headers=CSV)).status_code == 200
    assert await list_all(owner, TASKS) == []
    assert len(await list_all(other, TASKS)) == 3


async def test_bom_quoted_cells_and_blank_lines(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    text = '\ufefftitle,description,labels\r\n"Plan, then do","Line one\nline two","x; y"\r\n\r\n'
    r = await owner.post(IMPORT, content=text.encode(), headers=CSV)
    assert r.status_code == 200, r.text
    (t,) = await list_all(owner, TASKS)
    assert t["title"] == "Plan, then do" and t["description"] == "Line one\nline two" and t["labels"] == ["x", "y"]


async def test_an_export_re_imports(client: httpx.AsyncClient, nx: Nexus) -> None:
    owner = await new_org(client, nx)
    await owner.post("/api/v1/tasks/tasks", json={"title": "exported", "labels": ["x"],
                                                  "checklist": [{"text": "a"}], "due_date": "2030-01-02"})
    exported = (await owner.get("/api/v1/tasks/tasks/export", params={"format": "csv"})).text
    other = await new_org(client, nx)
    r = await other.post(IMPORT, content=exported.encode(), headers=CSV)
    assert r.status_code == 200, r.text
    got = (await other.get("/api/v1/tasks/tasks")).json()["items"]
    assert [t["title"] for t in got] == ["exported"] and got[0]["labels"] == ["x"]
