"""Plain functions over the metadata database and the drivers, shared by every API.

Naming: ``get_*`` returns ``None`` on a miss; ``require_*`` raises ``NotFound``; ``create_*`` raises ``Conflict``
when the thing exists. Repositories commit; views never query or commit.
"""
