"""The trust service: the composition root, the command line, and (later) the validation
engine and the issuer-facing signing service. It may use every room below it."""
