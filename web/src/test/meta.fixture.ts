// A real GET /api/v1/meta answer (tasks + identity), trimmed for tests.
import type { Meta } from '../lib/meta'

export const META: Meta = {
 "apps": [
  {
   "name": "tasks",
   "title": "Tasks",
   "category": "Productivity",
   "port": 8223,
   "catalog_number": 10,
   "icon": "check-square",
   "description": "Projects and tasks with subtasks, due dates, recurrence, labels, checklists and comments.",
   "resources": [
    {
     "app": "tasks",
     "name": "projects",
     "title": "Projects",
     "entity": "project",
     "path": "/api/v1/tasks/projects",
     "title_field": "name",
     "description": "Lists of tasks.",
     "fields": [
      {
       "name": "id",
       "label": "Id",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "name",
       "label": "Name",
       "type": "string",
       "required": true,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": true,
       "searchable": true,
       "max_length": 200,
       "min_length": 1,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "description",
       "label": "Description",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": true,
       "max_length": 10000,
       "default": ""
      },
      {
       "name": "color",
       "label": "Color",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "pattern": "^#[0-9a-fA-F]{6}$",
       "default": "#4f46e5"
      },
      {
       "name": "archived",
       "label": "Archived",
       "type": "boolean",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "default": false,
       "operators": [
        "eq",
        "isnull"
       ]
      },
      {
       "name": "created_at",
       "label": "Created at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "created_by",
       "label": "Created by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 26,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "updated_at",
       "label": "Updated at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "updated_by",
       "label": "Updated by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "version",
       "label": "Version",
       "type": "integer",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      },
      {
       "name": "deleted_at",
       "label": "Deleted at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      }
     ],
     "filters": [
      "archived",
      "name",
      "created_at",
      "updated_at",
      "created_by"
     ],
     "sorts": [
      "name",
      "created_at",
      "updated_at"
     ],
     "default_sort": "name",
     "search": [
      "name",
      "description"
     ],
     "views": [],
     "actions": [
      {
       "name": "archive",
       "summary": "Archive the project",
       "permission": "tasks.projects.update",
       "allowed": true,
       "input": null
      },
      {
       "name": "unarchive",
       "summary": "Bring the project back",
       "permission": "tasks.projects.update",
       "allowed": true,
       "input": null
      }
     ],
     "permissions": {
      "read": true,
      "create": true,
      "update": true,
      "delete": true,
      "export": true,
      "import": true
     },
     "events": [
      "nexus.tasks.project.created",
      "nexus.tasks.project.updated",
      "nexus.tasks.project.deleted",
      "nexus.tasks.project.restored"
     ]
    },
    {
     "app": "tasks",
     "name": "tasks",
     "title": "Tasks",
     "entity": "task",
     "path": "/api/v1/tasks/tasks",
     "title_field": "title",
     "description": "Things to do: subtasks, due dates, recurrence, labels and checklists.",
     "fields": [
      {
       "name": "id",
       "label": "Id",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "project_id",
       "label": "Project",
       "type": "reference",
       "required": false,
       "nullable": true,
       "readonly": false,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "reference": "tasks.projects",
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "parent_id",
       "label": "Parent",
       "type": "reference",
       "required": false,
       "nullable": true,
       "readonly": false,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "reference": "tasks.tasks",
       "description": "Makes this a subtask of another task",
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "title",
       "label": "Title",
       "type": "string",
       "required": true,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": true,
       "searchable": true,
       "max_length": 500,
       "min_length": 1,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "description",
       "label": "Description",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": true,
       "max_length": 100000,
       "default": ""
      },
      {
       "name": "status",
       "label": "Status",
       "type": "choice",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "choices": [
        "todo",
        "in_progress",
        "done"
       ],
       "default": "todo",
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "priority",
       "label": "Priority",
       "type": "integer",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "description": "0 none, 1 low, 2 medium, 3 high, 4 urgent",
       "ge": 0,
       "le": 4,
       "default": 0,
       "operators": [
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "in",
        "nin",
        "isnull"
       ]
      },
      {
       "name": "assignee_id",
       "label": "Assignee",
       "type": "reference",
       "required": false,
       "nullable": true,
       "readonly": false,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "reference": "identity.users",
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "due_at",
       "label": "Due at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": false,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "description": "A moment (RFC 3339)",
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "due_date",
       "label": "Due date",
       "type": "date",
       "required": false,
       "nullable": true,
       "readonly": false,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "description": "An all-day due date, in due_timezone",
       "operators": [
        "eq",
        "ne",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "due_timezone",
       "label": "Due timezone",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 64,
       "default": "UTC"
      },
      {
       "name": "all_day",
       "label": "All day",
       "type": "boolean",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      },
      {
       "name": "recurrence",
       "label": "Recurrence",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "description": "RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO"
      },
      {
       "name": "labels",
       "label": "Labels",
       "type": "list",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 50,
       "operators": [
        "contains",
        "isnull"
       ]
      },
      {
       "name": "checklist",
       "label": "Checklist",
       "type": "list",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 200
      },
      {
       "name": "position",
       "label": "Position",
       "type": "number",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": true,
       "searchable": false,
       "default": 0.0
      },
      {
       "name": "completed_at",
       "label": "Completed at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "completed_by",
       "label": "Completed by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "recurrence_of",
       "label": "Recurrence of",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 26,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "next_occurrence_id",
       "label": "Next occurrence",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "created_at",
       "label": "Created at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "created_by",
       "label": "Created by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 26,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "updated_at",
       "label": "Updated at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "updated_by",
       "label": "Updated by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "version",
       "label": "Version",
       "type": "integer",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      },
      {
       "name": "deleted_at",
       "label": "Deleted at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      }
     ],
     "filters": [
      "status",
      "priority",
      "assignee_id",
      "project_id",
      "parent_id",
      "due_at",
      "due_date",
      "labels",
      "completed_at",
      "recurrence_of",
      "title",
      "created_at",
      "updated_at",
      "created_by"
     ],
     "sorts": [
      "due_at",
      "priority",
      "created_at",
      "updated_at",
      "title",
      "position",
      "completed_at",
      "status"
     ],
     "default_sort": "-created_at",
     "search": [
      "title",
      "description"
     ],
     "views": [
      {
       "name": "mine",
       "title": "My tasks"
      },
      {
       "name": "overdue",
       "title": "Overdue"
      },
      {
       "name": "my-overdue",
       "title": "My overdue tasks"
      }
     ],
     "actions": [
      {
       "name": "complete",
       "summary": "Mark done (and schedule the next occurrence of a recurring task)",
       "permission": "tasks.tasks.update",
       "allowed": true,
       "input": null
      },
      {
       "name": "reopen",
       "summary": "Reopen a done task",
       "permission": "tasks.tasks.update",
       "allowed": true,
       "input": null
      },
      {
       "name": "start",
       "summary": "Move to in progress",
       "permission": "tasks.tasks.update",
       "allowed": true,
       "input": null
      },
      {
       "name": "assign",
       "summary": "Assign to a user of the org (or nobody)",
       "permission": "tasks.tasks.update",
       "allowed": true,
       "input": {
        "additionalProperties": false,
        "properties": {
         "assignee_id": {
          "anyOf": [
           {
            "type": "string"
           },
           {
            "type": "null"
           }
          ],
          "description": "A user of the org, or null to unassign",
          "title": "Assignee Id"
         }
        },
        "required": [
         "assignee_id"
        ],
        "title": "AssignInput",
        "type": "object"
       }
      },
      {
       "name": "move",
       "summary": "Change column, project or position (kanban)",
       "permission": "tasks.tasks.update",
       "allowed": true,
       "input": {
        "additionalProperties": false,
        "properties": {
         "status": {
          "anyOf": [
           {
            "enum": [
             "todo",
             "in_progress",
             "done"
            ],
            "type": "string"
           },
           {
            "type": "null"
           }
          ],
          "default": null,
          "title": "Status"
         },
         "project_id": {
          "anyOf": [
           {
            "type": "string"
           },
           {
            "type": "null"
           }
          ],
          "default": null,
          "title": "Project Id"
         },
         "position": {
          "anyOf": [
           {
            "type": "number"
           },
           {
            "type": "null"
           }
          ],
          "default": null,
          "title": "Position"
         }
        },
        "title": "MoveInput",
        "type": "object"
       }
      }
     ],
     "permissions": {
      "read": true,
      "create": true,
      "update": true,
      "delete": true,
      "export": true,
      "import": true
     },
     "events": [
      "nexus.tasks.task.created",
      "nexus.tasks.task.updated",
      "nexus.tasks.task.deleted",
      "nexus.tasks.task.restored"
     ]
    },
    {
     "app": "tasks",
     "name": "comments",
     "title": "Comments",
     "entity": "comment",
     "path": "/api/v1/tasks/comments",
     "title_field": "body",
     "description": "Discussion on a task.",
     "fields": [
      {
       "name": "id",
       "label": "Id",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "task_id",
       "label": "Task",
       "type": "reference",
       "required": true,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "reference": "tasks.tasks",
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "body",
       "label": "Body",
       "type": "string",
       "required": true,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": true,
       "max_length": 50000,
       "min_length": 1
      },
      {
       "name": "created_at",
       "label": "Created at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "created_by",
       "label": "Created by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 26,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "updated_at",
       "label": "Updated at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "updated_by",
       "label": "Updated by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "version",
       "label": "Version",
       "type": "integer",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      },
      {
       "name": "deleted_at",
       "label": "Deleted at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      }
     ],
     "filters": [
      "task_id",
      "created_at",
      "updated_at",
      "created_by"
     ],
     "sorts": [
      "created_at"
     ],
     "default_sort": "created_at",
     "search": [
      "body"
     ],
     "views": [],
     "actions": [],
     "permissions": {
      "read": true,
      "create": true,
      "update": true,
      "delete": true,
      "export": true,
      "import": true
     },
     "events": [
      "nexus.tasks.comment.created",
      "nexus.tasks.comment.updated",
      "nexus.tasks.comment.deleted",
      "nexus.tasks.comment.restored"
     ]
    },
    {
     "app": "tasks",
     "name": "labels",
     "title": "Labels",
     "entity": "label",
     "path": "/api/v1/tasks/labels",
     "title_field": "name",
     "description": "",
     "fields": [
      {
       "name": "id",
       "label": "Id",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "name",
       "label": "Name",
       "type": "string",
       "required": true,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": true,
       "searchable": true,
       "max_length": 64,
       "min_length": 1,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "color",
       "label": "Color",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "pattern": "^#[0-9a-fA-F]{6}$",
       "default": "#64748b"
      },
      {
       "name": "created_at",
       "label": "Created at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "created_by",
       "label": "Created by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 26,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "updated_at",
       "label": "Updated at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "updated_by",
       "label": "Updated by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "version",
       "label": "Version",
       "type": "integer",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      },
      {
       "name": "deleted_at",
       "label": "Deleted at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      }
     ],
     "filters": [
      "name",
      "created_at",
      "updated_at",
      "created_by"
     ],
     "sorts": [
      "name",
      "created_at"
     ],
     "default_sort": "name",
     "search": [
      "name"
     ],
     "views": [],
     "actions": [],
     "permissions": {
      "read": true,
      "create": true,
      "update": true,
      "delete": true,
      "export": true,
      "import": true
     },
     "events": [
      "nexus.tasks.label.created",
      "nexus.tasks.label.updated",
      "nexus.tasks.label.deleted",
      "nexus.tasks.label.restored"
     ]
    }
   ]
  },
  {
   "name": "identity",
   "title": "Identity",
   "category": "Platform",
   "port": 8100,
   "catalog_number": 56,
   "icon": "shield",
   "description": "Users, organisations, roles, sign-in, tokens and API keys.",
   "resources": [
    {
     "app": "identity",
     "name": "users",
     "title": "Users",
     "entity": "user",
     "path": "/api/v1/identity/users",
     "title_field": "name",
     "description": "People and service accounts of the organisation.",
     "fields": [
      {
       "name": "id",
       "label": "Id",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "email",
       "label": "Email",
       "type": "string",
       "required": true,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": true,
       "searchable": true,
       "description": "Sign-in address",
       "max_length": 320,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "name",
       "label": "Name",
       "type": "string",
       "required": true,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": true,
       "searchable": true,
       "max_length": 200,
       "min_length": 1
      },
      {
       "name": "status",
       "label": "Status",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 16,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "timezone",
       "label": "Timezone",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 64,
       "default": "UTC"
      },
      {
       "name": "roles",
       "label": "Roles",
       "type": "list",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 20,
       "operators": [
        "contains",
        "isnull"
       ]
      },
      {
       "name": "last_login_at",
       "label": "Last login at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": true,
       "searchable": false
      },
      {
       "name": "is_service_account",
       "label": "Is service account",
       "type": "boolean",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "operators": [
        "eq",
        "isnull"
       ]
      },
      {
       "name": "created_at",
       "label": "Created at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "created_by",
       "label": "Created by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 26,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "updated_at",
       "label": "Updated at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "updated_by",
       "label": "Updated by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "version",
       "label": "Version",
       "type": "integer",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      },
      {
       "name": "deleted_at",
       "label": "Deleted at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      }
     ],
     "filters": [
      "email",
      "status",
      "is_service_account",
      "roles",
      "created_at",
      "updated_at",
      "created_by"
     ],
     "sorts": [
      "name",
      "email",
      "created_at",
      "last_login_at"
     ],
     "default_sort": "name",
     "search": [
      "name",
      "email"
     ],
     "views": [],
     "actions": [
      {
       "name": "assign-roles",
       "summary": "Replace the user's roles",
       "permission": "identity.users.update",
       "allowed": true,
       "input": {
        "additionalProperties": false,
        "properties": {
         "roles": {
          "items": {
           "maxLength": 64,
           "minLength": 1,
           "pattern": "^[a-z0-9][a-z0-9_-]*$",
           "type": "string"
          },
          "maxItems": 20,
          "minItems": 0,
          "title": "Roles",
          "type": "array"
         }
        },
        "required": [
         "roles"
        ],
        "title": "RoleAssignment",
        "type": "object"
       }
      },
      {
       "name": "deactivate",
       "summary": "Deactivate and end every session",
       "permission": "identity.users.update",
       "allowed": true,
       "input": null
      },
      {
       "name": "reactivate",
       "summary": "Reactivate a deactivated user",
       "permission": "identity.users.update",
       "allowed": true,
       "input": null
      },
      {
       "name": "set-password",
       "summary": "Set the password",
       "permission": "identity.users.update",
       "allowed": true,
       "input": {
        "additionalProperties": false,
        "properties": {
         "password": {
          "maxLength": 1024,
          "minLength": 8,
          "title": "Password",
          "type": "string"
         }
        },
        "required": [
         "password"
        ],
        "title": "PasswordSet",
        "type": "object"
       }
      }
     ],
     "permissions": {
      "read": true,
      "create": true,
      "update": true,
      "delete": true,
      "export": true,
      "import": true
     },
     "events": [
      "nexus.identity.user.created",
      "nexus.identity.user.updated",
      "nexus.identity.user.deleted",
      "nexus.identity.user.restored"
     ]
    },
    {
     "app": "identity",
     "name": "roles",
     "title": "Roles",
     "entity": "role",
     "path": "/api/v1/identity/roles",
     "title_field": "name",
     "description": "Roles grant permissions named app.resource.action.",
     "fields": [
      {
       "name": "id",
       "label": "Id",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "name",
       "label": "Name",
       "type": "string",
       "required": true,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": true,
       "searchable": true,
       "max_length": 64,
       "min_length": 1,
       "pattern": "^[a-z0-9][a-z0-9_-]*$",
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "description",
       "label": "Description",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": true,
       "max_length": 500,
       "default": ""
      },
      {
       "name": "permissions",
       "label": "Permissions",
       "type": "list",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 500
      },
      {
       "name": "builtin",
       "label": "Builtin",
       "type": "boolean",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "operators": [
        "eq",
        "isnull"
       ]
      },
      {
       "name": "created_at",
       "label": "Created at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "created_by",
       "label": "Created by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 26,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "updated_at",
       "label": "Updated at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "updated_by",
       "label": "Updated by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "version",
       "label": "Version",
       "type": "integer",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      },
      {
       "name": "deleted_at",
       "label": "Deleted at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      }
     ],
     "filters": [
      "name",
      "builtin",
      "created_at",
      "updated_at",
      "created_by"
     ],
     "sorts": [
      "name",
      "created_at"
     ],
     "default_sort": "name",
     "search": [
      "name",
      "description"
     ],
     "views": [],
     "actions": [],
     "permissions": {
      "read": true,
      "create": true,
      "update": true,
      "delete": true,
      "export": true,
      "import": true
     },
     "events": [
      "nexus.identity.role.created",
      "nexus.identity.role.updated",
      "nexus.identity.role.deleted",
      "nexus.identity.role.restored"
     ]
    },
    {
     "app": "identity",
     "name": "api-keys",
     "title": "Api keys",
     "entity": "api_key",
     "path": "/api/v1/identity/api-keys",
     "title_field": "name",
     "description": "Keys for machines, scoped to a subset of their owner's permissions; shown once.",
     "fields": [
      {
       "name": "id",
       "label": "Id",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "name",
       "label": "Name",
       "type": "string",
       "required": true,
       "nullable": false,
       "readonly": false,
       "filterable": true,
       "sortable": true,
       "searchable": true,
       "max_length": 200,
       "min_length": 1,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "user_id",
       "label": "User",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 26,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "prefix",
       "label": "Prefix",
       "type": "string",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 32
      },
      {
       "name": "permissions",
       "label": "Permissions",
       "type": "list",
       "required": false,
       "nullable": false,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "description": "Subset of your own permissions; empty means all of them",
       "max_length": 500
      },
      {
       "name": "expires_at",
       "label": "Expires at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": false,
       "filterable": false,
       "sortable": false,
       "searchable": false
      },
      {
       "name": "revoked_at",
       "label": "Revoked at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      },
      {
       "name": "last_used_at",
       "label": "Last used at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": true,
       "searchable": false
      },
      {
       "name": "created_at",
       "label": "Created at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": true,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "created_by",
       "label": "Created by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "max_length": 26,
       "operators": [
        "eq",
        "ne",
        "in",
        "nin",
        "isnull",
        "startswith"
       ]
      },
      {
       "name": "updated_at",
       "label": "Updated at",
       "type": "datetime",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": true,
       "sortable": false,
       "searchable": false,
       "operators": [
        "eq",
        "gt",
        "gte",
        "lt",
        "lte",
        "isnull"
       ]
      },
      {
       "name": "updated_by",
       "label": "Updated by",
       "type": "string",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false,
       "max_length": 26
      },
      {
       "name": "version",
       "label": "Version",
       "type": "integer",
       "required": false,
       "nullable": false,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      },
      {
       "name": "deleted_at",
       "label": "Deleted at",
       "type": "datetime",
       "required": false,
       "nullable": true,
       "readonly": true,
       "filterable": false,
       "sortable": false,
       "searchable": false
      }
     ],
     "filters": [
      "user_id",
      "name",
      "created_at",
      "updated_at",
      "created_by"
     ],
     "sorts": [
      "name",
      "created_at",
      "last_used_at"
     ],
     "default_sort": "-created_at",
     "search": [
      "name"
     ],
     "views": [],
     "actions": [
      {
       "name": "revoke",
       "summary": "Revoke the key",
       "permission": "identity.api-keys.delete",
       "allowed": true,
       "input": null
      }
     ],
     "permissions": {
      "read": true,
      "create": true,
      "update": true,
      "delete": true,
      "export": true,
      "import": true
     },
     "events": [
      "nexus.identity.api_key.created",
      "nexus.identity.api_key.updated",
      "nexus.identity.api_key.deleted",
      "nexus.identity.api_key.restored"
     ]
    }
   ]
  }
 ],
 "user": {
  "id": "01M89YZMWG6X58T7CK18M0YVKN",
  "org_id": "01M89YZMWE52YVTYNFBVSPYE4K",
  "roles": [
   "owner"
  ]
 }
}
