"""pdf room (see DESIGN.md)."""
