"""Local stand-ins for everything outside Switchboard, for the demo and the tests.

``sandbox.slack`` is a Slack emulator the bot cannot tell from Slack (Web API,
signed delivery, the browser page); ``sandbox.standins`` are the fake business
systems (ERP, CRM, ads, IAM/HR, ticketing, GRC, an SMTP sink); ``sandbox.demo``
composes them with the real bot on one port. The product (``bot``,
``workflows``, ``connectors``) never imports this package; the one exception is
the ``switchboard demo`` command, which imports ``sandbox.demo`` lazily
(an ``ignore_imports`` entry of the import-linter contract).
"""
