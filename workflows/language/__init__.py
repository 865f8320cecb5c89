"""The workflow definition language: pydantic models of the YAML and nothing else.

A model knows its own kind name (``KIND``), the references it makes
(``jump_targets()``, ``templates()``, ``connection()``, ``expressions()``) and
the output fields its executor produces (``OUTPUT`` / ``outputs()``), so
``check`` (``workflows/loader.py``), the JSON Schema and the engine derive from
the models alone. This package imports no other ``workflows`` module (an
import-linter contract): the executors in ``workflows/steps/`` import it, never
the other way round.
"""
