"""Crypto provider and key custody: SM2, SM3, SM4 and the versioned key store.

The public surface is deliberately small:

* :mod:`hsm.sm3` and :mod:`hsm.sm4` — hashing, HMAC and symmetric encryption;
* :mod:`hsm.sm2` — :class:`~hsm.sm2.SM2PublicKey` (verification, encodings) and the
  GM/T 0009 digest rule ``e = SM3(Z_A || M)``;
* :mod:`hsm.signature` — reading signature values as real producers write them;
* :mod:`hsm.keystore` — the :class:`~hsm.keystore.KeyStore` protocol; private keys stay
  inside a store and are used through it.

Everything that handles a private scalar lives in :mod:`hsm.hazmat` and the backends; it
is named so that its use stands out in review.
"""
