"""Imported once by the fork server before it forks ``--pool processes`` children.

A child needs the runner, the plugins (entry points can take a large part of a second
to import) and redis; loading them here, once, lets every child start with them in memory.
"""

from graflow.plugins.manager import get_plugin_manager
from graflow_worker import child as _child  # noqa: F401

get_plugin_manager().hook  # noqa: B018 - loads the entry-point plugins now
