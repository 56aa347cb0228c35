"""LVAS-Agent: the sound knowledge base and the soundtrack benchmark."""
