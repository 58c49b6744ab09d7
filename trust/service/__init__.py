"""The issuer-facing signing service (``zhengyin serve``): an internal HTTP API through which a
department's business system issues and manages its licences and seals its documents.

It faces departments, not the internet: every request carries a per-department API key
(:mod:`.credentials`), and a department sees only its own licences and seals. The public
verification service is :mod:`verify_api`, deployed separately and holding no private key.
"""
