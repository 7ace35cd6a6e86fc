"""Pure cryptographic functions: no I/O.

BSN parsing (:mod:`.bsn`), the RFC 9497 VOPRF (:mod:`.oprf`), pseudonyms, the RFC 9162 Merkle
log and signed notes.
"""
