"""Tokenwise's Streamlit app: thin pages over the `training` library."""
