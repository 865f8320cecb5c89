"""The security suite: one module per class of attack (see SECURITY.md for the threat model).

Each test drives the real server over HTTP where the attack arrives over HTTP, and each was
seen to fail on the code before its fix. Fixtures a single module needs live in that module;
shared ones live in ``tests/support``.
"""
