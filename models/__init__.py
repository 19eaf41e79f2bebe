"""Models built on minigrad: a character-level GPT with its trainer and sampler."""
