"""Running a task away from the driver: one envelope out, one outcome back.

Every place where a task runs outside the engine's process (a MULTIPROCESSING group
member, a Docker container, a Redis worker) uses the same two messages:

* :class:`~graflow.remote.envelope.TaskEnvelope` carries the task, what it may read
  (a channel snapshot or how to reach a shared channel, earlier results, its iteration
  state) and the plugin carrier (trace context);
* :class:`~graflow.remote.envelope.TaskOutcome` brings back the result or the error
  with the remote traceback, the channel writes to replay, the task's ``next_task`` /
  ``next_iteration`` / terminate / cancel requests, and timing.

:func:`~graflow.remote.runner.run_envelope` is what the remote side calls.
"""
