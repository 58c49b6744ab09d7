"""ofd room (see DESIGN.md)."""
