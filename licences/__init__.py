"""licences room (see DESIGN.md)."""
