"""The ``culvert`` command line (installed as the package ``culvert_cli``)."""
