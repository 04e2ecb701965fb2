"""Imported once by the fork server before it forks MULTIPROCESSING pool processes.

Everything a pool process needs to run an envelope is loaded here, once: the runner
and the plugins (entry points can take a large part of a second to import). Every
process forked from the server then starts with them in memory.
"""

from graflow.plugins.manager import get_plugin_manager
from graflow.remote import runner as _runner  # noqa: F401

get_plugin_manager().hook  # noqa: B018 - loads the entry-point plugins now
