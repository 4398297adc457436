"""Moved: the llm tests are now test_llm_parsers.py, test_llm_prompts.py, test_llm_roles.py and test_chat.py.

Kept only because tests/deployments/test_serve.py still imports the `tiny_lm` fixture from here; the fixture lives
in tests/conftest.py, visible to every test. Delete this file once that import is gone."""
from tests.conftest import tiny_lm  # noqa: F401
