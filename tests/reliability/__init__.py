"""The reliability suite (issue 7): load, crash, concurrent staff, hostile input, backups, and
several app processes. The longer tests are marked `slow`; `.ci/run` runs them all."""
