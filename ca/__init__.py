"""ca room (see DESIGN.md)."""
