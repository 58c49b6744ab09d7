"""The page model both document writers consume, and the fonts they embed.

It sits at the bottom of the house, beside hsm/ and ledger/, so that ofd/ and pdf/ can both
build on it without importing each other. It knows nothing about signatures.
"""
