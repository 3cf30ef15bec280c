from tests.contract import ResourceContract


class TestRolesContract(ResourceContract):
    path = "/api/v1/identity/roles"
    valid = {"name": "support", "description": "Helpdesk agents", "permissions": ["tasks.tasks.read"]}
    update = {"description": "Helpdesk agents and leads"}
    unique_field = "name"
    invalid = [({"name": "Bad Name!"}, "/name"), ({"name": "x", "permissions": ["not-a-permission"]}, "/permissions/0")]
