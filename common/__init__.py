"""Helpers shared by every app, below all of them: they know no tenant, mirror or Wix word.

The layers run `portal > connections > tenants > common`, and `wixapi` beside `common` imports
no Django at all (`make lint` checks both with import-linter).
"""
