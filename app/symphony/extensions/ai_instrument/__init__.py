"""The AI Instrument extension: AI models run in their own child process.

Providers (:mod:`.providers`): the embedded SmolLM2-135M-Instruct (offline, the default), bundled
multilingual-e5-small embeddings, and any OpenAI-compatible HTTP server. The node types it
contributes are declared in ``extension.toml``; their prompts live in :mod:`.prompts`.
"""
