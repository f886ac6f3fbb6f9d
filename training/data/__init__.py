"""Data in and out: import/export (io), the demo projects, tiny offline models, the document context."""
