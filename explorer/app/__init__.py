"""Qt objects that are not widgets: the state, edits and undo, background jobs, the document, the display model."""
