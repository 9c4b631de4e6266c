"""Checking a user's own loss and gradient code: the sandboxed runner, its child process, the gallery of bugs."""
