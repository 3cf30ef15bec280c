from tests.contract import ResourceContract


class TestTasksContract(ResourceContract):
    path = "/api/v1/tasks/tasks"
    valid = {"title": "Write the launch plan", "priority": 2, "labels": ["launch"]}
    update = {"title": "Write the final launch plan", "priority": 3}
    invalid = [
        ({"title": ""}, "/title"),
        ({"title": "x", "priority": 9}, "/priority"),
        ({"title": "x", "status": "sleeping"}, "/status"),
        ({"title": "x", "due_timezone": "Mars/Olympus"}, "/due_timezone"),
        ({"title": "x", "recurrence": "EVERY TUESDAY"}, "/recurrence"),
        ({"title": "x", "assignee_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}, "/assignee_id"),
        ({"title": 12}, "/title"),
    ]


class TestProjectsContract(ResourceContract):
    path = "/api/v1/tasks/projects"
    valid = {"name": "Launch", "color": "#112233"}
    update = {"name": "Relaunch"}
    invalid = [({"name": ""}, "/name"), ({"name": "x", "color": "red"}, "/color")]


class TestLabelsContract(ResourceContract):
    path = "/api/v1/tasks/labels"
    valid = {"name": "urgent", "color": "#ff0000"}
    update = {"color": "#00ff00"}
    unique_field = "name"
    invalid = [({"name": ""}, "/name")]
