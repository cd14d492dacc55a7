"""The tenant control room: the Tenant admin extended with mirror data and actions.

Lives in `connections` because it shows mirror rows; `tenants` must not import them.
"""
