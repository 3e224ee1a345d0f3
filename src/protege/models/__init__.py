"""Embedded models, the local llama.cpp server, the chat client and the query encoder."""
