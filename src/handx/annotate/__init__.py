"""Description writers: motion codes → five fine-grained text triplets per clip (reference §3)."""
