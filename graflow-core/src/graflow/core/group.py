"""``graflow.core.group.ParallelGroup``: where earlier code imports the group node from.

The node kinds live together in :mod:`graflow.core.dsl`, because the operators that
build them are defined on their common base.
"""

from graflow.core.dsl import ParallelGroup

__all__ = ["ParallelGroup"]
