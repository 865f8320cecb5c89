"""Stand-ins for services at the process boundary, served over real HTTP in tests."""
