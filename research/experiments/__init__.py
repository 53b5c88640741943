"""One-off experiments behind figures quoted in docs/research/measured.md; not imported by the product."""
