"""The fault matrix: end-to-end reliability tests (see conftest.py for the long variants)."""
