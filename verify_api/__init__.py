"""verify_api room (see DESIGN.md)."""
