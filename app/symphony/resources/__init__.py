"""Files shipped in the package (melody templates, ...); read them with importlib.resources."""
