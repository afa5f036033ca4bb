"""Backbone sources; each module registers one prefix with :func:`suite.core.hub.register_source`."""
