"""The bundled example workflows (YAML) and the small Python helpers they ``call``."""
