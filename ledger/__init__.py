"""The service's records: configuration (the home), the database and the audit chain.

This room sits at the bottom beside :mod:`hsm`; every other room may use it, it uses none
of them. Tables of the higher rooms are declared on :data:`ledger.database.Base` by those
rooms; the one migration history for the database lives in ``ledger/migrations``.
"""
