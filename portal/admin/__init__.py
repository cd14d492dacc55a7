"""The admin pages the portal composes from more than one app.

Each app's own admin module registers its own models; what needs both apps (the tenant control
room: a tenant with its mirrored connections) is registered here, in the layer above them.
Importing the package registers its modules, as Django's admin autodiscovery expects.
"""

from . import security, tenants  # noqa: F401  (they register their admins)
