"""One-off experiments behind figures quoted in the README; not imported by the product."""
