"""What the issue promises a report contains, written down once for the tests that check it."""

#: The checks every seal signature's report carries (issue 3: "check names at least").
SEAL_SIGNATURE_CHECKS = frozenset({
    "format", "references", "data-hash", "signature", "seal-maker-signature", "signer-in-seal",
    "seal-validity", "certificate-chain", "revocation",
})
