"""The FAQ knowledge base: store, embeddings, FAISS index, retrieval and CLI."""
