"""The i3D API v2 protocol: bodies, credentials, envelopes, action dispatch, OpenAPI."""
