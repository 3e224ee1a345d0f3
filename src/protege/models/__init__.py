"""Model references, embedded models, the local llama.cpp server and the chat client."""
