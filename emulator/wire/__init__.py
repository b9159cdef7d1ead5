"""The serial wire's formats: SLIP framing and the loader protocol's packets (the lowest layer)."""
