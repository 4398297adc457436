"""Ray Serve deployments: thin classes over ideal.serving, composed by `app.build_app`."""
