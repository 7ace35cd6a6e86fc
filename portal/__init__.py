"""The organisation's web portal: regisseurs, DPOs and beheerders log in personally and use the
same code paths as the command line (docs/portal.md, ADR 0019)."""
