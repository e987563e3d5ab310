"""Unit tests of the planner's concerns, one file a module of glancesync/plan/."""
