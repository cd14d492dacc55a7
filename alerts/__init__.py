"""Telling people what the portal sees: email (and, next, signed webhooks and digests).

Above `connections` (it reads the mirror and its issues), below `portal` (which wires its
pages). Nothing below imports it.
"""
