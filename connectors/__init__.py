"""Clients for outside systems (HTTP/REST, SQL, e-mail, Jira, GitHub, signed webhooks).

This package imports no other project package: the workflow engine builds a
:class:`connectors.registry.ConnectorRegistry` from configuration and an explicit environment
mapping, and calls the connectors' async methods. See ``connectors/README.md``. Imports stay in
the submodules so that importing ``connectors.ai`` does not load database drivers.
"""
