"""Annotation logic above the store: the annotate page's drafts and queue, agreement, the Overview."""
