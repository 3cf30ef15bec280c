from tests.contract import ResourceContract


class TestNotesContract(ResourceContract):
    path = "/api/v1/notes/notes"
    valid = {"title": "Meeting notes", "body": "<p>We agreed on <strong>Tuesday</strong>.</p>", "tags": ["meetings"],
             "visibility": "org"}
    update = {"title": "Meeting notes (final)"}
    invalid = [({"title": ""}, "/title"), ({"title": "x", "visibility": "public"}, "/visibility"),
               ({"title": "x", "notebook_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "/notebook_id")]


class TestNotebooksContract(ResourceContract):
    path = "/api/v1/notes/notebooks"
    valid = {"name": "Research"}
    update = {"name": "Research 2027"}
    invalid = [({"name": ""}, "/name"), ({"name": "x", "color": "blue"}, "/color")]
