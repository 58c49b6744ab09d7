"""seals room (see DESIGN.md)."""
