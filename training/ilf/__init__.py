"""ILF from critiques: config and templates, refine + select (pipeline), finetuning, new candidates."""
