"""Running boards: from options and scenarios, one or a rack, in-process or as a process, pytest."""
