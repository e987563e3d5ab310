"""Unit tests of the executor's parts, one file a module of glancesync/executor/."""
