"""Marshmallow schemas: the wire contract. Load schemas derive from `common.InputSchema`, reject
unknown fields (marshmallow's default RAISE) and never carry a server-owned field; dump schemas
say what clients get."""
