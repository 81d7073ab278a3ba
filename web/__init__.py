"""The web layer around the retriever: what app.py needs besides the Gradio layout.

It is the only code that imports web frameworks; nothing under retriever/ imports from here.
"""
